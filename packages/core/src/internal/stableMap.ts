/**
 * A string-keyed `Map` that never rehashes a large table in one step as it empties.
 *
 * V8 halves a `Map`'s table in one go when a delete leaves it a quarter full: for a map that held a
 * million entries that is one `delete` holding the event loop for 15 ms or more, just when a sweeper
 * removes a burst of expired entries. Before that point this map moves on to a fresh `Map`: deletes
 * from the old one become tombstones (an in-place write, never a rehash), the survivors are copied a
 * batch at a time, and the old table is dropped whole once copied. Redis rehashes its dicts
 * incrementally for the same reason.
 *
 * Invariant: a key is live in at most one of the two maps, and `size` counts live keys.
 */

const Gone: unique symbol = Symbol("Gone")

export class StableMap<V> {
  /** `small`: below this many entries a one-step rehash costs well under a millisecond. */
  constructor(readonly small = 32_768) {}

  #map = new Map<string, V>()
  #old: Map<string, V | typeof Gone> | undefined
  #pending: Iterator<[string, V | typeof Gone]> | undefined
  #size = 0
  /** The largest size since the current table was made, which fixes when V8 would shrink it. */
  #peak = 0

  get size(): number {
    return this.#size
  }

  get(key: string): V | undefined {
    const value = this.#map.get(key)
    if (value !== undefined || this.#old === undefined) return value
    const old = this.#old.get(key)
    return old === Gone ? undefined : old
  }

  /** Adds a key that is not present. */
  add(key: string, value: V): void {
    this.#map.set(key, value)
    if (++this.#size > this.#peak) this.#peak = this.#size
  }

  /** Removes `key`; `true` when it was present. */
  delete(key: string): boolean {
    if (this.#old === undefined && this.#peak > this.small && this.#size <= shrinkPoint(this.#peak)) this.#start()
    if (this.#map.delete(key)) {
      this.#size--
      return true
    }
    if (this.#old === undefined) return false
    const old = this.#old.get(key)
    if (old === undefined || old === Gone) return false
    this.#old.set(key, Gone)
    this.#size--
    return true
  }

  /**
   * Copies up to `budget` entries of a table being left behind; an entry that `keep` rejects is
   * dropped instead (and no longer counted), so a burst of expired entries is never copied.
   */
  migrate(budget: number, keep: (value: V) => boolean): void {
    if (this.#pending === undefined) return
    for (let i = 0; i < budget; i++) {
      const next = this.#pending.next()
      if (next.done === true) {
        this.#old = this.#pending = undefined
        this.#peak = this.#size
        return
      }
      const [key, value] = next.value
      if (value === Gone || this.#map.has(key)) continue
      if (keep(value)) this.#map.set(key, value)
      else this.#size--
      this.#old!.set(key, Gone)
    }
  }

  /** Whether a table is being left behind (and `migrate` has work to do). */
  get migrating(): boolean {
    return this.#pending !== undefined
  }

  clear(): void {
    this.#map = new Map()
    this.#old = this.#pending = undefined
    this.#size = this.#peak = 0
  }

  #start(): void {
    this.#old = this.#map
    this.#pending = this.#old.entries()
    this.#map = new Map()
    this.#peak = this.#size
  }
}

/** A little above the size at which V8 shrinks a table grown to hold `peak` entries (a quarter of its capacity). */
const shrinkPoint = (peak: number): number => {
  const capacity = 2 ** Math.ceil(Math.log2(peak))
  return capacity / 4 + capacity / 32
}
