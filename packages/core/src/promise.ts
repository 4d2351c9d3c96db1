/**
 * The Promise facade: a Vela cache for code that does not use Effect. `createCache` builds the cache
 * on a `ManagedRuntime`; in-memory hits are served synchronously without entering the runtime, and
 * concurrent `getOrFetch` misses of one key share one Promise in front of it.
 *
 * ```ts
 * import { createCache } from "@vela/core/promise"
 * const cache = createCache<User>({ name: "users", defaultTtl: 300_000 })
 * await cache.put("user_1", alice, { ttl: 60_000, tags: ["users"] })
 * const user = await cache.get("user_1")
 * await cache.close()
 * ```
 */
import * as Context from "effect/Context"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import type * as Logger from "effect/Logger"
import * as ManagedRuntime from "effect/ManagedRuntime"
import type { Backend } from "./Backend.js"
import { resolve } from "./internal/cache/config.js"
import type { InternalCache } from "./internal/cache/make.js"
import * as Internal from "./internal/cache/make.js"
import type { Root } from "./internal/facade/facade.js"
import { facadeOf } from "./internal/facade/facade.js"
import { configOf, runtimeLayer } from "./internal/facade/runtime.js"
import * as Telemetry from "./internal/telemetry.js"
import type * as NearCache from "./NearCache.js"
import type { Stats } from "./Stats.js"
import type { Topology } from "./Topology.js"
import type * as Vela from "./Vela.js"

export * from "./Errors.js"
export type { TelemetryEvent } from "./internal/telemetry.js"
export type { Stats } from "./Stats.js"

/**
 * A cache's config, plus where it runs.
 *
 * @since 0.1.0
 * @category models
 */
export interface CacheOptions<V = unknown, I = V> extends Vela.Config<V, I> {
  /** The storage engine (default: `Memory.layer()`). */
  readonly backend?: Layer.Layer<Backend, unknown> | undefined
  /** Where operations run (default: `Local.layer`). */
  readonly topology?: Layer.Layer<Topology, unknown, Backend> | undefined
  /** An in-memory L1 in front of the topology: `true` for the defaults, or its options. */
  readonly nearCache?: boolean | NearCache.NearCacheOptions | undefined
  /**
   * A span per call (`vela.cache.get`, …) for the tracer of `observability` (default `false`). With
   * spans on, every call runs on the Effect runtime, hits included, so that each one has its span.
   */
  readonly spans?: boolean | undefined
  /** Latency histograms per operation and a size gauge, as Effect metrics (default `false`). */
  readonly metrics?: boolean | undefined
  /** Where the cache's log lines go (sweep failures, closing errors), instead of Effect's default logger. */
  readonly logger?: Logger.Logger<unknown, unknown> | undefined
  /**
   * A layer for the cache's runtime: a tracer and metric exporters, e.g. `NodeSdk.layer(...)` of
   * `@effect/opentelemetry`.
   */
  readonly observability?: Layer.Layer<never> | undefined
}

/**
 * A cache for code without Effect: every operation returns a Promise.
 *
 * @since 0.1.0
 * @category models
 */
