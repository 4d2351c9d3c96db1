/**
 * The key layout of one namespace. Every Redis key of a cache reads
 *
 *   <prefix>{<fnv32(namespace)>.<bucket>}<namespace.length>:<namespace>:<kind>:<rest>
 *
 * The braces are a Redis Cluster hash tag: a key, its tag sets and its lease share one slot, so the
 * scripts that touch them run on one node. `bucket` (two hex digits, `hash(key) mod buckets`)
 * spreads one cache over several slots in a cluster; a single server uses one bucket. The length
 * before the namespace makes the layout unambiguous: cache `a` key `b:c` and cache `a:b` key `c`
 * differ in `1:a:` against `3:a:b:`.
 */

/** What a key holds: an entry, a tag set or a single-flight lease. */
export type Kind = "k" | "t" | "l"

export class Keyspace {
  readonly #bases: ReadonlyArray<string>
  /** Each bucket's base with the kind: one concatenation per key on the hot paths, not two. */
  readonly #entryBases: ReadonlyArray<string>
  readonly #leaseBases: ReadonlyArray<string>
  readonly #buckets: number
  /** Glob patterns (for `SCAN MATCH`) of every key of one kind in this namespace. */
  readonly patterns: Readonly<Record<Kind, string>>
  /** The pub/sub channel of this namespace. */
  readonly channel: string

  constructor(readonly prefix: string, readonly namespace: string, buckets: number) {
    const hash = fnv1a(namespace).toString(16).padStart(8, "0")
    const tail = `${namespace.length}:${namespace}:`
    this.#buckets = buckets
    this.#bases = Array.from({ length: buckets }, (_, b) => `${prefix}{${hash}.${hex2(b)}}${tail}`)
    this.#entryBases = this.#bases.map((base) => `${base}k:`)
    this.#leaseBases = this.#bases.map((base) => `${base}l:`)
    const bucketGlob = buckets === 1 ? "00" : "[0-9a-f][0-9a-f]"
    const pattern = (kind: Kind) => `${escapeGlob(prefix)}{${hash}.${bucketGlob}}${escapeGlob(tail)}${kind}:*`
    this.patterns = { k: pattern("k"), t: pattern("t"), l: pattern("l") }
    this.channel = `${prefix}vela-bus:${tail}`
  }

  get buckets(): number {
    return this.#buckets
  }

  bucketOf(key: string): number {
    return this.#buckets === 1 ? 0 : fnv1a(key) % this.#buckets
  }

  /** The entry of `key`. */
  entry(key: string, bucket = this.bucketOf(key)): string {
    return this.#entryBases[bucket] + key
  }

  lease(key: string, bucket = this.bucketOf(key)): string {
    return this.#leaseBases[bucket] + key
  }

  /** The set of entry keys of `bucket` carrying `tag`. */
  tagSet(tag: string, bucket: number): string {
    return `${this.#bases[bucket]}t:${tag}`
  }

  /** The tag a tag-set key names (a key this keyspace produced). */
  tagOf(tagSetKey: string): string {
    return tagSetKey.slice(this.#bases[0].length + 2)
  }

  /** Keys of one namespace share a slot exactly when they share this prefix. */
  slotPrefix(redisKey: string): string {
    return redisKey.slice(0, this.#bases[0].length)
  }
}

/** Groups keys by slot prefix, so each group can go to one script or one `UNLINK`. */
export const groupBySlot = (keyspace: Keyspace, keys: ReadonlyArray<string>): Array<Array<string>> => {
  if (keyspace.buckets === 1) return keys.length === 0 ? [] : [keys.slice()]
  const groups = new Map<string, Array<string>>()
  for (const key of keys) {
    const slot = keyspace.slotPrefix(key)
    const group = groups.get(slot)
    if (group === undefined) groups.set(slot, [key])
    else group.push(key)
  }
  return Array.from(groups.values())
}

// internal

const hex2 = (n: number) => n.toString(16).padStart(2, "0")

/** 32-bit FNV-1a over UTF-16 code units: stable, fast, good enough to spread buckets. */
const fnv1a = (text: string): number => {
  let hash = 0x811c9dc5
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i)
    hash = Math.imul(hash, 0x01000193)
  }
  return hash >>> 0
}

/** Escapes the characters Redis glob patterns treat specially. */
const escapeGlob = (text: string) => text.replace(/[*?[\]\\]/g, (c) => `\\${c}`)
