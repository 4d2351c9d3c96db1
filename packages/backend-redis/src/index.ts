/**
 * The Redis and Redis Cluster backend: `Redis.layer`, `Redis.layerCluster`.
 *
 * @since 0.1.0
 * @category modules
 */
export * as Redis from "./Redis.js"