export interface Cache<V> extends AsyncDisposable {
  readonly name: string
  /** The value, or `undefined` on a miss. */
  readonly get: (key: string) => Promise<V | undefined>
  /** The value; rejects with `NotFound` on a miss. */
  readonly getOrThrow: (key: string) => Promise<V>
  readonly put: (key: string, value: V, options?: Vela.PutOptions) => Promise<void>
  readonly delete: (key: string) => Promise<void>
  readonly exists: (key: string) => Promise<boolean>
  readonly flush: () => Promise<void>
  readonly size: () => Promise<number>
  readonly stats: () => Promise<Stats>
  /**
   * The cached value, or the value of `fetch`, cached. Concurrent misses of one key run `fetch`
   * once; if it throws or rejects, every caller rejects with that same thrown value.
   */
  readonly getOrFetch: (
    key: string,
    fetch: (key: string) => V | PromiseLike<V>,
    options?: Vela.FetchOptions<V>
  ) => Promise<V>
  readonly invalidateTag: (tag: string) => Promise<number>
  /** The values of `keys` in their order, `undefined` for a miss; one batch on the store. */
  readonly getMany: (keys: ReadonlyArray<string>) => Promise<Array<V | undefined>>
  /** Writes every entry in one batch; an entry may carry its own options as a third element. */
  readonly putMany: (
    entries: ReadonlyArray<readonly [key: string, value: V, options?: Vela.PutOptions]>,
    options?: Vela.PutOptions
  ) => Promise<void>
  /** Removes `keys` in one batch; resolves to how many live entries were removed. */
  readonly deleteMany: (keys: ReadonlyArray<string>) => Promise<number>
  /**
   * The time `key` has left in milliseconds (`Infinity`: no expiry), or `undefined` when it has no
   * live entry.
   */
  readonly ttl: (key: string) => Promise<number | undefined>
  /**
   * Gives the live entry a new TTL from now (default: `defaultTtl`), value and tags unchanged;
   * `false` when there is none.
   */
  readonly touch: (key: string, ttl?: Duration.DurationInput | "infinity") => Promise<boolean>
  /** Gets and deletes the live entry as one step: of concurrent takers of a key, exactly one gets it. */
  readonly take: (key: string) => Promise<V | undefined>
  /**
   * Adds `by` (default 1) to the number under `key` as one step and resolves to the sum; an absent
   * key starts at 0, created with `options`, a live counter keeps its TTL and tags.
   */
  readonly increment: (key: string, by?: number, options?: Vela.PutOptions) => Promise<number>
  /**
   * Replaces the live value with `f(value)` (optimistic: `f` may run more than once) and resolves
   * to it, or to `undefined` when there is no live entry; `options` replace TTL and tags where given.
   * When `f` throws or rejects, nothing changes and the call rejects with that same value.
   */
  readonly update: (
    key: string,
    f: (value: V) => V | PromiseLike<V>,
    options?: Vela.PutOptions
  ) => Promise<V | undefined>
  /**
   * `fn` with its results cached: each call goes through `getOrFetch` under the key of its
   * arguments (default: their `Codec.json` encoding; one that does not encode rejects with
   * `InvalidKey`); concurrent calls with the same arguments run `fn` once.
   */
  readonly memoize: <A extends ReadonlyArray<unknown>>(
    fn: (...args: A) => V | PromiseLike<V>,
    options?: Vela.MemoizeOptions<V, A>
  ) => (...args: A) => Promise<V>
  /**
   * A view whose keys live in the child namespace `name`, opened on its first call and closed with
   * this cache: its flush, size, invalidateTag and stats see only its own entries; it nests. A name
   * that is not a non-empty string, or holds U+001F, throws `ConfigError`. Its `close` ends the view only.
   */
  readonly namespace: (name: string) => Cache<V>
  /** Calls `listener` for every telemetry event of this cache; returns the unsubscribe function. */
  readonly subscribe: (listener: (event: Telemetry.TelemetryEvent) => void) => () => void
  /** Stops the sweeper and releases the backend; later calls reject with `CacheClosed`. */
  readonly close: () => Promise<void>
}

/**
 * Creates a cache. The config is checked at once (a nonsensical one throws `ConfigError`); a
 * backend that connects asynchronously is connected in the background, and calls wait for it.
 *
 * @since 0.1.0
 * @category constructors
 */
export const createCache = <V = unknown, I = V>(options: CacheOptions<V, I> = {}): Cache<V> => {
  const config = configOf(options)
  const name = config.name ?? "default"
  const resolved = resolve({ ...config, name })
  if (Either.isLeft(resolved)) throw resolved.left

  const tag = Context.GenericTag<InternalCache<V>>(`@vela/core/promise/${name}`)
  const layer = runtimeLayer(options, Layer.scoped(tag, Internal.make<V, I>({ ...config, name })))
  const runtime = ManagedRuntime.make(layer)

  let closing: Promise<void> | undefined
  let telemetry: Telemetry.Telemetry["Type"] | undefined
  const pendingListeners = new Set<(event: Telemetry.TelemetryEvent) => void>()
  const root: Root<InternalCache<V> | Telemetry.Telemetry> = {
    runtime,
    stampedeProtection: resolved.right.stampedeProtection,
    closed: false,
    subscribe: (listener) => {
      if (telemetry !== undefined) return telemetry.subscribe(listener)
      pendingListeners.add(listener)
      return () => {
        pendingListeners.delete(listener)
        telemetry?.subscribe(listener)()
      }
    },
    close: () => {
      root.closed = true
      closing ??= runtime.dispose()
      return closing
    }
  }
  const build = Effect.map(Effect.all([tag, Telemetry.Telemetry] as const), ([cache, built]) => {
    if (telemetry === undefined) {
      telemetry = built
      for (const listener of pendingListeners) built.subscribe(listener)
      pendingListeners.clear()
    }
    return cache
  })
  return facadeOf(root, name, build, true)
}
