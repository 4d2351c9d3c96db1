/**
 * `namespace(name)`: a view of a cache whose keys live in a child namespace of the backend, opened
 * on first use in the parent's scope (closed with it), with its own stats, fetches and sweeper.
 *
 * A child's backend namespace is the parent's, `SEPARATOR`, and the child's name. No cache name and
 * no namespace name may hold `SEPARATOR`, so the path of names a namespace is made of can be read
 * back from it: two different paths (siblings, a child and its parent, a child and any cache) never
 * share a namespace, whatever their names hold otherwise.
 */
import * as Effect from "effect/Effect"
import type { CacheError } from "../../Errors.js"
import { ConfigError } from "../../Errors.js"
import { sum } from "../../Stats.js"
import type * as Vela from "../../Vela.js"
import * as Check from "../config.js"
import type { InternalCache } from "./make.js"
import * as Memoize from "./memoize.js"

/** U+001F (the ASCII unit separator): no backend treats it specially, and no name uses it. */
export const SEPARATOR = "\u001f"

/** `undefined` when `name` may name a namespace, otherwise why not. */
export const checkName = (name: unknown): ConfigError | undefined => {
  if (typeof name !== "string" || name.length === 0) {
    return new ConfigError({ field: "namespace", reason: "expected a non-empty string" })
  }
  if (name.includes(SEPARATOR)) {
    return new ConfigError({ field: "namespace", reason: "a name may not hold U+001F (it separates namespaces)" })
  }
  if (!Check.isWellFormed(name)) {
    return new ConfigError({ field: "namespace", reason: "the name has a lone surrogate (not well-formed UTF-16)" })
  }
  return undefined
}

/**
 * The children of a cache: `open` builds the child of a name (in the parent's scope), once per
 * name, on the first call that needs it; a failed opening (the backend unreachable) is tried again
 * by the next call. After the parent closed, a child never opened fails with its `CacheClosed`.
 */
export const children = <V>(
  closed: () => CacheError | undefined,
  open: (name: string) => Effect.Effect<InternalCache<V>, CacheError>
) => {
  const opened = new Map<string, Effect.Effect<InternalCache<V>, CacheError>>()
  return (name: string): Effect.Effect<InternalCache<V>, CacheError> => {
    const invalid = checkName(name)
    if (invalid !== undefined) return Effect.fail(invalid)
    let child = opened.get(name)
    if (child === undefined) {
      child = once(closed, open(name))
      opened.set(name, child)
    }
    return child
  }
}

const once = <A>(closed: () => CacheError | undefined, self: Effect.Effect<A, CacheError>) => {
  const lock = Effect.unsafeMakeSemaphore(1)
  let done: { readonly value: A } | undefined
  const attempt = lock.withPermits(1)(Effect.suspend(() => {
    if (done !== undefined) return Effect.succeed(done.value)
    const failure = closed()
    if (failure !== undefined) return Effect.fail(failure)
    return Effect.tap(self, (value) => {
      done = { value }
    })
  }))
  return Effect.suspend(() => done !== undefined ? Effect.succeed(done.value) : attempt)
}

/** The `Cache` users hold of a namespace: every call runs on the child, once it is open. */
export const view = <V>(name: string, open: Effect.Effect<InternalCache<V>, CacheError>): Vela.Cache<V> => {
  const via = <A, E, R>(f: (cache: InternalCache<V>) => Effect.Effect<A, E, R>) => Effect.flatMap(open, f)
  const getOrFetch: Vela.Cache<V>["getOrFetch"] = (key, fetch, options) =>
    via((cache) => cache.getOrFetch(key, fetch, options))
  return {
    name,
    get: (key) => via((cache) => cache.get(key)),
    getOption: (key) => via((cache) => cache.getOption(key)),
    put: (key, value, options) => via((cache) => cache.put(key, value, options)),
    delete: (key) => via((cache) => cache.delete(key)),
    exists: (key) => via((cache) => cache.exists(key)),
    flush: () => via((cache) => cache.flush()),
    size: () => via((cache) => cache.size()),
    // A namespace that could not open (or never will: its parent closed) has counted nothing.
    stats: () => Effect.orElseSucceed(via((cache) => cache.stats()), () => sum([])),
    getOrFetch,
    invalidateTag: (tag) => via((cache) => cache.invalidateTag(tag)),
    getMany: (keys) => via((cache) => cache.getMany(keys)),
    putMany: (entries, options) => via((cache) => cache.putMany(entries, options)),
    deleteMany: (keys) => via((cache) => cache.deleteMany(keys)),
    ttl: (key) => via((cache) => cache.ttl(key)),
    touch: (key, ttl) => via((cache) => cache.touch(key, ttl)),
    take: (key) => via((cache) => cache.take(key)),
    increment: (key, by, options) => via((cache) => cache.increment(key, by, options)),
    update: (key, f, options) => via((cache) => cache.update(key, f, options)),
    memoize: Memoize.make(getOrFetch),
    namespace: (child) => view(`${name}/${child}`, Effect.flatMap(open, (cache) => cache.child(child)))
  }
}
