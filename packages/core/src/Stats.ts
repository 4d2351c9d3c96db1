/**
 * Counters kept by every cache, read with `cache.stats()`, and mirrored into Effect `Metric`
 * counters named from the cache's `telemetryPrefix` (`vela_cache_hits{cache="users"}`).
 */
import { Metric } from "effect"

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

export type Counter = Exclude<keyof Stats, "hitRate">

export const counters: ReadonlyArray<Counter> = [
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

const noLabels: ReadonlyArray<never> = []

/** One counter and its metric: a hot path adds to a field and to the metric's hook, nothing more. */
export class Count {
  value = 0
  constructor(readonly metric: Metric.Metric.Counter<number>) {}

  add(count: number): void {
    this.value += count
    this.metric.unsafeUpdate(count, noLabels)
  }
}

/** A counter of a cache with `statsEnabled: false`: every count is dropped. */
class DroppedCount extends Count {
  override add(): void {}
}

export type Counters = { readonly [K in Counter]: Count } & { readonly snapshot: () => Stats }

/** The counters of one cache; metrics are named `<prefix>_<counter>` and tagged `cache=<name>`. */
export const makeCounters = (prefix: ReadonlyArray<string>, cache: string, enabled: boolean): Counters => {
  const name = prefix.join("_")
  const count = (counter: Counter) => {
    const metric = Metric.counter(`${name}_${snakeCase(counter)}`).pipe(Metric.tagged("cache", cache))
    return enabled ? new Count(metric) : new DroppedCount(metric)
  }
  const all = Object.fromEntries(counters.map((counter) => [counter, count(counter)])) as Record<Counter, Count>
  return {
    ...all,
    snapshot: () => sum([Object.fromEntries(counters.map((counter) => [counter, all[counter].value]))])
  }
}

/**
 * The counters of several processes' caches added up, `hitRate` recomputed. Counters a record
 * lacks (one from an older version) count as 0.
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

const snakeCase = (name: string) => name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)
