/**
 * The object `createCache` returns, for the cache and for each of its namespaces: its calls take
 * the paths around the runtime where the cache allows them, and enter the runtime otherwise.
 */
import * as Cause from "effect/Cause"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import type * as ManagedRuntime from "effect/ManagedRuntime"
import * as Option from "effect/Option"
import { CacheClosed, ConfigError } from "../../Errors.js"
import type * as Vela from "../../Vela.js"
import type { InternalCache } from "../cache/make.js"
import * as Memoize from "../cache/memoize.js"
import * as Namespace from "../cache/namespace.js"
import { Miss, Unknown } from "../cache/read.js"

import type { Cache } from "../../promise.js"
import { fromCallback, isAsync, orThrown, resolvedUndefined, Thrown, unwrap } from "./bridge.js"
import { makeShared } from "./shared.js"

/** What a cache and its namespaces' facades share: the runtime, and whether the cache was closed. */
export interface Root<R> {
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
export const facadeOf = <V, R>(
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
