/**
 * Consistent hashing: which cluster members hold a key. A pure value built from a set of member
 * ids; the same members in any order give the same ring, and adding or removing one member moves
 * only the keys that go to or come from that member.
 *
 * Placement: every member puts `virtualNodes` points on a 32-bit circle (MurmurHash3 of
 * `member#i`). A key is hashed `probes` times (multi-probe consistent hashing, Appleton and
 * O'Reilly 2015); each probe walks clockwise to the next point, and the member whose point is
 * closest to any probe owns the key. With plain vnodes (one probe) the load of a member has a
 * relative spread of about 1/√virtualNodes, so with 128 vnodes and 10 members about one ring in a
 * hundred has a member above 1.3 × the mean; three probes bring the worst case measured over
 * hundreds of rings to about 1.13.
 *
 * Replicas: members are ranked by their distance from the key (the smallest distance from any probe
 * to one of their points); `holders(ring, key, n)` is the first `n` of that ranking. Removing a
 * member changes no other member's distance, so when an owner leaves, its first replica becomes
 * the owner and a key never needs a copy it did not already have.
 * Invariant: `holders(ring, key, n)[0] === owner(ring, key)`, and the ranking of the members that
 * stay is the same before and after any join or leave.
 */
import { dual } from "effect/Function"
import { murmur3 } from "./internal/hash.js"

/**
 * A consistent-hash ring: its members and their points on the circle.
 *
 * @since 0.1.0
 * @category models
 */
export interface HashRing {
  /** Member ids, sorted. */
  readonly members: ReadonlyArray<string>
  readonly virtualNodes: number
  readonly probes: number
  /** Point positions on the circle, ascending. */
  readonly points: Uint32Array
  /** `points[i]` belongs to `members[owners[i]]`. */
  readonly owners: Uint32Array
}

/**
 * Options of `make`: points per member and hashes per key.
 *
 * @since 0.1.0
 * @category models
 */
export interface HashRingOptions {
  /** Points per member on the circle (default 128). */
  readonly virtualNodes?: number | undefined
  /** Hashes per key (default 3); 1 is the classic ring. */
  readonly probes?: number | undefined
}

/**
 * A ring over `members` (duplicates ignored).
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (members: Iterable<string>, options: HashRingOptions = {}): HashRing => {
  const virtualNodes = options.virtualNodes ?? 128
  const probes = options.probes ?? 3
  if (!Number.isInteger(virtualNodes) || virtualNodes < 1) {
    throw new RangeError("virtualNodes must be a positive integer")
  }
  if (!Number.isInteger(probes) || probes < 1 || probes > SEEDS.length) {
    throw new RangeError(`probes must be an integer from 1 to ${SEEDS.length}`)
  }
  const sorted = Array.from(new Set(members)).sort()
  const count = sorted.length * virtualNodes
  const order = new Uint32Array(count)
  const positions = new Uint32Array(count)
  for (let m = 0; m < sorted.length; m++) {
    for (let v = 0; v < virtualNodes; v++) {
      const i = m * virtualNodes + v
      positions[i] = murmur3(`${sorted[m]}#${v}`)
      order[i] = i
    }
  }
  // Equal positions are ordered by member, so the ring does not depend on insertion order.
  order.sort((a, b) => positions[a] - positions[b] || a - b)
  const points = new Uint32Array(count)
  const owners = new Uint32Array(count)
  for (let i = 0; i < count; i++) {
    points[i] = positions[order[i]]
    owners[i] = Math.floor(order[i] / virtualNodes)
  }
  return { members: sorted, virtualNodes, probes, points, owners }
}

/**
 * A ring without members.
 *
 * @since 0.1.0
 * @category constructors
 */
export const empty = (options: HashRingOptions = {}): HashRing => make([], options)

/**
 * The ring with `member` added.
 *
 * @since 0.1.0
 * @category combinators
 */
export const add: {
  (member: string): (ring: HashRing) => HashRing
  (ring: HashRing, member: string): HashRing
} = dual(
  2,
  (ring: HashRing, member: string): HashRing =>
    ring.members.includes(member) ? ring : make([...ring.members, member], ring)
)

