/**
 * The storage engine behind caches: string keys, `Entry` values, no knowledge of topology. One
 * backend serves many caches; each cache opens its own namespace on it and gets a `Store`.
 */
import type * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import type * as Effect from "effect/Effect"
import type * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import type * as Stream from "effect/Stream"
import type { Codec } from "./Codec.js"
import type { BackendError, CacheError, ConfigError, FetchTimeout } from "./Errors.js"
import * as Check from "./internal/config.js"
import * as Derive from "./internal/makeStore.js"
import * as Yield from "./internal/yieldToEventLoop.js"
import type { Stats } from "./Stats.js"

/**
 * What a store keeps per key.
 *
 * @since 0.1.0
 * @category models
 */
export interface Entry {
  readonly value: unknown
  /** Epoch milliseconds; the entry is live while `now < expiresAt`. `null`: no expiry. */
  readonly expiresAt: number | null
  readonly tags: ReadonlyArray<string>
  /** Orders writes of one key; assigned by topologies that need it (0 otherwise). */
  readonly version: number
}

/**
 * Eviction policy used when a store reaches `maxSize`.
 *
 * @since 0.1.0
 * @category models
 */
export type EvictionPolicy = "ttl-only" | "lru" | "lfu" | "tinylfu"

/**
 * A change made to a store by someone else (another process, another node).
 *
 * @since 0.1.0
 * @category models
 */
export type Invalidation =
  | { readonly _tag: "Keys"; readonly keys: ReadonlyArray<string> }
  | { readonly _tag: "Tag"; readonly tag: string }
  | { readonly _tag: "Flush" }
  /** Contact with the source of invalidations was lost: nothing cached nearby can be trusted. */
  | { readonly _tag: "Disconnected" }
  | { readonly _tag: "Connected" }

/**
 * How a cache opens its namespace.
 *
 * @since 0.1.0
 * @category models
 */
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

/**
 * A synchronous view of an in-process store, for hot paths that must not enter the runtime.
 *
 * @since 0.1.0
 * @category models
 */
export interface SyncStore {
  /** The live entry, or `undefined`; a read counts for recency and frequency. */
  readonly get: (key: string) => Entry | undefined
  /** `true` when a miss here is a miss of the whole cache; `false` for a near cache's L1. */
  readonly authoritative: boolean
  /**
   * Writes an entry, for stores where that is all a write takes (an authoritative in-memory store).
   * Present only when every operation of the store completes without waiting: the facade then runs
   * them synchronously. `now`: the clock as the caller read it to make the entry (epoch ms), so that
   * the store need not read it again.
   */
  readonly set?: ((key: string, entry: Entry, now?: number) => void) | undefined
}

/**
 * `done` of a read without the runtime: the live entry (or `undefined`), or the failure.
 *
 * @since 0.2.0
 * @category models
 */
export type GetCallback = (key: string, done: (entry: Entry | undefined, failure?: CacheError) => void) => void

/**
 * `done` of a write without the runtime: called once, with the failure if any.
 *
 * @since 0.2.0
 * @category models
 */
export type SetCallback = (key: string, entry: Entry, done: (failure?: CacheError) => void) => void

/**
 * Single flight beyond this process (Redis lease, cluster owner). The cache calls it on a
 * `getOrFetch` miss, already coalesced within the process. When this process wins the key, it runs
 * `fetch` with `write`, which stores the fetched entry only while the key's lease is still this
 * fetch's (a `put` or `delete` of the key, or `timeoutMillis` passing, takes it away) and tells
 * whether it did. Otherwise it waits for the winner's value, at most `timeoutMillis`, and returns
 * what the winner stored.
 *
 * @since 0.2.0
 * @category models
 */
export type SingleFlight = <A, E, R>(
  key: string,
  fetch: (write: (entry: Entry) => Effect.Effect<boolean, CacheError>) => Effect.Effect<A, E, R>,
  timeoutMillis: number
) => Effect.Effect<A, E | CacheError | FetchTimeout, R>

