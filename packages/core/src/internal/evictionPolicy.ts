/**
 * Which entry leaves a full store, each decision O(1) (ttl-only: O(log n) through the expiry heap).
 *
 * Eviction: `lru` keeps a recency list (read or write moves to the tail, the head goes); `lfu` keeps
 * the frequency buckets of Shah, Mitra and Matani's "An O(1) algorithm for implementing the LFU cache
 * eviction scheme" (2010), each bucket a recency list, so ties go to the least recent; `ttl-only`
 * takes the heap's soonest expiry, and when nothing expires the oldest write; `tinylfu` is Caffeine's
 * W-TinyLFU (Einziger, Friedman and Manes, "TinyLFU: A Highly Efficient Cache Admission Policy",
 * 2017): a 1% LRU window in front of a segmented LRU (20% probation, 80% protected), where an entry
 * leaving the window displaces the main region's victim only if a count-min sketch of recent
 * accesses has seen it more often (or, one time in 128, as often: Caffeine's guard against a flood
 * that keeps the victim popular; the sketch's hash is seeded per cache for the same reason). The
 * store evicts before it inserts, so the entry being written is never the victim.
 */
import type { EvictionPolicy } from "../Backend.js"
import type { ExpiryHeap } from "./expiryHeap.js"

/** The links every policy threads through an entry. */
export interface PolicyNode {
  readonly key: string
  expiresAt: number | null
  seq: number
  heapIndex: number
  prev: PolicyNode | null
  next: PolicyNode | null
  /** The list the node is in, for the policies that keep several (lfu buckets, tinylfu segments). */
  list: List | null
}

export interface Policy {
  readonly inserted: (node: PolicyNode) => void
  /** A read of, or a new write to, an existing entry. */
  readonly used: (node: PolicyNode, write: boolean) => void
  readonly removed: (node: PolicyNode) => void
  readonly victim: () => PolicyNode | undefined
  readonly clear: () => void
}

export const make = (
  policy: EvictionPolicy,
  maxSize: number,
  heap: ExpiryHeap<PolicyNode>
): Policy => {
  if (maxSize === Infinity) return unbounded
  switch (policy) {
    case "lru":
      return lru()
    case "lfu":
      return lfu()
    case "ttl-only":
      return ttlOnly(heap)
    case "tinylfu":
      return tinyLfu(maxSize)
  }
}

// internal

const noop = () => {}

const unbounded: Policy = { inserted: noop, used: noop, removed: noop, victim: () => undefined, clear: noop }

/** A doubly linked list through `prev`/`next`. */
export class List {
  head: PolicyNode | null = null
  tail: PolicyNode | null = null
  size = 0

  append(node: PolicyNode): void {
    node.prev = this.tail
    node.next = null
    if (this.tail === null) this.head = node
    else this.tail.next = node
    this.tail = node
    node.list = this
    this.size++
  }

  unlink(node: PolicyNode): void {
    if (node.prev === null) this.head = node.next
    else node.prev.next = node.next
    if (node.next === null) this.tail = node.prev
    else node.next.prev = node.prev
    node.prev = node.next = null
    node.list = null
    this.size--
  }

  /** Moves a node of this list to its tail, touching only the links (a hit's bump: no `list` or `size` writes). */
  moveToTail(node: PolicyNode): void {
    const tail = this.tail!
    if (tail === node) return
    const { next, prev } = node
    if (prev === null) this.head = next
    else prev.next = next
    next!.prev = prev
    node.prev = tail
    node.next = null
    tail.next = node
    this.tail = node
  }

  clear(): void {
    this.head = this.tail = null
    this.size = 0
  }
}

const lru = (): Policy => {
  const list = new List()
  return {
    inserted: (node) => list.append(node),
    used: (node) => list.moveToTail(node),
    removed: (node) => list.unlink(node),
    victim: () => list.head ?? undefined,
    clear: () => list.clear()
  }
}

const ttlOnly = (heap: ExpiryHeap<PolicyNode>): Policy => {
  // Write order, for the entries without a TTL: they go last, oldest first.
  const list = new List()
  return {
    inserted: (node) => list.append(node),
    used: (node, write) => {
      if (write) list.moveToTail(node)
    },
    removed: (node) => list.unlink(node),
    victim: () => heap.peek() ?? list.head ?? undefined,
    clear: () => list.clear()
  }
}

/** One frequency's entries, least recent first; buckets form a list in increasing frequency. */
export class Bucket extends List {
  prevBucket: Bucket | null = null
  nextBucket: Bucket | null = null
  constructor(readonly frequency: number) {
    super()
  }
}

const lfu = (): Policy => {
  let first: Bucket | null = null

  const insertAfter = (previous: Bucket | null, frequency: number): Bucket => {
    const bucket = new Bucket(frequency)
    bucket.prevBucket = previous
    bucket.nextBucket = previous === null ? first : previous.nextBucket
    if (bucket.nextBucket !== null) bucket.nextBucket.prevBucket = bucket
    if (previous === null) first = bucket
    else previous.nextBucket = bucket
    return bucket
  }

  const leave = (node: PolicyNode): Bucket => {
    const bucket = node.list as Bucket
    bucket.unlink(node)
    return bucket
  }

  const dropIfEmpty = (bucket: Bucket): void => {
    if (bucket.head !== null) return
    if (bucket.prevBucket === null) first = bucket.nextBucket
    else bucket.prevBucket.nextBucket = bucket.nextBucket
    if (bucket.nextBucket !== null) bucket.nextBucket.prevBucket = bucket.prevBucket
  }

  return {
    inserted: (node) => {
      const bucket = first !== null && first.frequency === 1 ? first : insertAfter(null, 1)
      bucket.append(node)
    },
    used: (node) => {
      const current = leave(node)
      const next = current.nextBucket !== null && current.nextBucket.frequency === current.frequency + 1
        ? current.nextBucket
        : insertAfter(current, current.frequency + 1)
      next.append(node)
      dropIfEmpty(current)
    },
    removed: (node) => dropIfEmpty(leave(node)),
    victim: () => first?.head ?? undefined,
    clear: () => {
      first = null
    }
  }
}

