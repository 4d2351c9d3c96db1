/**
 * A Keyv store on a Vela cache: `new Keyv({ store: new VelaKeyvStore(cache) })`, and through Keyv
 * cache-manager's `createCache({ stores: [keyv] })`, run on whatever the facade cache runs on (Memory,
 * SQLite, Redis, a near cache, Partitioned or Replicated).
 *
 * Keyv hands the store its own serialized record (`{ value, expires }` as text) and a TTL in
 * milliseconds; the cache keeps the record as its value and expires it with the same TTL, so an
 * expired key leaves the cache as well as Keyv's view. A Keyv namespace becomes a tag on every entry
 * written under it, so `clear()` removes that namespace's entries only (`invalidateTag`), and the
 * whole cache (`flush`) when Keyv has no namespace.
 */
import type { Cache } from "@vela/core/promise"
import type { KeyvStoreAdapter, StoredData } from "keyv"
import { EventEmitter } from "node:events"

/**
 * What `set` and `setMany` receive from Keyv: a TTL in milliseconds, or none.
 *
 * @since 0.1.0
 * @category models
 */
export interface KeyvEntry {
  readonly key: string
  readonly value: unknown
  readonly ttl?: number | undefined
}

/**
 * A Keyv store (`KeyvStoreAdapter`) on a Vela facade cache: `new Keyv({ store: new VelaKeyvStore(cache) })`.
 *
 * @since 0.1.0
 * @category models
 */
export class VelaKeyvStore extends EventEmitter implements KeyvStoreAdapter {
  /** Keyv reads `opts`; `dialect` names the store in Keyv's messages. */
  readonly opts: { readonly dialect: "vela"; readonly cache: string }
  /** Set by Keyv to its own namespace. */
  namespace?: string | undefined

  constructor(readonly cache: Cache<unknown>) {
    super()
    this.opts = { dialect: "vela", cache: cache.name }
  }

  get<Value>(key: string): Promise<StoredData<Value> | undefined> {
    return this.cache.get(key) as Promise<StoredData<Value> | undefined>
  }

  getMany<Value>(keys: Array<string>): Promise<Array<StoredData<Value | undefined>>> {
    return this.cache.getMany(keys) as Promise<Array<StoredData<Value | undefined>>>
  }

  has(key: string): Promise<boolean> {
    return this.cache.exists(key)
  }

  /** One batch read; a key holds something when it reads as anything but `undefined`. */
  async hasMany(keys: Array<string>): Promise<Array<boolean>> {
    return (await this.cache.getMany(keys)).map((value) => value !== undefined)
  }

  /** A TTL of zero or less stores nothing: the value would be expired already, so the key is removed. */
  async set(key: string, value: unknown, ttl?: number): Promise<boolean> {
    if (ttl !== undefined && ttl <= 0) {
      await this.cache.delete(key)
      return true
    }
    await this.cache.put(key, value, this.#options(ttl))
    return true
  }

  async setMany(entries: Array<KeyvEntry>): Promise<void> {
    const expired = entries.filter((entry) => entry.ttl !== undefined && entry.ttl <= 0).map((entry) => entry.key)
    const live = entries.filter((entry) => entry.ttl === undefined || entry.ttl > 0)
    if (expired.length > 0) await this.cache.deleteMany(expired)
    if (live.length > 0) {
      await this.cache.putMany(live.map((entry) => [entry.key, entry.value, this.#options(entry.ttl)]))
    }
  }

  /** `true` when the key held a live entry. */
  async delete(key: string): Promise<boolean> {
    return (await this.cache.deleteMany([key])) > 0
  }

  /** `true` when any of the keys held a live entry. */
  async deleteMany(keys: Array<string>): Promise<boolean> {
    return (await this.cache.deleteMany(keys)) > 0
  }

  async clear(): Promise<void> {
    if (this.namespace === undefined) await this.cache.flush()
    else await this.cache.invalidateTag(namespaceTag(this.namespace))
  }

  /** Closes the cache (Keyv's `disconnect`). */
  disconnect(): Promise<void> {
    return this.cache.close()
  }

  /** Without a TTL the cache's `defaultTtl` applies ("infinity" unless the cache sets one). */
  #options(ttl: number | undefined) {
    return {
      ...(ttl === undefined ? {} : { ttl }),
      ...(this.namespace === undefined ? {} : { tags: [namespaceTag(this.namespace)] })
    }
  }
}

// internal

const namespaceTag = (namespace: string) => `keyv:${namespace}`
