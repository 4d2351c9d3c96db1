export * as ClusterNode from "./ClusterNode.js"
export * as Discovery from "./Discovery.js"
export * as HashRing from "./HashRing.js"
export * as Partitioned from "./Partitioned.js"