/**
 * A count-min sketch of access frequencies: four rows of saturating 4-bit counters, two to a byte,
 * each row four times the capacity wide (Caffeine's sizing: 8 bytes an entry; narrower rows collide
 * enough to cost a point of hit ratio on Zipf traces), halved every `10 × capacity` increments so
 * that old popularity fades.
 */
class FrequencySketch {
  readonly #table: Uint8Array
  readonly #mask: number
  readonly #sampleSize: number
  /** Unknown outside the process, so that nobody can pick keys that share a hot key's counters. */
  readonly #seed = (Math.random() * 2 ** 32) >>> 0
  #additions = 0

  constructor(capacity: number) {
    const width = 2 ** Math.ceil(Math.log2(4 * Math.max(16, capacity)))
    this.#table = new Uint8Array(width * 2)
    this.#mask = width - 1
    this.#sampleSize = 10 * Math.max(16, capacity)
  }

  frequency(key: string): number {
    const hash = hashOf(key, this.#seed)
    let min = 15
    for (let row = 0; row < 4; row++) min = Math.min(min, this.#counter(this.#slot(hash, row)))
    return min
  }

  increment(key: string): void {
    const hash = hashOf(key, this.#seed)
    let added = false
    for (let row = 0; row < 4; row++) {
      const slot = this.#slot(hash, row)
      if (this.#counter(slot) < 15) {
        this.#table[slot >>> 1] += 1 << ((slot & 1) << 2)
        added = true
      }
    }
    if (added && ++this.#additions >= this.#sampleSize) this.#age()
  }

  #counter(slot: number): number {
    return (this.#table[slot >>> 1] >>> ((slot & 1) << 2)) & 15
  }

  #slot(hash: number, row: number): number {
    const mixed = Math.imul(hash ^ (hash >>> (8 * row + 1)), 0x9e3779b1 + 2 * row)
    return row * (this.#mask + 1) + ((mixed ^ (mixed >>> 15)) & this.#mask)
  }

  /** Halves both counters of every byte at once. */
  #age(): void {
    for (let i = 0; i < this.#table.length; i++) this.#table[i] = (this.#table[i] >>> 1) & 0x77
    this.#additions >>>= 1
  }
}

/** FNV-1a over the key's UTF-16 code units, from a seeded offset. */
const hashOf = (key: string, seed: number): number => {
  let hash = 0x811c9dc5 ^ seed
  for (let i = 0; i < key.length; i++) hash = Math.imul(hash ^ key.charCodeAt(i), 0x01000193)
  return hash >>> 0
}

/**
 * Caffeine's defence against a flood of requests that keeps the main region's victim popular (or
 * shares its counters) so that no candidate gets in: a warm candidate that loses still gets in one
 * time in 128.
 */
const lucky = (candidateFrequency: number): boolean => candidateFrequency >= 6 && Math.random() < 1 / 128

const tinyLfu = (maxSize: number): Policy => {
  const sketch = new FrequencySketch(maxSize)
  const window = new List()
  const probation = new List()
  const protectedList = new List()
  const windowMax = Math.max(1, Math.floor(maxSize / 100))
  const protectedMax = Math.floor((maxSize - windowMax) * 0.8)

  const promote = (node: PolicyNode) => {
    probation.unlink(node)
    protectedList.append(node)
    if (protectedList.size > protectedMax && protectedList.head !== null) {
      const demoted = protectedList.head
      protectedList.unlink(demoted)
      probation.append(demoted)
    }
  }

  return {
    inserted: (node) => {
      sketch.increment(node.key)
      window.append(node)
      // Until the store is full nothing is evicted, and the window's oldest move on to probation.
      if (window.size > windowMax) {
        const oldest = window.head!
        window.unlink(oldest)
        probation.append(oldest)
      }
    },
    used: (node) => {
      sketch.increment(node.key)
      if (node.list === probation) promote(node)
      else (node.list as List).moveToTail(node)
    },
    removed: (node) => (node.list as List).unlink(node),
    victim: () => {
      const mainVictim = probation.head ?? protectedList.head
      // The window has room for the entry about to come in: the main region gives way.
      if (window.size < windowMax) return mainVictim ?? window.head ?? undefined
      const candidate = window.head
      if (candidate === null) return mainVictim ?? undefined
      if (mainVictim === null) return candidate
      const candidateFrequency = sketch.frequency(candidate.key)
      if (candidateFrequency <= sketch.frequency(mainVictim.key) && !lucky(candidateFrequency)) return candidate
      // The candidate is more popular than the main region's victim (or lucky): it is admitted in its place.
      window.unlink(candidate)
      probation.append(candidate)
      return mainVictim
    },
    clear: () => {
      window.clear()
      probation.clear()
      protectedList.clear()
    }
  }
}
