/**
 * The internal constructor of a cache: the object `Vela.make` shows users as a `Cache`, and the
 * Promise facade holds whole, for the paths that skip the runtime (`now`, `lookupCallback`,
 * `putCallback`, a `getOrFetch` that does not read again).
 */
import * as Effect from "effect/Effect"
import type * as Option from "effect/Option"
import * as Scope from "effect/Scope"
import type { BackendError, CacheError, ConfigError, NotFound } from "../../Errors.js"
import type { Stats } from "../../Stats.js"
import type { Topology } from "../../Topology.js"
import type * as Vela from "../../Vela.js"
import type { Atomics } from "./atomic.js"
import * as Atomic from "./atomic.js"
import * as Batch from "./batch.js"
import type { Config } from "./config.js"
import { resolve } from "./config.js"
import * as Core from "./core.js"
import * as Fetch from "./fetch.js"
import type { GetOrFetch } from "./getOrFetch.js"
import * as GetOrFetchOf from "./getOrFetch.js"
import * as Memoize from "./memoize.js"
import * as Namespace from "./namespace.js"
import type { Reads } from "./read.js"
import * as Read from "./read.js"
import type { Writes } from "./write.js"
import * as Write from "./write.js"

type Batches<V> = ReturnType<typeof Batch.make<V>>

export interface InternalCache<V> extends Batches<V>, Atomics<V> {
  readonly name: string
  readonly get: (key: string) => Effect.Effect<V, NotFound | CacheError>
  readonly getOption: (key: string) => Effect.Effect<Option.Option<V>, CacheError>
  readonly put: Writes<V>["put"]
  readonly delete: (key: string) => Effect.Effect<void, CacheError>
  readonly exists: (key: string) => Effect.Effect<boolean, CacheError>
  readonly flush: () => Effect.Effect<void, CacheError>
  readonly size: () => Effect.Effect<number, CacheError>
  readonly stats: () => Effect.Effect<Stats>
  readonly getOrFetch: GetOrFetch<V>
  readonly invalidateTag: (tag: string) => Effect.Effect<number, CacheError>
  /**
   * Whether callers without the runtime may take the paths below; `false` with spans on, so that
   * every call runs on the runtime and gets its span.
   */
  readonly direct: boolean
  /** Every operation but a fetch completes synchronously (an authoritative in-memory store with a synchronous write). */
  readonly synchronous: boolean
  readonly check: Core.Core["check"]
  readonly now: Reads<V>["now"]
  readonly lookupCallback: Reads<V>["lookupCallback"]
  readonly putNow: Writes<V>["putNow"]
  readonly putCallback: Writes<V>["putCallback"]
  readonly joined: Fetch.Fetches<V>["joined"]
  readonly memoize: Vela.Cache<V>["memoize"]
  /** The Effect API's view of the namespace `name`. */
  readonly namespace: (name: string) => Vela.Cache<V>
  /** The cache of the namespace `name`, opened on the first call. */
  readonly child: (name: string) => Effect.Effect<InternalCache<V>, CacheError>
}

/**
 * Builds a cache on the `Topology` in context. The cache lives as long as the scope: closing it
 * stops the sweeper and any running fetch, and every later call fails with `CacheClosed`.
 */
export const make = <V = unknown, I = unknown>(
  config: Config<V, I> & { readonly name: string },
  namespace?: string
): Effect.Effect<InternalCache<V>, ConfigError | BackendError, Topology | Scope.Scope> =>
  Effect.gen(function*() {
    const core = yield* Core.make(yield* resolve(config), namespace)
    // A namespace opens later, on its first call: on what this cache runs on, in its scope.
    const context = yield* Effect.context<Topology>()
    const scope = yield* Effect.scope
    const child = Namespace.children<V>(core.closed, (name) =>
      make<V, I>({ ...config, name: `${core.name}/${name}` }, `${core.namespace}${Namespace.SEPARATOR}${name}`).pipe(
        Scope.extend(scope),
        Effect.provide(context),
        Effect.withClock(core.clock)
      ))
    const getOrFetchSpan: InternalCache<V>["getOrFetch"] = (key, fetch, options, known) =>
      core.observer.span("get_or_fetch", key, getOrFetch(key, fetch, options, known))
    const reads = Read.make<V>(core)
    const writes = Write.make<V>(core)
    const fetches = Fetch.make(core, writes)
    const getOrFetch = GetOrFetchOf.make(core, reads, fetches)
    const batches = Batch.make(core, reads)
    const atomics = Atomic.make<V>(core, writes)
    const { span, spans } = core.observer
    const stats = core.store.stats ?? Effect.sync(() =>
      core.counters.snapshot()
    )
    return {
      name: core.name,
      get: (key) => span("get", key, reads.get(key)),
      getOption: (key) => span("get", key, reads.getOption(key)),
      put: (key, value, options) => span("put", key, writes.put(key, value, options)),
      delete: (key) => span("delete", key, writes.remove(key)),
      exists: (key) => span("exists", key, writes.exists(key)),
      flush: () => span("flush", undefined, writes.flush),
      size: () => span("size", undefined, writes.size),
      stats: () => stats,
      getOrFetch: getOrFetchSpan,
      invalidateTag: (tag) => span("invalidate_tag", undefined, writes.invalidateTag(tag), tag),
      getMany: (keys) => span("get_many", undefined, batches.getMany(keys)),
      putMany: (entries, options) => span("put_many", undefined, batches.putMany(entries, options)),
      deleteMany: (keys) => span("delete_many", undefined, batches.deleteMany(keys)),
      ttl: (key) => span("ttl", key, atomics.ttl(key)),
      touch: (key, ttl) => span("touch", key, atomics.touch(key, ttl)),
      take: (key) => span("take", key, atomics.take(key)),
      increment: (key, by, options) => span("increment", key, atomics.increment(key, by, options)),
      update: (key, f, options) => span("update", key, atomics.update(key, f, options)),
      direct: !spans,
      // A synchronous write marks a store that does nothing beyond this process's memory (Replicated
      // reads in place too, but its writes, deletes and flushes travel to its peers).
      synchronous: core.store.sync?.authoritative === true && core.store.sync.set !== undefined,
      check: core.check,
      now: reads.now,
      lookupCallback: reads.lookupCallback,
      putNow: writes.putNow,
      putCallback: writes.putCallback,
      joined: fetches.joined,
      memoize: Memoize.make(getOrFetchSpan),
      namespace: (name) => Namespace.view(`${core.name}/${name}`, child(name)),
      child
    }
  })
