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
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Option from "effect/Option"
import * as Runtime from "effect/Runtime"
import type { Backend } from "./Backend.js"
import { CacheClosed, ConfigError } from "./Errors.js"
import { resolve } from "./internal/cache/config.js"
import type { InternalCache } from "./internal/cache/make.js"
import * as Internal from "./internal/cache/make.js"
import * as Memoize from "./internal/cache/memoize.js"
import * as Namespace from "./internal/cache/namespace.js"
import { Miss, Unknown } from "./internal/cache/read.js"
import * as Local from "./Local.js"
import * as Memory from "./Memory.js"
import * as NearCache from "./NearCache.js"
import type { Stats } from "./Stats.js"
import * as Telemetry from "./Telemetry.js"
import type { Topology } from "./Topology.js"
import type * as Vela from "./Vela.js"

export * from "./Errors.js"
export type { Stats } from "./Stats.js"
export type { TelemetryEvent } from "./Telemetry.js"

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

/** What a cache and its namespaces' facades share: the runtime, and whether the cache was closed. */
interface Root<R> {
  readonly runtime: ManagedRuntime.ManagedRuntime<R, unknown>
  readonly stampedeProtection: boolean
  closed: boolean
  readonly subscribe: Cache<unknown>["subscribe"]
  readonly close: () => Promise<void>
}

/**
 * The facade of the cache `build` gives: the cache itself (`isRoot`), whose failure to build
 * throws, or one of its namespaces, which opens on the runtime as its first call needs it.
 */
