/**
 * The cache users hold. `Vela.layer(Tag, config)` builds one on whatever `Topology` is in context,
 * with stampede protection, stats, telemetry and a TTL sweeper; it is the one place where config
 * defaults are applied. The work lives in `internal/cache/`: `read.ts` and `write.ts` (the one
 * read and write path), `fetch.ts` and `stampede.ts` (`getOrFetch` and its coalescing), `batch.ts`,
 * `atomic.ts` (`ttl`, `touch`, `take`, `increment`, `update`), `memoize.ts`, `namespace.ts`,
 * `config.ts`, and `make.ts`, which builds the object this module shows as a `Cache`.
 *
 * @since 0.1.0
 */
import type * as Context from "effect/Context"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import type { BackendError, CacheError, ConfigError, FetchTimeout, NotFound } from "./Errors.js"
import type * as Options from "./internal/cache/config.js"
import { fromEnvironment } from "./internal/cache/environment.js"
import * as Internal from "./internal/cache/make.js"
import type * as Memoize from "./internal/cache/memoize.js"
import * as Local from "./Local.js"
import * as Memory from "./Memory.js"
import type { Stats } from "./Stats.js"
import type { Topology } from "./Topology.js"

/**
 * A cache's config; every field is optional and defaults as in the Elixir original.
 *
 * @since 0.1.0
 * @category models
 */
export type Config<V = unknown, I = unknown> = Options.Config<V, I>

/**
 * Options of `put` (and of the value `getOrFetch` stores): `ttl` (default: the cache's
 * `defaultTtl`) and `tags`.
 *
 * @since 0.1.0
 * @category models
 */
export type PutOptions = Options.PutOptions

/**
 * Options of `getOrFetch`: those of `put` for the fetched value (each may be a function of the
 * value instead), and how to fetch it (`grace`, `softTimeout`, `hardTimeout`, `cacheIf`).
 *
 * @since 0.1.0
 * @category models
 */
export type FetchOptions<V> = Options.FetchOptions<V>

/**
 * Options of `memoize`: those of `getOrFetch`, and `key`, the key of a call's arguments (default:
 * their `Codec.json` encoding).
 *
 * @since 0.2.0
 * @category models
 */
export type MemoizeOptions<V, A extends ReadonlyArray<unknown>> = Memoize.MemoizeOptions<V, A>

/**
 * A cache of values `V` under string keys; one per Tag.
 *
 * @since 0.1.0
 * @category models
 */
export interface Cache<V> {
  readonly name: string
  readonly get: (key: string) => Effect.Effect<V, NotFound | CacheError>
  readonly getOption: (key: string) => Effect.Effect<Option.Option<V>, CacheError>
  readonly put: (key: string, value: V, options?: PutOptions) => Effect.Effect<void, CacheError>
  readonly delete: (key: string) => Effect.Effect<void, CacheError>
  readonly exists: (key: string) => Effect.Effect<boolean, CacheError>
  readonly flush: () => Effect.Effect<void, CacheError>
  readonly size: () => Effect.Effect<number, CacheError>
  readonly stats: () => Effect.Effect<Stats>
  /** The cached value, or the value of `fetch` (run once per key at a time), then cached. */
  readonly getOrFetch: <E = never, R = never>(
    key: string,
    fetch: (key: string) => Effect.Effect<V, E, R>,
    options?: FetchOptions<V>
  ) => Effect.Effect<V, E | FetchTimeout | CacheError, R>
  /** Removes every entry tagged `tag`; returns how many were removed. */
  readonly invalidateTag: (tag: string) => Effect.Effect<number, CacheError>
  /** The values of `keys` in their order, `None` where there is no live entry; one batch on the store. */
  readonly getMany: (keys: ReadonlyArray<string>) => Effect.Effect<ReadonlyArray<Option.Option<V>>, CacheError>
  /**
   * Writes every entry in one batch; `options` apply to all, and an entry may carry its own as a
   * third element. Every key and option is checked before anything is written.
   */
  readonly putMany: (
    entries: ReadonlyArray<readonly [key: string, value: V, options?: PutOptions]>,
    options?: PutOptions
  ) => Effect.Effect<void, CacheError>
  /** Removes `keys` in one batch; returns how many live entries were removed. */
  readonly deleteMany: (keys: ReadonlyArray<string>) => Effect.Effect<number, CacheError>
  /**
   * The time `key` has left (`Duration.infinity`: no expiry), `None` when it has no live entry. An
   * entry fetched with grace: the time until it turns stale.
   */
  readonly ttl: (key: string) => Effect.Effect<Option.Option<Duration.Duration>, CacheError>
  /**
   * Gives the live entry a new TTL from now (default: `defaultTtl`), value and tags unchanged;
   * `false` when there is none. An entry fetched with grace: when it is dropped, not its freshness.
   */
  readonly touch: (key: string, ttl?: Duration.DurationInput | "infinity") => Effect.Effect<boolean, CacheError>
  /** Gets and deletes the live entry as one step: of concurrent takers of a key, exactly one gets it. */
  readonly take: (key: string) => Effect.Effect<Option.Option<V>, CacheError>
  /**
   * Adds `by` (default 1) to the number under `key` as one step and returns the sum; an absent key
   * starts at 0, created with `options` (default: `defaultTtl`, no tags), a live counter keeps its
   * TTL and tags. `WrongType` when the key holds a non-number; `ConfigError` for a non-finite `by`.
   */
  readonly increment: (key: string, by?: number, options?: PutOptions) => Effect.Effect<number, CacheError>
  /**
   * Replaces the live value with `f(value)` (optimistic: `f` may run more than once when another
   * write races) and returns it; `None` when there is no live entry. `options` replace the entry's
   * TTL and tags where given; otherwise it keeps its own.
   */
  readonly update: <E = never, R = never>(
    key: string,
    f: (value: V) => V | Effect.Effect<V, E, R>,
    options?: PutOptions
  ) => Effect.Effect<Option.Option<V>, CacheError | E, R>
  /**
   * `fn` with its results cached: each call goes through `getOrFetch` under the key of its
   * arguments (default: their `Codec.json` encoding; one that does not encode is `InvalidKey`).
   */
  readonly memoize: <A extends ReadonlyArray<unknown>, E = never, R = never>(
    fn: (...args: A) => Effect.Effect<V, E, R>,
    options?: MemoizeOptions<V, A>
  ) => (...args: A) => Effect.Effect<V, E | FetchTimeout | CacheError, R>
  /**
   * A view whose keys live in the child namespace `name` (opened on first use, closed with this
   * cache): its flush, size, invalidateTag and stats see only its own entries; it nests, and never
   * shares an entry with its siblings, this cache or any other cache.
   */
  readonly namespace: (name: string) => Cache<V>
}

