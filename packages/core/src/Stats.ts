/**
 * Counters kept by every cache, read with `cache.stats()`, and mirrored into Effect `Metric`
 * counters named from the cache's `telemetryPrefix` (`vela_cache_hits{cache="users"}`).
 *
 * @since 0.1.0
 */

/**
 * A cache's counters; `hitRate` is `hits / (hits + misses)`, 0 when nothing was read.
 *
 * @since 0.1.0
 * @category models
 */
export interface Stats {
  readonly hits: number
  readonly misses: number
  readonly writes: number
  readonly deletes: number
  readonly evictions: number
  readonly expirations: number
  readonly fetches: number
  readonly fetchErrors: number
  readonly coalesced: number
  /** Stored values that no longer decode (read as misses by `getOrFetch`). */
  readonly codecErrors: number
  /** Stale values served by `getOrFetch` within their grace. */
  readonly staleHits: number
  /** Fetches run to refresh a stale entry (counted in `fetches` too). */
  readonly refreshes: number
  /** Refreshes that failed while a stale value could still be served. */
  readonly refreshErrors: number
  /** `hits / (hits + misses)`, 0 when nothing was read. */
  readonly hitRate: number
}

type Counter = Exclude<keyof Stats, "hitRate">

const counters: ReadonlyArray<Counter> = [
  "hits",
  "misses",
  "writes",
  "deletes",
  "evictions",
  "expirations",
  "fetches",
  "fetchErrors",
  "coalesced",
  "codecErrors",
  "staleHits",
  "refreshes",
  "refreshErrors"
]

/**
 * The counters of several processes' caches added up, `hitRate` recomputed. Counters a record
 * lacks (one from an older version) count as 0.
 *
 * @since 0.1.0
 * @category combinators
 */
export const sum = (all: ReadonlyArray<Partial<Record<Counter, number>>>): Stats => {
  const total = Object.fromEntries(counters.map((counter) => [counter, 0])) as Record<Counter, number>
  for (const stats of all) {
    for (const counter of counters) {
      const value = stats[counter]
      if (typeof value === "number" && Number.isFinite(value)) total[counter] += value
    }
  }
  const reads = total.hits + total.misses
  return { ...total, hitRate: reads === 0 ? 0 : total.hits / reads }
}
