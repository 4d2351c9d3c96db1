/**
 * Reads' uses, kept in memory until the next write transaction applies them, so a read never waits
 * for a commit (the eviction policies `lru` and `lfu` rank by them).
 */
import type { Statements } from "./database.js"

/** Reads' uses not yet written, per namespace and key: the highest sequence and how many reads. */
export class Touches {
  #pending = new Map<string, Map<string, { used: number; uses: number }>>()
  #count = 0

  get count(): number {
    return this.#count
  }

  add(namespace: string, key: string, used: number): void {
    let keys = this.#pending.get(namespace)
    if (keys === undefined) this.#pending.set(namespace, keys = new Map())
    const touch = keys.get(key)
    if (touch === undefined) {
      keys.set(key, { used, uses: 1 })
      this.#count++
    } else {
      touch.used = used
      touch.uses++
    }
  }

  /** Applies and forgets every pending use. */
  apply(statements: Statements): void {
    if (this.#count === 0) return
    const pending = this.#pending
    this.#pending = new Map()
    this.#count = 0
    for (const [namespace, keys] of pending) {
      for (const [key, touch] of keys) statements.touch.run(touch.used, touch.uses, namespace, key)
    }
  }
}