/**
 * The ring without `member`.
 *
 * @since 0.1.0
 * @category combinators
 */
export const remove: {
  (member: string): (ring: HashRing) => HashRing
  (ring: HashRing, member: string): HashRing
} = dual(
  2,
  (ring: HashRing, member: string): HashRing =>
    ring.members.includes(member) ? make(ring.members.filter((m) => m !== member), ring) : ring
)

/**
 * The ring over exactly `members`, reusing `ring` when nothing changed.
 *
 * @since 0.1.0
 * @category combinators
 */
export const withMembers: {
  (members: Iterable<string>): (ring: HashRing) => HashRing
  (ring: HashRing, members: Iterable<string>): HashRing
} = dual(2, (ring: HashRing, members: Iterable<string>): HashRing => {
  const next = Array.from(new Set(members)).sort()
  return next.length === ring.members.length && next.every((m, i) => m === ring.members[i])
    ? ring
    : make(next, ring)
})

/**
 * Whether `member` is on the ring.
 *
 * @since 0.1.0
 * @category getters
 */
export const has: {
  (member: string): (ring: HashRing) => boolean
  (ring: HashRing, member: string): boolean
} = dual(2, (ring: HashRing, member: string): boolean => ring.members.includes(member))

/**
 * The member that owns `key`, or `undefined` on an empty ring.
 *
 * @since 0.1.0
 * @category getters
 */
export const owner: {
  (key: string): (ring: HashRing) => string | undefined
  (ring: HashRing, key: string): string | undefined
} = dual(2, (ring: HashRing, key: string): string | undefined => {
  const { owners, points, probes } = ring
  if (points.length === 0) return undefined
  let best = Infinity
  let bestMember = 0
  for (let p = 0; p < probes; p++) {
    const position = murmur3(key, SEEDS[p])
    const i = next(points, position)
    const distance = (points[i] - position) >>> 0
    if (distance < best || (distance === best && owners[i] < bestMember)) {
      best = distance
      bestMember = owners[i]
    }
  }
  return ring.members[bestMember]
})

/**
 * Up to `count` distinct members that hold `key`: the owner first, then its replicas in order.
 *
 * @since 0.1.0
 * @category getters
 */
export const holders: {
  (key: string, count: number): (ring: HashRing) => ReadonlyArray<string>
  (ring: HashRing, key: string, count: number): ReadonlyArray<string>
} = dual(3, (ring: HashRing, key: string, count: number): ReadonlyArray<string> => {
  const { members, owners, points, probes } = ring
  const wanted = Math.min(Math.max(0, Math.floor(count)), members.length)
  if (wanted === 0) return []
  const distance = new Map<number, number>()
  for (let p = 0; p < probes; p++) {
    const position = murmur3(key, SEEDS[p])
    // From this probe, the first `wanted` distinct members met clockwise are the only ones this
    // probe can rank among the nearest `wanted`.
    const seen = new Set<number>()
    for (let step = 0, i = next(points, position); step < points.length && seen.size < wanted; step++) {
      const member = owners[i]
      if (!seen.has(member)) {
        seen.add(member)
        const d = (points[i] - position) >>> 0
        const known = distance.get(member)
        if (known === undefined || d < known) distance.set(member, d)
      }
      i = i + 1 === points.length ? 0 : i + 1
    }
  }
  return Array.from(distance)
    .sort((a, b) => a[1] - b[1] || a[0] - b[0])
    .slice(0, wanted)
    .map(([member]) => members[member])
})

// internal

/** Seeds of the probes; the first probe is the plain hash. */
const SEEDS = [0, 0x9747b28c, 0x5bd1e995, 0x1b873593, 0x85ebca6b, 0xc2b2ae35, 0x27d4eb2f, 0x165667b1]

/** The index of the first point at or after `position`, wrapping to 0. */
const next = (points: Uint32Array, position: number): number => {
  let lo = 0
  let hi = points.length
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    if (points[mid] < position) lo = mid + 1
    else hi = mid
  }
  return lo === points.length ? 0 : lo
}
