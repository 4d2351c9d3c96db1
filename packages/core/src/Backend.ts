/**
 * The storage engine behind caches: string keys, `Entry` values, no knowledge of topology. One
 * backend serves many caches; each cache opens its own namespace on it and gets a `Store`.
 */
import type { Clock, Effect, Option, Scope, Stream } from "effect"
import { Context } from "effect"
import type { Codec } from "./Codec.js"
import type { BackendError, CacheError, ConfigError, FetchTimeout } from "./Errors.js"
import * as Check from "./internal/config.js"
import * as Yield from "./internal/yieldToEventLoop.js"
import type { Stats } from "./Stats.js"

/** What a store keeps per key. */
export interface Entry {
  readonly value: unknown
  /** Epoch milliseconds; the entry is live while `now < expiresAt`. `null`: no expiry. */
  readonly expiresAt: number | null
  readonly tags: ReadonlyArray<string>
  /** Orders writes of one key; assigned by topologies that need it (0 otherwise). */
  readonly version: number
}

/** Eviction policy used when a store reaches `maxSize`. */
export type EvictionPolicy = "ttl-only" | "lru" | "lfu" | "tinylfu"

/** A change made to a store by someone else (another process, another node). */
export type Invalidation =
  | { readonly _tag: "Keys"; readonly keys: ReadonlyArray<string> }
  | { readonly _tag: "Tag"; readonly tag: string }
  | { readonly _tag: "Flush" }
  /** Contact with the source of invalidations was lost: nothing cached nearby can be trusted. */
  | { readonly _tag: "Disconnected" }
  | { readonly _tag: "Connected" }

/** How a cache opens its namespace. */
export interface OpenOptions {
  readonly namespace: string
  /** The clock every expiry decision of this store is made against. */
  readonly clock: Clock.Clock
  /** Encodes values for stores that keep bytes; in-memory stores ignore it. */
  readonly codec: Codec
  /** `Infinity` for no bound. */
  readonly maxSize: number
  readonly evictionPolicy: EvictionPolicy
  /** Called with how many entries were removed by `maxSize`. */
  readonly onEvict: (count: number) => void
  /** Called with how many entries were removed because their TTL passed. */
  readonly onExpire: (count: number) => void
  /**
   * The counters of the cache opening the store, in this process: a topology spread over several
   * processes serves them to the others, so that `Store.stats` can add every process's up.
   */
  readonly stats?: (() => Stats) | undefined
}

/** A synchronous view of an in-process store, for hot paths that must not enter the runtime. */
export interface SyncStore {
  /** The live entry, or `undefined`; a read counts for recency and frequency. */
  readonly get: (key: string) => Entry | undefined
  /** `true` when a miss here is a miss of the whole cache; `false` for a near cache's L1. */
  readonly authoritative: boolean
  /** Writes an entry, for stores where that is all a write takes (an authoritative in-memory store). */
  readonly set?: ((key: string, entry: Entry) => void) | undefined
}

/** One cache's namespace on a backend or topology. Every read ignores expired entries. */
export interface Store {
  readonly get: (key: string) => Effect.Effect<Option.Option<Entry>, CacheError>
  /** Like `get`, without counting as a use for eviction. */
  readonly has: (key: string) => Effect.Effect<boolean, CacheError>
  readonly set: (key: string, entry: Entry) => Effect.Effect<void, CacheError>
  /** `true` when a live entry was removed. */
  readonly delete: (key: string) => Effect.Effect<boolean, CacheError>
  /** Removes every entry carrying `tag`; returns how many live entries were removed. */
  readonly invalidateTag: (tag: string) => Effect.Effect<number, CacheError>
  readonly clear: Effect.Effect<void, CacheError>
  /** The number of live entries. */
  readonly size: Effect.Effect<number, CacheError>
  /** Removes expired entries; run by the cache's sweeper every `sweepInterval`. */
  readonly sweep: Effect.Effect<void, CacheError>
  /** Changes made elsewhere; a store that only this process writes never emits. */
  readonly invalidations: Stream.Stream<Invalidation>
  /** Present on in-process stores. */
  readonly sync?: SyncStore | undefined
  /**
   * `get` without the runtime, for stores whose reads wait on the network: `done` is called once,
   * with the live entry (or `undefined`), or with the failure `get` would fail with. The cache's
   * `get` and the Promise facade use it when present, so a remote read runs no fiber of the store.
   */
  readonly getCallback?:
    | ((key: string, done: (entry: Entry | undefined, failure?: CacheError) => void) => void)
    | undefined
  /** `set` without the runtime, as `getCallback` is `get`: `done` is called once, with the failure if any. */
  readonly setCallback?:
    | ((key: string, entry: Entry, done: (failure?: CacheError) => void) => void)
    | undefined
  /**
   * The cache's counters over every process the store spans (a cluster topology), when it can
   * gather them; `cache.stats()` then reports these instead of this process's own.
   */
  readonly stats?: Effect.Effect<Stats> | undefined
  /**
   * Native batches, where the store has them (`MGET`, one SQL statement, one RPC per node). A cache
   * whose store lacks one runs the single-key operation for each key instead.
   */
  readonly getMany?:
    | ((keys: ReadonlyArray<string>) => Effect.Effect<ReadonlyArray<Option.Option<Entry>>, CacheError>)
    | undefined
  readonly setMany?: ((entries: ReadonlyArray<readonly [string, Entry]>) => Effect.Effect<void, CacheError>) | undefined
  /** Returns how many live entries were removed. */
  readonly deleteMany?: ((keys: ReadonlyArray<string>) => Effect.Effect<number, CacheError>) | undefined
  /**
   * Single flight beyond this process (Redis lease, cluster owner), when the store offers it. The
   * cache calls it on a `getOrFetch` miss, already coalesced within the process. When this process
   * wins the key, it runs `fetch` with `write`, which stores the fetched entry only while the key's
   * lease is still this fetch's (a `put` or `delete` of the key, or `timeoutMillis` passing, takes
   * it away) and tells whether it did. Otherwise it waits for the winner's value, at most
   * `timeoutMillis`, and returns what the winner stored.
   */
  readonly singleFlight?:
    | (<A, E, R>(
      key: string,
      fetch: (write: (entry: Entry) => Effect.Effect<boolean, CacheError>) => Effect.Effect<A, E, R>,
      timeoutMillis: number
    ) => Effect.Effect<A, E | CacheError | FetchTimeout, R>)
    | undefined
}

/**
 * For backend and topology layers: `ConfigError` when `options` is not an object (or `undefined`),
 * or carries a key not in `known` (a typo in plain JavaScript), naming it; otherwise `undefined`.
 */
export const checkOptions: (field: string, options: unknown, known: ReadonlyArray<string>) => ConfigError | undefined =
  Check.options

/**
 * Lets timers and I/O run before the fiber continues: for a store's long loops (a sweep of many
 * batches), so that one cache's work never holds the event loop. A macrotask, so it needs no `Clock`.
 */
export const yieldToEventLoop: Effect.Effect<void> = Yield.yieldToEventLoop

/** A storage engine: opens one `Store` per cache namespace, closed with the scope. */
export class Backend extends Context.Tag("@vela/core/Backend")<Backend, {
  readonly name: string
  readonly open: (options: OpenOptions) => Effect.Effect<Store, BackendError | ConfigError, Scope.Scope>
}>() {}