/**
 * A live entry as `readForUpdate` saw it, with the store's token of that write (the write counter
 * in memory, the stored bytes in Redis and SQLite, the stamp in a cluster): `compareAndSet` replaces
 * the entry only while the store still holds that write. Opaque to everyone but the store.
 *
 * @since 0.2.0
 * @category models
 */
export interface Snapshot {
  readonly entry: Entry
  readonly token: unknown
}

/**
 * What `increment` writes when the key has no live entry: the counter starts at 0, with this expiry
 * and these tags. A live counter keeps its own.
 *
 * @since 0.2.0
 * @category models
 */
export interface Created {
  readonly expiresAt: number | null
  readonly tags: ReadonlyArray<string>
}

/**
 * One cache's namespace on a backend or topology, every operation present: built by `makeStore`
 * from what the store does natively. Every read ignores expired entries.
 *
 * @since 0.1.0
 * @category models
 */
export interface Store {
  readonly get: (key: string) => Effect.Effect<Option.Option<Entry>, CacheError>
  /**
   * `get` without the runtime: `done` is called once. Native on stores whose reads wait on the
   * network (a remote read then runs no fiber of the store); elsewhere it runs the reads of one
   * tick as one `getMany`.
   */
  readonly getCallback: GetCallback
  /** Like `get`, without counting as a use for eviction. */
  readonly has: (key: string) => Effect.Effect<boolean, CacheError>
  readonly set: (key: string, entry: Entry) => Effect.Effect<void, CacheError>
  /** `set` without the runtime, as `getCallback` is `get`. */
  readonly setCallback: SetCallback
  /** `true` when a live entry was removed. */
  readonly delete: (key: string) => Effect.Effect<boolean, CacheError>
  /** Batches: one `MGET`, one SQL statement, one RPC per node where the store has them. */
  readonly getMany: (keys: ReadonlyArray<string>) => Effect.Effect<ReadonlyArray<Option.Option<Entry>>, CacheError>
  readonly setMany: (entries: ReadonlyArray<readonly [string, Entry]>) => Effect.Effect<void, CacheError>
  /** Returns how many live entries were removed. */
  readonly deleteMany: (keys: ReadonlyArray<string>) => Effect.Effect<number, CacheError>
  /** Removes every entry carrying `tag`; returns how many live entries were removed. */
  readonly invalidateTag: (tag: string) => Effect.Effect<number, CacheError>
  /**
   * The live entry and its write's token, without counting as a use; with `compareAndSet`, the
   * optimistic read-modify-write every atomic operation can be derived from.
   */
  readonly readForUpdate: (key: string) => Effect.Effect<Option.Option<Snapshot>, CacheError>
  /**
   * Atomically: when the key still holds the write `expected` saw (`undefined`: no live entry),
   * writes `next` (`undefined`: deletes the key) and returns `true`; otherwise changes nothing and
   * returns `false`.
   */
  readonly compareAndSet: (
    key: string,
    expected: Snapshot | undefined,
    next: Entry | undefined
  ) => Effect.Effect<boolean, CacheError>
  /** Get and delete as one step: of concurrent `take`s of a key, anywhere, one gets the entry. */
  readonly take: (key: string) => Effect.Effect<Option.Option<Entry>, CacheError>
  /** Sets the live entry's `expiresAt`, keeping value, tags and version; `false` when none is live. */
  readonly touch: (key: string, expiresAt: number | null) => Effect.Effect<boolean, CacheError>
  /**
   * Adds `by` to the number under `key` (absent: 0, written with `created`) as one step, and returns
   * the sum; `WrongType` when the key holds a non-number or the sum is not finite.
   */
  readonly increment: (key: string, by: number, created: Created) => Effect.Effect<number, CacheError>
  readonly clear: Effect.Effect<void, CacheError>
  /** The number of live entries. */
  readonly size: Effect.Effect<number, CacheError>
  /** Removes expired entries; run by the cache's sweeper every `sweepInterval`. */
  readonly sweep: Effect.Effect<void, CacheError>
  /** Changes made elsewhere; a store that only this process writes never emits. */
  readonly invalidations: Stream.Stream<Invalidation>
  /** Present on in-process stores: reads (and, where that is all a write takes, writes) without the runtime. */
  readonly sync: SyncStore | undefined
  /** Single flight beyond this process; in-process stores run the fetch and always write. */
  readonly singleFlight: SingleFlight
  /**
   * The cache's counters over every process the store spans (a cluster topology), when it can
   * gather them; `cache.stats()` then reports these instead of this process's own.
   */
  readonly stats: Effect.Effect<Stats> | undefined
}

