/**
 * The keys a node holds in one namespace, with their expiry, tags and the stamp of the write that
 * put them there. A `Store` cannot list its keys, so the cluster keeps this index beside it: `size`
 * counts the keys a node owns, tag invalidation learns which keys it removed, rebalancing finds
 * what to hand over, and a write of a key applies only over an older stamp.
 * Invariant: every key set through the topology and not deleted since is in the index; keys that
 * expired or were evicted in the store may linger until `prune` or a failed lookup drops them.
 */

export interface Indexed {
  readonly expiresAt: number | null
  readonly tags: ReadonlyArray<string>
  /** The write that stored the key: its version, and the node that made it. */
  readonly version: number
  readonly origin: string
}

export class KeyIndex {
  readonly #keys = new Map<string, Indexed>()
  readonly #tags = new Map<string, Set<string>>()

  get size(): number {
    return this.#keys.size
  }

  get(key: string): Indexed | undefined {
    return this.#keys.get(key)
  }

  set(key: string, indexed: Indexed): void {
    this.delete(key)
    this.#keys.set(key, indexed)
    for (const tag of indexed.tags) {
      let keys = this.#tags.get(tag)
      if (keys === undefined) this.#tags.set(tag, keys = new Set())
      keys.add(key)
    }
  }

  delete(key: string): void {
    const indexed = this.#keys.get(key)
    if (indexed === undefined) return
    this.#keys.delete(key)
    for (const tag of indexed.tags) {
      const keys = this.#tags.get(tag)
      if (keys === undefined) continue
      keys.delete(key)
      if (keys.size === 0) this.#tags.delete(tag)
    }
  }

  /** Keys carrying `tag`, live or not. */
  tagged(tag: string): ReadonlyArray<string> {
    const keys = this.#tags.get(tag)
    return keys === undefined ? [] : Array.from(keys)
  }

  /** Keys whose entry has not expired at `now` (eviction aside). */
  live(now: number): Array<string> {
    const out: Array<string> = []
    for (const [key, indexed] of this.#keys) {
      if (indexed.expiresAt === null || now < indexed.expiresAt) out.push(key)
    }
    return out
  }

  /** Drops keys that expired at `now`; returns them. */
  prune(now: number): Array<readonly [string, Indexed]> {
    const expired: Array<readonly [string, Indexed]> = []
    for (const [key, indexed] of this.#keys) {
      if (indexed.expiresAt !== null && indexed.expiresAt <= now) expired.push([key, indexed])
    }
    for (const [key] of expired) this.delete(key)
    return expired
  }

  clear(): void {
    this.#keys.clear()
    this.#tags.clear()
  }
}
