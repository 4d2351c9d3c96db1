/**
 * What the Promise facade needs from a cache beyond its public methods: a synchronous read for
 * in-memory hits. Kept off the public `Cache` type, in a registry keyed by the cache.
 */
import type { Clock, Effect } from "effect"
import type { CacheError } from "../Errors.js"
import type { FetchOptions, PutOptions } from "../Vela.js"

/** `readSync` found no answer that does not need the runtime. */
export const Unknown: unique symbol = Symbol("@vela/core/Unknown")
/** `readSync` found a miss that holds for the whole cache. */
export const Miss: unique symbol = Symbol("@vela/core/Miss")

export interface UnsafeCache {
  readonly name: string
  readonly clock: Clock.Clock
  /** Every operation but a fetch completes synchronously (an in-memory store, no network). */
  readonly synchronous: boolean
  /** A closed cache or an invalid key, as the failure any call would get. */
  readonly check: (key: unknown) => CacheError | undefined
  /** Counts hits and authoritative misses and emits their events; the rest is `Unknown`. */
  readonly readSync: (key: string) => unknown
  /**
   * A read without the runtime for stores with `getCallback`: `done` gets the value, `Miss`, or
   * the failure; counted and reported like any read.
   */
  readonly readCallback:
    | ((key: string, done: (value: unknown, failure?: CacheError) => void) => void)
    | undefined
  /** `put` without the runtime for stores with `setCallback`: `done` gets the failure, if any. */
  readonly putCallback:
    | ((key: string, value: any, options: PutOptions | undefined, done: (failure?: CacheError) => void) => void)
    | undefined
  /** `put` into an in-memory store without the runtime; returns the failure, if any. */
  readonly putSync: ((key: string, value: any, options?: PutOptions) => CacheError | undefined) | undefined
  /**
   * Counts and reports a caller that waits on a fetch another caller started; `unread`: a caller
   * `readSync` could not answer, whose read counts as a miss.
   */
  readonly joined: (key: string, unread: boolean) => void
  /** `getOrFetch` after `readSync` answered `Miss`: the fetch, without reading again. */
  readonly fetchMiss: (
    key: string,
    fetch: (key: string) => Effect.Effect<unknown, unknown>,
    options: FetchOptions<any> | undefined
  ) => Effect.Effect<unknown, unknown>
}

export const registry = new WeakMap<object, UnsafeCache>()

/** The same cache with every shortcut around the runtime turned off: the facade then runs each call as an Effect. */
export const throughRuntime = (cache: UnsafeCache): UnsafeCache => ({
  ...cache,
  synchronous: false,
  readSync: () => Unknown,
  readCallback: undefined,
  putCallback: undefined,
  putSync: undefined
})