/**
 * What a store writes itself: each operation once, in the form native to it (a read as an Effect or
 * as a callback, batches where it has them); `makeStore` derives the rest. A store may give both
 * forms of a read or write when the second is not the first run another way (a callback read that
 * answers most keys without the runtime and hands the rest to `get`).
 *
 * @since 0.2.0
 * @category models
 */
export type StorePrimitives =
  & {
    readonly has?: Store["has"] | undefined
    readonly delete: Store["delete"]
    readonly getMany?: Store["getMany"] | undefined
    readonly setMany?: Store["setMany"] | undefined
    readonly deleteMany?: Store["deleteMany"] | undefined
    readonly invalidateTag: Store["invalidateTag"]
    readonly readForUpdate?: Store["readForUpdate"] | undefined
    readonly compareAndSet?: Store["compareAndSet"] | undefined
    readonly take?: Store["take"] | undefined
    readonly touch?: Store["touch"] | undefined
    readonly increment?: Store["increment"] | undefined
    /**
     * Names the store in the `Unsupported` failures of the atomic operations it neither has nor can
     * derive (no `readForUpdate`/`compareAndSet`), and says why.
     */
    readonly unsupported?: { readonly store: string; readonly reason: string } | undefined
    readonly clear: Store["clear"]
    readonly size: Store["size"]
    readonly sweep: Store["sweep"]
    readonly invalidations?: Store["invalidations"] | undefined
    readonly sync?: SyncStore | undefined
    readonly singleFlight?: SingleFlight | undefined
    readonly stats?: Effect.Effect<Stats> | undefined
  }
  & (
    | { readonly get: Store["get"]; readonly getCallback?: GetCallback | undefined }
    | { readonly get?: undefined; readonly getCallback: GetCallback }
  )
  & (
    | { readonly set: Store["set"]; readonly setCallback?: SetCallback | undefined }
    | { readonly set?: undefined; readonly setCallback: SetCallback }
  )

/**
 * A whole `Store` from a store's primitives, as Effect's `KeyValueStore.make` does: `get` from
 * `getCallback` or the reverse (the reads of one tick gathered into one `getMany`; `set` likewise,
 * one at a time), `has` from `get`, batches from single-key operations (16 at a time), `take`,
 * `touch` and `increment` as optimistic loops of `readForUpdate` and `compareAndSet` (or, without
 * them, failing with `Unsupported`), no invalidations, and a single flight that runs the fetch and
 * writes.
 *
 * @since 0.2.0
 * @category constructors
 */
export const makeStore: (primitives: StorePrimitives) => Store = Derive.makeStore

/**
 * For backend and topology layers: `ConfigError` when `options` is not an object (or `undefined`),
 * or carries a key not in `known` (a typo in plain JavaScript), naming it; otherwise `undefined`.
 *
 * @since 0.1.0
 * @category utils
 */
export const checkOptions: (field: string, options: unknown, known: ReadonlyArray<string>) => ConfigError | undefined =
  Check.options

/**
 * Lets timers and I/O run before the fiber continues: for a store's long loops (a sweep of many
 * batches), so that one cache's work never holds the event loop. A macrotask, so it needs no `Clock`.
 *
 * @since 0.2.0
 * @category utils
 */
export const yieldToEventLoop: Effect.Effect<void> = Yield.yieldToEventLoop

/**
 * A storage engine: opens one `Store` per cache namespace, closed with the scope.
 *
 * @since 0.1.0
 * @category tags
 */
export class Backend extends Context.Tag("@vela/core/Backend")<Backend, {
  readonly name: string
  readonly open: (options: OpenOptions) => Effect.Effect<Store, BackendError | ConfigError, Scope.Scope>
}>() {}