const facadeOf = <V, R>(
  root: Root<R>,
  name: string,
  build: Effect.Effect<InternalCache<V>, unknown, R>,
  isRoot: boolean
): Cache<V> => {
  const { runtime, stampedeProtection } = root
  /** A namespace's facade closes alone; its store closes with the cache. */
  let viewClosed = false
  const isClosed = () => root.closed || viewClosed
  const closedError = new CacheClosed({ cache: name })
  let cache: InternalCache<V> | undefined
  /** The cache, once built, when calls may take the paths around the runtime (spans off). */
  let direct: InternalCache<V> | undefined
  const ready = (built: InternalCache<V>) => {
    cache = built
    direct = cache.direct ? cache : undefined
  }
  if (!root.closed) {
    // A backend that builds synchronously (Memory) is ready before `createCache` returns.
    const exit = runtime.runSyncExit(build)
    if (Exit.isSuccess(exit)) ready(exit.value)
    else if (isAsync(exit.cause)) runtime.runPromise(build).then(ready, () => {})
    else if (isRoot) throw Cause.squash(exit.cause)
  }

  const settle = <A>(exit: Exit.Exit<A, unknown>): A => {
    if (Exit.isSuccess(exit)) return exit.value
    // A call still running when the cache closed was interrupted by the close.
    if (isClosed() && Cause.isInterruptedOnly(exit.cause)) throw closedError
    throw unwrap(Cause.squash(exit.cause))
  }

  /** Runs an operation on the runtime; may wait for I/O. */
  const run = <A>(f: (cache: InternalCache<V>) => Effect.Effect<A, unknown>): Promise<A> => {
    if (isClosed()) return Promise.reject(closedError)
    const effect = cache === undefined ? Effect.flatMap(build, f) : f(cache)
    return runtime.runPromiseExit(effect).then(settle)
  }

  /** Runs an operation that never waits (no fetch) synchronously where the store allows it. */
  const runNow = <A>(f: (cache: InternalCache<V>) => Effect.Effect<A, unknown, never>): Promise<A> => {
    if (isClosed() || cache === undefined || !cache.synchronous) return run(f)
    try {
      return Promise.resolve(settle(runtime.runSyncExit(f(cache))))
    } catch (error) {
      return Promise.reject(error)
    }
  }

  /** `direct.now` after the key's check: a hit, an authoritative miss, or `Unknown` when only the store can tell. */
  const readNow = (key: string): unknown => {
    if (direct === undefined) return Unknown
    const invalid = direct.check(key)
    if (invalid !== undefined) throw invalid
    return direct.now(key)
  }

  const inflight = makeShared<V>()
  const { forget, forgetKey } = inflight

  const getOrFetch = (key: string, fetch: (key: string) => V | PromiseLike<V>, putOptions?: Vela.FetchOptions<V>) => {
    if (isClosed()) return Promise.reject(closedError)
    let found: unknown
    try {
      found = readNow(key)
    } catch (error) {
      return Promise.reject(error)
    }
    if (found !== Unknown && found !== Miss) return Promise.resolve(found as V)
    const running = stampedeProtection ? inflight.get(key) : undefined
    if (running !== undefined) {
      cache?.joined(key, found === Unknown)
      return running
    }
    const fetchEffect = (k: string) =>
      Effect.tryPromise({ try: async () => fetch(k), catch: (thrown) => new Thrown(thrown) })
    // What `readNow` found, so the cache does not read again; nothing when it did not read.
    const known = direct === undefined ? undefined : found as typeof Miss | typeof Unknown
    const fetched = run((c) => c.getOrFetch(key, fetchEffect, putOptions, known))
    return stampedeProtection ? inflight.share(key, fetched) : fetched
  }

  const facade: Cache<V> = {
    name,
    get: (key) => {
      if (isClosed()) return Promise.reject(closedError)
      try {
        const found = readNow(key)
        if (found === Miss) return resolvedUndefined
        if (found !== Unknown) return Promise.resolve(found as V)
      } catch (error) {
        return Promise.reject(error)
      }
      const c = direct
      if (c === undefined) return run((c) => Effect.map(c.getOption(key), Option.getOrUndefined))
      return fromCallback<V | undefined>((done) =>
        c.lookupCallback(key, (found, failure) => done(failure, found._tag === "Fresh" ? found.value : undefined))
      )
    },
    getOrThrow: (key) => runNow((c) => c.get(key)),
    put: (key, value, putOptions) => {
      forgetKey(key)
      const c = direct
      if (isClosed() || c === undefined) return run((c) => c.put(key, value, putOptions))
      if (c.putNow !== undefined) {
        const failure = c.putNow(key, value, putOptions)
        return failure === undefined ? resolvedUndefined : Promise.reject(failure)
      }
      return fromCallback<void>((done) => c.putCallback(key, value, putOptions, (failure) => done(failure, undefined)))
    },
    delete: (key) => {
      forgetKey(key)
      return runNow((c) => c.delete(key))
    },
    exists: (key) => runNow((c) => c.exists(key)),
    flush: () => {
      inflight.clear()
      return runNow((c) => c.flush())
    },
    size: () => runNow((c) => c.size()),
    stats: () => runNow((c) => c.stats()),
    getOrFetch,
    invalidateTag: (tag) => {
      inflight.clear()
      return runNow((c) => c.invalidateTag(tag))
    },
    getMany: (keys) => runNow((c) => Effect.map(c.getMany(keys), (values) => values.map(Option.getOrUndefined))),
    putMany: (entries, putOptions) => {
      if (Array.isArray(entries)) forget(entries.map((entry) => Array.isArray(entry) ? entry[0] : undefined))
      return runNow((c) => c.putMany(entries, putOptions))
    },
    deleteMany: (keys) => {
      if (Array.isArray(keys)) forget(keys)
      return runNow((c) => c.deleteMany(keys))
    },
    ttl: (key) =>
      runNow((c) =>
        Effect.map(c.ttl(key), Option.match({ onNone: () => undefined, onSome: (left) => Duration.toMillis(left) }))
      ),
    touch: (key, ttl) => runNow((c) => c.touch(key, ttl)),
    take: (key) => {
      forgetKey(key)
      return runNow((c) => Effect.map(c.take(key), Option.getOrUndefined))
    },
    increment: (key, by, putOptions) => {
      forgetKey(key)
      return runNow((c) => c.increment(key, by, putOptions))
    },
    update: (key, f, putOptions) => {
      forgetKey(key)
      // `f` may answer later: the update runs on the runtime, its throw or rejection carried as thrown
      // (not a function: left to the cache's check).
      const apply = typeof f === "function" ? (value: V) => orThrown(() => f(value)) : f
      return run((c) => Effect.map(c.update(key, apply, putOptions), Option.getOrUndefined))
    },
    memoize: (fn, memoOptions) => {
      const fetched = Memoize.fetchOptions(memoOptions)
      return (...args) => {
        const key = Memoize.keyOf(memoOptions, args)
        if (Either.isLeft(key)) return Promise.reject(key.left)
        if (typeof fn !== "function") {
          return Promise.reject(new ConfigError({ field: "fn", reason: "expected a function of the arguments" }))
        }
        return getOrFetch(key.right, () => fn(...args), fetched)
      }
    },
    namespace: (child) => {
      const invalid = Namespace.checkName(child)
      if (invalid !== undefined) throw invalid
      return facadeOf(root, `${name}/${child}`, Effect.flatMap(build, (cache) => cache.child(child)), false)
    },
    subscribe: root.subscribe,
    close: () => {
      viewClosed = true
      return isRoot ? root.close() : Promise.resolve()
    },
    [Symbol.asyncDispose]: () => facade.close()
  }
  return facade
}

// internal

const resolvedUndefined = Promise.resolve(undefined)

/** The cache's own config: the options without where it runs. */
const configOf = <V, I>(
  { backend: _b, logger: _l, metrics: _m, nearCache: _n, observability: _o, spans: _s, topology: _t, ...config }:
    CacheOptions<V, I>
): Vela.Config<V, I> => config

