/**
 * The in-memory store of one namespace: a `Map` of nodes, an expiry heap, an eviction policy and a
 * tag index, all synchronous. `Memory` and the near cache's L1 wrap it. Time is read only for
 * entries that expire, so a store without TTLs never asks the clock.
 *
 * Expiry: an entry is live while `now < expiresAt`. Reads check it, so an expired entry is never
 * returned; `sweep` pops the heap, so a tick costs O(expired · log n) and never scans the map.
 * Invariant: every node with an `expiresAt` is in the heap exactly while it is in the map.
 */
import type { Entry, EvictionPolicy } from "../Backend.js"
import * as Eviction from "./evictionPolicy.js"
import { ExpiryHeap } from "./expiryHeap.js"
import { StableMap } from "./stableMap.js"

const noTags: ReadonlyArray<string> = []

class Node implements Entry, Eviction.PolicyNode {
  prev: Node | null = null
  next: Node | null = null
  list: Eviction.List | null = null
  heapIndex = -1
  constructor(
    readonly key: string,
    public value: unknown,
    public expiresAt: number | null,
    public tags: ReadonlyArray<string>,
    public version: number,
    public seq: number
  ) {}
}

export interface MemoryStoreOptions {
  /** Epoch milliseconds. */
  readonly now: () => number
  readonly maxSize: number
  readonly evictionPolicy: EvictionPolicy
  readonly onEvict: (count: number) => void
  readonly onExpire: (count: number) => void
}

export class MemoryStore {
  readonly #map = new StableMap<Node>()
  readonly #heap = new ExpiryHeap<Node>()
  readonly #tags = new Map<string, Set<Node>>()
  readonly #policy: Eviction.Policy
  readonly #maxSize: number
  readonly #onEvict: (count: number) => void
  readonly #onExpire: (count: number) => void
  readonly #now: () => number
  #seq = 0

  constructor(options: MemoryStoreOptions) {
    this.#maxSize = options.maxSize
    this.#onEvict = options.onEvict
    this.#onExpire = options.onExpire
    this.#now = options.now
    this.#policy = Eviction.make(options.evictionPolicy, options.maxSize, this.#heap as ExpiryHeap<any>)
  }

  /** The live entry for `key`; counts as a use. */
  get(key: string): Entry | undefined {
    const node = this.#live(key)
    if (node !== undefined) this.#policy.used(node, false)
    return node
  }

  /** The live entry for `key`, without counting as a use. */
  peek(key: string): Entry | undefined {
    return this.#live(key)
  }