/**
 * Builds a cache on the `Topology` in context. The cache lives as long as the scope: closing it
 * stops the sweeper and any running fetch, and every later call fails with `CacheClosed`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = <V = unknown, I = unknown>(
  config: Config<V, I> & { readonly name: string }
): Effect.Effect<Cache<V>, ConfigError | BackendError, Topology | Scope.Scope> =>
  Effect.map(Internal.make<V, I>(config), (cache) => ({
    name: cache.name,
    get: cache.get,
    getOption: cache.getOption,
    put: cache.put,
    delete: cache.delete,
    exists: cache.exists,
    flush: cache.flush,
    size: cache.size,
    stats: cache.stats,
    getOrFetch: (key, fetch, options) => cache.getOrFetch(key, fetch, options),
    invalidateTag: cache.invalidateTag,
    getMany: cache.getMany,
    putMany: cache.putMany,
    deleteMany: cache.deleteMany,
    ttl: cache.ttl,
    touch: cache.touch,
    take: cache.take,
    increment: cache.increment,
    update: (key, f, options) => cache.update(key, f, options),
    memoize: cache.memoize,
    namespace: cache.namespace
  }))

/**
 * A layer of one cache on the `Topology` in context; `name` defaults to the Tag's key.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = <Id, V, I = V>(
  tag: Context.Tag<Id, Cache<V>>,
  config: Config<V, I> = {}
): Layer.Layer<Id, ConfigError | BackendError, Topology> =>
  Layer.scoped(tag, make({ ...config, name: config.name ?? tag.key }))

/**
 * `layer` on an in-memory backend and the `Local` topology: the common single-process cache.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerMemory = <Id, V, I = V>(
  tag: Context.Tag<Id, Cache<V>>,
  config: Config<V, I> = {}
): Layer.Layer<Id, ConfigError | BackendError> =>
  layer(tag, config).pipe(Layer.provide(Local.layer), Layer.provide(Memory.layer()))

/**
 * `layer`, with each field overridable from Effect `Config`: `VELA_NAME`, `VELA_DEFAULT_TTL`,
 * `VELA_MAX_SIZE`, `VELA_EVICTION_POLICY`, `VELA_STAMPEDE_PROTECTION`, `VELA_STAMPEDE_TIMEOUT`,
 * `VELA_STATS_ENABLED`, `VELA_TELEMETRY_PREFIX` (comma-separated), `VELA_SWEEP_INTERVAL`,
 * `VELA_GRACE`, `VELA_SOFT_TIMEOUT`, `VELA_HARD_TIMEOUT` and `VELA_REFRESH_BACKOFF` with the default
 * provider. A value that is set wins over `config`; a malformed one is a `ConfigError`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = <Id, V, I = V>(
  tag: Context.Tag<Id, Cache<V>>,
  config: Config<V, I> = {}
): Layer.Layer<Id, ConfigError | BackendError, Topology> =>
  Layer.scoped(
    tag,
    Effect.flatMap(fromEnvironment(config), (merged) => make({ ...merged, name: merged.name ?? tag.key }))
  )
