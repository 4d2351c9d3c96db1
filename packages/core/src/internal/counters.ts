/**
 * The counters behind a cache's `Stats`: one field per counter, mirrored into an Effect `Metric`,
 * so that a hot path adds to a number and to the metric's hook, nothing more.
 */
import * as Metric from "effect/Metric"
import type * as MetricHook from "effect/MetricHook"
import * as MetricKey from "effect/MetricKey"
import type { Stats } from "../Stats.js"
import { sum } from "../Stats.js"

export type Counter = Exclude<keyof Stats, "hitRate">

/** The fields of `Stats` but `hitRate`, in order: what `sum` adds up. */
const counters = Object.keys(sum([])).filter((field) => field !== "hitRate") as ReadonlyArray<Counter>

/**
 * One counter and its metric: a hot path adds to a field and to the metric's hook, nothing more
 * (the hook held here, found on the first count as a metric finds it: through a metric's
 * `unsafeUpdate` a count cost three more calls, about a tenth of an in-memory hit).
 */
export class Count {
  value = 0
  #hook: MetricHook.MetricHook<number, unknown> | undefined
  constructor(readonly key: MetricKey.MetricKey.Counter<number>) {}

  add(count: number): void {
    this.value += count
    ;(this.#hook ??= Metric.globalMetricRegistry.get(this.key)).update(count)
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
    // The tag goes into the key, not onto the metric: a tagged metric builds its key and looks up its
    // hook on every update, a count of a tagged key looks it up once.
    const key = MetricKey.tagged(MetricKey.counter(`${name}_${snakeCase(counter)}`), "cache", cache)
    return enabled ? new Count(key) : new DroppedCount(key)
  }
  const all = Object.fromEntries(counters.map((counter) => [counter, count(counter)])) as Record<Counter, Count>
  return {
    ...all,
    snapshot: () => sum([Object.fromEntries(counters.map((counter) => [counter, all[counter].value]))])
  }
}

const snakeCase = (name: string) => name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)
