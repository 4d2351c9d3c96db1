/**
 * The merge rule of the replicated topology, pure and synchronous: what one node knows of one
 * namespace's writes (versions, tags, tombstones, floors), with digests for anti-entropy. Values
 * live in the node's `Backend`; this decides which write a key shows.
 *
 * Versions: every write carries a `Stamp`, a hybrid logical clock value (`version`: wall-clock
 * milliseconds × 1024 plus a counter, never below anything the node has seen) and the id of the
 * node that made it (`origin`), compared as a pair: a total order on all writes of the cluster.
 *
 * Merge: a key shows its write with the largest stamp (put or delete), unless a tag invalidation
 * of one of its tags or a flush has a larger stamp (a floor). A put that arrives below a floor of
 * one of its tags becomes a tombstone at its own stamp, so an older put of that key cannot take its
 * place; a flush removes everything below it and refuses whatever arrives below it later. At equal
 * stamps a tombstone wins over a put (an entry removed by a tag or by expiry keeps its stamp).
 * Invariant: applying the same set of writes in any order leaves the same visible state, the one
 * applying them in stamp order gives (last writer wins; a state-based LWW-register map with remove
 * floors, after Shapiro et al., "Conflict-free Replicated Data Types", 2011).
 *
 * Expiry: an entry whose absolute `expiresAt` passed becomes a tombstone at its stamp. Tombstones
 * and tag floors are kept until their stamp is older than the tombstone horizon; a put older than
 * that horizon that arrives after its tombstone was dropped can reappear (the one window left).
 *
 * Digests: keys fall into `BUCKETS` buckets by hash; each bucket keeps the XOR of a hash of its
 * live puts' `(key, stamp)` and their count, updated on every change, so two nodes compare their
 * state in `BUCKETS` numbers and pull only the buckets that differ (Merkle-style, one level deep,
 * as Dynamo and Cassandra repair ranges).
 */
import { murmur3 } from "./hash.js"

export const BUCKETS = 256

/** Orders writes across the cluster: compared by `version`, then by `origin`. */
export interface Stamp {
  readonly version: number
  readonly origin: string
}

export const compare = (a: Stamp, b: Stamp): number =>
  a.version !== b.version ? (a.version < b.version ? -1 : 1) : a.origin < b.origin ? -1 : a.origin > b.origin ? 1 : 0

/** What a node knows of one key. */
export interface Meta extends Stamp {
  readonly expiresAt: number | null
  readonly tags: ReadonlyArray<string>
  readonly tombstone: boolean
}

/** The outcome of a write for the key's stored value. */
export type Outcome = "stored" | "removed" | "stale"

/** Ends the origin of a write in the stamps of touches of it (no node id holds it). */
const TOUCHED = "\u0000"

/**
 * The stamp of a touch of the write stamped `of`, made by node `by` at `version` of its clock:
 * right after `of` (the same version, its origin extended), so before every other write that
 * comes after `of`; touches of one write (or of its touches) are ordered among themselves by
 * `version`, then `by`.
 */
export const touchOf = (of: Stamp, version: number, by: string): Stamp => ({
  version: of.version,
  origin: `${of.origin.split(TOUCHED, 1)[0]}${TOUCHED}${String(version).padStart(17, "0")}${by}`
})

/** A hybrid logical clock: strictly increasing, never behind the wall clock nor any version seen. */
export class Hlc {
  #last = 0
  constructor(readonly wall: () => number) {}

  next(): number {
    const candidate = Math.floor(this.wall()) * 1024
    this.#last = candidate > this.#last ? candidate : this.#last + 1
    return this.#last
  }

  observe(version: number): void {
    if (version > this.#last) this.#last = version
  }
}

/** Wall-clock milliseconds a version was made at. */
export const millisOf = (version: number): number => Math.floor(version / 1024)

export const bucketOf = (key: string): number => murmur3(key, 0x5eed) & (BUCKETS - 1)

const itemHash = (key: string, stamp: Stamp): number => murmur3(`${key}\u0000${stamp.version}\u0000${stamp.origin}`)

export class Replica {
  readonly #buckets: Array<Map<string, Meta>> = Array.from({ length: BUCKETS }, () => new Map())
  readonly #hashes = new Uint32Array(BUCKETS)
  readonly #counts = new Uint32Array(BUCKETS)
  readonly #tagged = new Map<string, Set<string>>()
  #flush: Stamp | undefined
  readonly #tagFloors = new Map<string, Stamp>()
  #live = 0

  /** Live puts known (expired ones included until `expire`). */
  get live(): number {
    return this.#live
  }

  get flushFloor(): Stamp | undefined {
    return this.#flush
  }

  get tagFloors(): ReadonlyMap<string, Stamp> {
    return this.#tagFloors
  }

  get(key: string): Meta | undefined {
    return this.#buckets[bucketOf(key)].get(key)
  }

