/**
 * Which entry leaves a full store, each decision O(1) (ttl-only: O(log n) through the expiry heap).
 *
 * Eviction: `lru` keeps a recency list (read or write moves to the tail, the head goes); `lfu` keeps
 * the frequency buckets of Shah, Mitra and Matani's "An O(1) algorithm for implementing the LFU cache
 * eviction scheme" (2010), each bucket a recency list, so ties go to the least recent; `ttl-only`
 * takes the heap's soonest expiry, and when nothing expires the oldest write. The store evicts
 * before it inserts, so the entry being written is never the victim.
 */
import type { EvictionPolicy } from "../Backend.js"
import type { ExpiryHeap } from "./expiryHeap.js"

/** The links every policy threads through an entry. */
export interface PolicyNode {
  expiresAt: number | null
  seq: number
  heapIndex: number
  prev: PolicyNode | null
  next: PolicyNode | null
  bucket: Bucket | null
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
  }
}

// internal

const noop = () => {}

const unbounded: Policy = { inserted: noop, used: noop, removed: noop, victim: () => undefined, clear: noop }

/** A doubly linked list through `prev`/`next`. */
class List {
  head: PolicyNode | null = null
  tail: PolicyNode | null = null

  append(node: PolicyNode): void {
    node.prev = this.tail
    node.next = null
    if (this.tail === null) this.head = node
    else this.tail.next = node
    this.tail = node
  }

  unlink(node: PolicyNode): void {
    if (node.prev === null) this.head = node.next
    else node.prev.next = node.next
    if (node.next === null) this.tail = node.prev
    else node.next.prev = node.prev
    node.prev = node.next = null
  }

  moveToTail(node: PolicyNode): void {
    if (this.tail === node) return
    this.unlink(node)
    this.append(node)
  }

  clear(): void {
    this.head = this.tail = null
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
    const bucket = node.bucket!
    bucket.unlink(node)
    node.bucket = null
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
      node.bucket = bucket
    },
    used: (node) => {
      const current = leave(node)
      const next = current.nextBucket !== null && current.nextBucket.frequency === current.frequency + 1
        ? current.nextBucket
        : insertAfter(current, current.frequency + 1)
      next.append(node)
      node.bucket = next
      dropIfEmpty(current)
    },
    removed: (node) => dropIfEmpty(leave(node)),
    victim: () => first?.head ?? undefined,
    clear: () => {
      first = null
    }
  }
}