/**
 * Stampede protection's first layer (see `internal/cache/stampede.ts`): the Promise of each key's
 * `getOrFetch` running in this facade, shared by its concurrent callers. A write or removal of a key
 * wins over its fetch in flight: `forget` it, and later misses do not join that fetch.
 */
const makeShared = <V>() => {
  const inflight = new Map<string, Promise<V>>()
  return {
    get: (key: string) => inflight.get(key),
    share: (key: string, fetched: Promise<V>): Promise<V> => {
      const shared = fetched.finally(() => {
        if (inflight.get(key) === shared) inflight.delete(key)
      })
      inflight.set(key, shared)
      return shared
    },
    forget: (keys: Iterable<unknown>) => {
      for (const key of keys) inflight.delete(key as string)
    },
    forgetKey: (key: string) => {
      inflight.delete(key)
    },
    clear: () => inflight.clear()
  }
}

/** The cache's layer with everything it runs on: the near cache, topology, backend, telemetry and a clock that lets the process exit. */
const runtimeLayer = <V, I, A>(options: CacheOptions<V, I>, cache: Layer.Layer<A, unknown, Topology>) => {
  const { backend, logger, metrics, nearCache, observability, spans, topology } = options
  const withNear = nearCache === undefined || nearCache === false
    ? cache
    : cache.pipe(Layer.provide(NearCache.layer(nearCache === true ? {} : nearCache)))
  return withNear.pipe(
    Layer.provide(topology ?? Local.layer),
    Layer.provide(backend ?? Memory.layer()),
    Layer.provideMerge(Telemetry.layer({ spans: spans === true, metrics: metrics === true })),
    Layer.provide(Layer.setClock(unrefClock)),
    Layer.merge(Layer.setClock(unrefClock)),
    Layer.provideMerge(Layer.mergeAll(
      observability ?? Layer.empty,
      logger === undefined ? Layer.empty : Logger.replace(Logger.defaultLogger, logger)
    ))
  )
}

/**
 * The Promise of a call that reports through `done` (a failure, or `undefined` and the value). When
 * `done` runs before the call returns (an in-memory store), the Promise is made settled.
 */
const fromCallback = <A>(call: (done: (failure: unknown, value: A) => void) => void): Promise<A> => {
  let now: Promise<A> | undefined
  let later: ((failure: unknown, value: A) => void) | undefined
  call((failure, value) => {
    if (later !== undefined) return later(failure, value)
    now = failure !== undefined
      ? Promise.reject(failure)
      : value === undefined
      ? resolvedUndefined as Promise<A>
      : Promise.resolve(value)
  })
  return now ?? new Promise<A>((resolve, reject) => {
    later = (failure, value) => failure === undefined ? resolve(value) : reject(failure)
  })
}

/** What a facade fetch threw, carried through the runtime so callers get the very same value. */
class Thrown {
  constructor(readonly thrown: unknown) {}
}

/** What a user function gave, as an Effect: a value, a PromiseLike's result, or what it threw or rejected with. */
const orThrown = <A>(f: () => A | PromiseLike<A>): Effect.Effect<A, Thrown> => {
  try {
    const result = f()
    return isPromiseLike(result)
      ? Effect.tryPromise({ try: async () => result, catch: (thrown) => new Thrown(thrown) })
      : Effect.succeed(result)
  } catch (thrown) {
    return Effect.fail(new Thrown(thrown))
  }
}

const isPromiseLike = (value: unknown): value is PromiseLike<unknown> =>
  (typeof value === "object" || typeof value === "function") && value !== null &&
  typeof (value as { then?: unknown }).then === "function"

const unwrap = (error: unknown): unknown => error instanceof Thrown ? error.thrown : error

const isAsync = (cause: Cause.Cause<unknown>): boolean => Runtime.isAsyncFiberException(Cause.squash(cause))

/**
 * The live clock, with timers that do not keep the process alive: a program that forgets to
 * close its caches still exits, as with lru-cache.
 */
const live = Clock.make()
const unrefClock: Clock.Clock = {
  [Clock.ClockTypeId]: Clock.ClockTypeId,
  unsafeCurrentTimeMillis: () => live.unsafeCurrentTimeMillis(),
  unsafeCurrentTimeNanos: () => live.unsafeCurrentTimeNanos(),
  currentTimeMillis: live.currentTimeMillis,
  currentTimeNanos: live.currentTimeNanos,
  sleep: (duration: Duration.DurationInput) =>
    Effect.async<void>((resume) => {
      const timer = setTimeout(() => resume(Effect.void), Duration.toMillis(duration))
      timer.unref()
      return Effect.sync(() => clearTimeout(timer))
    })
}