  /** A put: `stored` when it is now the key's value, `removed` when it only left a tombstone. */
  put(key: string, stamp: Stamp, expiresAt: number | null, tags: ReadonlyArray<string>): Outcome {
    const bucket = bucketOf(key)
    const existing = this.#buckets[bucket].get(key)
    if (existing !== undefined && compare(stamp, existing) <= 0) return "stale"
    if (this.#flush !== undefined && compare(stamp, this.#flush) <= 0) return "stale"
    for (const tag of tags) {
      const floor = this.#tagFloors.get(tag)
      if (floor !== undefined && compare(stamp, floor) <= 0) {
        this.#write(bucket, key, existing, record(stamp, expiresAt, [], true))
        return "removed"
      }
    }
    this.#write(bucket, key, existing, record(stamp, expiresAt, tags, false))
    return "stored"
  }

  /** A delete: a tombstone at `stamp` unless the key already shows a newer write. */
  delete(key: string, stamp: Stamp): Outcome {
    const bucket = bucketOf(key)
    const existing = this.#buckets[bucket].get(key)
    if (existing !== undefined) {
      const order = compare(stamp, existing)
      if (order < 0 || (order === 0 && existing.tombstone)) return "stale"
    }
    if (this.#flush !== undefined && compare(stamp, this.#flush) <= 0) return "stale"
    this.#write(bucket, key, existing, record(stamp, null, [], true))
    return "removed"
  }

  /** Raises the floor of `tag`; returns the keys whose put it removed. */
  invalidateTag(tag: string, stamp: Stamp): Array<string> {
    const floor = this.#tagFloors.get(tag)
    if (floor !== undefined && compare(stamp, floor) <= 0) return []
    this.#tagFloors.set(tag, pick(stamp))
    const removed: Array<string> = []
    for (const key of Array.from(this.#tagged.get(tag) ?? [])) {
      const bucket = bucketOf(key)
      const existing = this.#buckets[bucket].get(key)!
      if (compare(existing, stamp) < 0) {
        this.#write(bucket, key, existing, record(existing, null, [], true))
        removed.push(key)
      }
    }
    return removed
  }

  /** Raises the flush floor; forgets every key below it and returns those that had a put. */
  flush(stamp: Stamp): Array<string> {
    if (this.#flush !== undefined && compare(stamp, this.#flush) <= 0) return []
    this.#flush = pick(stamp)
    const removed: Array<string> = []
    // A Map's iteration visits each key once while its values are replaced or its keys deleted, and
    // #write does only that to a bucket here: no copy of it is needed.
    for (let bucket = 0; bucket < BUCKETS; bucket++) {
      for (const [key, meta] of this.#buckets[bucket]) {
        if (compare(meta, stamp) >= 0) continue
        if (!meta.tombstone) removed.push(key)
        this.#write(bucket, key, meta, undefined)
      }
    }
    for (const [tag, floor] of Array.from(this.#tagFloors)) {
      if (compare(floor, stamp) < 0) this.#tagFloors.delete(tag)
    }
    return removed
  }

  /** Turns the puts expired at `now` into tombstones; returns their keys. Runs on every digest: no copies. */
  expire(now: number): Array<string> {
    const expired: Array<string> = []
    for (let bucket = 0; bucket < BUCKETS; bucket++) {
      for (const [key, meta] of this.#buckets[bucket]) {
        if (meta.tombstone || meta.expiresAt === null || meta.expiresAt > now) continue
        expired.push(key)
        this.#write(bucket, key, meta, record(meta, null, [], true))
      }
    }
    return expired
  }

  /** Forgets tombstones and tag floors whose stamp was made before `horizon` (wall-clock ms). */
  forget(horizon: number): void {
    for (let bucket = 0; bucket < BUCKETS; bucket++) {
      for (const [key, meta] of this.#buckets[bucket]) {
        if (meta.tombstone && millisOf(meta.version) < horizon) this.#write(bucket, key, meta, undefined)
      }
    }
    for (const [tag, floor] of Array.from(this.#tagFloors)) {
      if (millisOf(floor.version) < horizon) this.#tagFloors.delete(tag)
    }
  }

  /** Per bucket: the XOR of the live puts' hashes, and their count. */
  digest(): { readonly hashes: ReadonlyArray<number>; readonly counts: ReadonlyArray<number> } {
    return { hashes: Array.from(this.#hashes), counts: Array.from(this.#counts) }
  }

  /** Everything known in `buckets`, tombstones included. */
  items(buckets: ReadonlyArray<number>): Array<readonly [string, Meta]> {
    const out: Array<readonly [string, Meta]> = []
    for (const bucket of buckets) {
      if (bucket >= 0 && bucket < BUCKETS) { for (const item of this.#buckets[bucket]) out.push(item) }
    }
    return out
  }

  /** Keys that show a put (expired ones included until `expire`). */
  *keys(): Generator<string> {
    for (const bucket of this.#buckets) {
      for (const [key, meta] of bucket) if (!meta.tombstone) yield key
    }
  }

  #write(bucket: number, key: string, before: Meta | undefined, after: Meta | undefined): void {
    if (before !== undefined && !before.tombstone) {
      this.#hashes[bucket] ^= itemHash(key, before)
      this.#counts[bucket]--
      this.#live--
      for (const tag of before.tags) {
        const keys = this.#tagged.get(tag)
        if (keys === undefined) continue
        keys.delete(key)
        if (keys.size === 0) this.#tagged.delete(tag)
      }
    }
    if (after === undefined) {
      this.#buckets[bucket].delete(key)
      return
    }
    this.#buckets[bucket].set(key, after)
    if (after.tombstone) return
    this.#hashes[bucket] ^= itemHash(key, after)
    this.#counts[bucket]++
    this.#live++
    for (const tag of after.tags) {
      let keys = this.#tagged.get(tag)
      if (keys === undefined) this.#tagged.set(tag, keys = new Set())
      keys.add(key)
    }
  }
}

const pick = (stamp: Stamp): Stamp => ({ version: stamp.version, origin: stamp.origin })

/**
 * A key's record, built as one literal: a spread (`{ ...pick(stamp), ... }`) cost a put about
 * 10 µs and most of its garbage in V8, the larger part of a Replicated write.
 */
const record = (
  stamp: Stamp,
  expiresAt: number | null,
  tags: ReadonlyArray<string>,
  tombstone: boolean
): Meta => ({ version: stamp.version, origin: stamp.origin, expiresAt, tags, tombstone })
