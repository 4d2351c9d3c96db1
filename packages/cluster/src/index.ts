export * as ClusterNode from "./ClusterNode.js"
export * as HashRing from "./HashRing.js"