  /** Writes `entry`; `now`, when given, is the time to judge the entry it replaces by (a clock read saved). */
  set(key: string, entry: Entry, now?: number): void {
    const tags = entry.tags.length === 0 ? noTags : entry.tags
    const node = this.#live(key, now)
    if (node !== undefined) {
      if (node.tags.length > 0) this.#untag(node)
      const timed = node.expiresAt !== null
      node.value = entry.value
      node.expiresAt = entry.expiresAt
      node.tags = tags
      node.version = entry.version
      node.seq = this.#seq++
      this.#retime(node, timed)
      if (tags.length > 0) this.#tag(node)
      this.#policy.used(node, true)
      return
    }
    if (this.#map.size >= this.#maxSize) this.#makeRoom()
    const created = new Node(key, entry.value, entry.expiresAt, tags, entry.version, this.#seq++)
    this.#map.add(key, created)
    if (this.#map.migrating) this.#map.migrate(8, this.#keep)
    if (entry.expiresAt !== null) this.#heap.push(created)
    this.#tag(created)
    this.#policy.inserted(created)
  }

  /** A copy of the live entry for `key` and its write's number (`seq`), without counting as a use. */
  readForUpdate(key: string): { readonly entry: Entry; readonly token: number } | undefined {
    const node = this.#live(key)
    return node === undefined ? undefined : { entry: copy(node), token: node.seq }
  }

  /**
   * When `key` still holds the write numbered `token` (`undefined`: no live entry), writes `next`
   * (`undefined`: removes the key) and returns `true`; otherwise changes nothing.
   */
  compareAndSet(key: string, token: number | undefined, next: Entry | undefined): boolean {
    const node = this.#live(key)
    if (node?.seq !== token) return false
    if (next !== undefined) this.set(key, next)
    else if (node !== undefined) this.#remove(node)
    return true
  }

  /** Removes the live entry for `key` and returns a copy of it. */
  take(key: string): Entry | undefined {
    const node = this.#live(key)
    if (node === undefined) return undefined
    this.#remove(node)
    return copy(node)
  }

  /** Sets the live entry's expiry (keeping the heap in step); `false` when none is live. */
  touch(key: string, expiresAt: number | null): boolean {
    const node = this.#live(key)
    if (node === undefined) return false
    const timed = node.expiresAt !== null
    node.expiresAt = expiresAt
    node.seq = this.#seq++
    this.#retime(node, timed)
    this.#policy.used(node, true)
    return true
  }

  /**
   * Adds `by` to the number under `key` (absent: 0, written with `created`) and returns the sum;
   * `NaN`, writing nothing, when the key holds a non-number or the sum is not finite.
   */
  increment(
    key: string,
    by: number,
    created: { readonly expiresAt: number | null; readonly tags: ReadonlyArray<string> }
  ): number {
    const node = this.#live(key)
    const current = node === undefined ? 0 : node.value
    const sum = typeof current === "number" ? current + by : NaN
    if (!Number.isFinite(sum)) return NaN
    if (node === undefined) {
      this.set(key, { value: sum, expiresAt: created.expiresAt, tags: created.tags, version: 0 })
      return sum
    }
    node.value = sum
    node.seq = this.#seq++
    this.#policy.used(node, true)
    return sum
  }

  /** Removes `key`; `true` when a live entry was removed. */
  delete(key: string): boolean {
    const node = this.#map.get(key)
    if (node === undefined) return false
    this.#remove(node)
    if (this.#expired(node)) {
      this.#onExpire(1)
      return false
    }
    return true
  }

  /** Removes every entry tagged `tag`; returns how many of them were live. */
  invalidateTag(tag: string): number {
    const nodes = this.#tags.get(tag)
    if (nodes === undefined) return 0
    let live = 0
    let expired = 0
    for (const node of Array.from(nodes)) {
      this.#remove(node)
      if (this.#expired(node)) expired++
      else live++
    }
    if (expired > 0) this.#onExpire(expired)
    return live
  }

  /** Removes up to `budget` expired entries, and moves the map along; returns how many it removed. */
  sweep(budget: number): number {
    const now = this.#now()
    let removed = 0
    for (let top = this.#heap.peek(); top !== undefined && removed < budget; top = this.#heap.peek()) {
      if (!isExpired(top, now)) break
      this.#remove(top)
      removed++
    }
    if (removed > 0) this.#onExpire(removed)
    this.#map.migrate(Math.min(budget, 4_096), this.#keep)
    return removed
  }

  /** Whether `sweep` has anything to do. */
  needsSweep(): boolean {
    const top = this.#heap.peek()
    return this.#map.migrating || (top !== undefined && isExpired(top, this.#now()))
  }

  /** Live entries; expired ones are removed first. */
  size(): number {
    this.sweep(Infinity)
    return this.#map.size
  }

  clear(): void {
    this.#map.clear()
    this.#heap.clear()
    this.#tags.clear()
    this.#policy.clear()
  }

  #live(key: string, now?: number): Node | undefined {
    const node = this.#map.get(key)
    if (node === undefined) return undefined
    if (node.expiresAt !== null && node.expiresAt <= (now ?? this.#now())) {
      this.#remove(node)
      this.#onExpire(1)
      return undefined
    }
    return node
  }

  /** Keeps the heap in step with a node whose expiry or write number changed (`timed`: it had an expiry). */
  #retime(node: Node, timed: boolean): void {
    if (node.expiresAt === null) {
      if (timed) this.#heap.remove(node)
    } else this.#heap.retime(node)
  }

  #makeRoom(): void {
    // An expired entry is the cheapest room there is, and removing it is not an eviction.
    if (this.sweep(1) > 0) return
    const victim = this.#policy.victim() as Node | undefined
    if (victim === undefined) return
    this.#remove(victim)
    this.#onEvict(1)
  }

  /** Entries worth copying when the map moves to a fresh table: expired ones are left to the sweeper. */
  readonly #keep = (node: Node): boolean => !this.#expired(node)

  #expired(node: Node): boolean {
    return node.expiresAt !== null && node.expiresAt <= this.#now()
  }

  #remove(node: Node): void {
    this.#map.delete(node.key)
    if (node.expiresAt !== null) this.#heap.remove(node)
    this.#untag(node)
    this.#policy.removed(node)
  }

  #tag(node: Node): void {
    for (const tag of node.tags) {
      let nodes = this.#tags.get(tag)
      if (nodes === undefined) this.#tags.set(tag, nodes = new Set())
      nodes.add(node)
    }
  }

  #untag(node: Node): void {
    for (const tag of node.tags) {
      const nodes = this.#tags.get(tag)
      if (nodes === undefined) continue
      nodes.delete(node)
      if (nodes.size === 0) this.#tags.delete(tag)
    }
  }
}

const copy = (node: Node): Entry => ({
  value: node.value,
  expiresAt: node.expiresAt,
  tags: node.tags,
  version: node.version
})

const isExpired = (node: Entry, now: number): boolean => node.expiresAt !== null && node.expiresAt <= now
