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
  "codecErrors"
]

const noLabels: ReadonlyArray<never> = []

/** Plain mutable counters: a hot path adds to a field and to the metric's hook, nothing more. */
export class Counters {
  hits = 0
  misses = 0
  writes = 0
  deletes = 0
  evictions = 0
  expirations = 0
  fetches = 0
  fetchErrors = 0
  coalesced = 0
  codecErrors = 0
  readonly #metrics: Record<Counter, Metric.Metric.Counter<number>>

  constructor(prefix: ReadonlyArray<string>, cache: string) {
    const name = prefix.join("_")
    this.#metrics = Object.fromEntries(
      counters.map((
        counter
      ) => [counter, Metric.counter(`${name}_${snakeCase(counter)}`).pipe(Metric.tagged("cache", cache))])
    ) as Record<Counter, Metric.Metric.Counter<number>>
  }

  add(counter: Counter, count: number): void {
    this[counter] += count
    this.#metrics[counter].unsafeUpdate(count, noLabels)
  }

  snapshot(): Stats {
    const reads = this.hits + this.misses
    return {
      hits: this.hits,
      misses: this.misses,
      writes: this.writes,
      deletes: this.deletes,
      evictions: this.evictions,
      expirations: this.expirations,
      fetches: this.fetches,
      fetchErrors: this.fetchErrors,
      coalesced: this.coalesced,
      codecErrors: this.codecErrors,
      hitRate: reads === 0 ? 0 : this.hits / reads
    }
  }
}

/** Counters for a cache with `statsEnabled: false`: every count is dropped. */
export class DisabledCounters extends Counters {
  override add(): void {}
}

const snakeCase = (name: string) => name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)
