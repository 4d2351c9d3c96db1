export * as HashRing from "./HashRing.js"
