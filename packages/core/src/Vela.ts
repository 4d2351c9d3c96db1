/**
 * The cache users hold. `Vela.layer(Tag, config)` builds one on whatever `Topology` is in context,
 * with stampede protection, stats, telemetry and a TTL sweeper; it is the one place where config
 * defaults are applied.
 */
import type { Context, Duration, Scope } from "effect"
import { Config as EffectConfig, Effect, Either, Exit, Layer, Option, Schedule, Schema } from "effect"
import type { Entry, EvictionPolicy, Store } from "./Backend.js"
import * as Coalescer from "./Coalescer.js"
import * as Codec from "./Codec.js"
import type { BackendError, CacheError } from "./Errors.js"
import { CacheClosed, CodecError, ConfigError, FetchTimeout, NotFound } from "./Errors.js"
import * as Check from "./internal/config.js"
import * as Grace from "./internal/grace.js"
import { Graced } from "./internal/grace.js"
import * as Observe from "./internal/observe.js"
import { noStart } from "./internal/observe.js"
import type { UnsafeCache } from "./internal/unsafe.js"
import { Miss, registry, throughRuntime, Unknown } from "./internal/unsafe.js"
import * as Local from "./Local.js"
import * as Memory from "./Memory.js"
import type { Stats } from "./Stats.js"
import { makeCounters } from "./Stats.js"
import { Telemetry } from "./Telemetry.js"
import { Topology } from "./Topology.js"

/** A cache's config; every field is optional and defaults as in the Elixir original. */
export interface Config<V = unknown, I = unknown> {
  /** Namespace on the backend; default: the Tag's key. */
  readonly name?: string | undefined
  /** TTL of a `put` without `ttl`; a number is milliseconds. Default `"infinity"`. */
  readonly defaultTtl?: Duration.DurationInput | "infinity" | undefined
  /** Default `"infinity"`. */
  readonly maxSize?: number | "infinity" | undefined
  /** Default `"ttl-only"`. */
  readonly evictionPolicy?: EvictionPolicy | undefined
  /** Default `true`. */
  readonly stampedeProtection?: boolean | undefined
  /** How long a `getOrFetch` caller waits for a fetch. Default `"5 seconds"`. */
  readonly stampedeTimeout?: Duration.DurationInput | undefined
  /** Default `true`. */
  readonly statsEnabled?: boolean | undefined
  /** Default `["vela", "cache"]`. */
  readonly telemetryPrefix?: ReadonlyArray<string> | undefined
  /** Default `"30 seconds"`. */
  readonly sweepInterval?: Duration.DurationInput | undefined
  /** Encodes and validates values where they leave the process. */
  readonly value?: Schema.Schema<V, I> | undefined
  /** Default `grace` of `getOrFetch` (default 0: no stale values). */
  readonly grace?: Duration.DurationInput | undefined
  /** Default `softTimeout` of `getOrFetch` (default 0). */
  readonly softTimeout?: Duration.DurationInput | undefined
  /** Default `hardTimeout` of `getOrFetch` (default `"infinity"`). */
  readonly hardTimeout?: Duration.DurationInput | "infinity" | undefined
  /** After a refresh of a stale entry fails, how long its stale value is served before the next try (default `"5 seconds"`). */
  readonly refreshBackoff?: Duration.DurationInput | undefined
}

/** Options of `put` and `getOrFetch`. */
export interface PutOptions {
  /** Default: the cache's `defaultTtl`. */
  readonly ttl?: Duration.DurationInput | "infinity" | undefined
  readonly tags?: ReadonlyArray<string> | undefined
}

/** Options of `getOrFetch`: those of `put` for the fetched value, and how to fetch it. */
export interface FetchOptions<V> extends PutOptions {
  /**
   * How long past its TTL the fetched entry is kept, to be served stale while a refresh runs
   * (stale-while-revalidate). Plain reads (`get`, `getOption`, `getMany`) treat it as expired.
   */
  readonly grace?: Duration.DurationInput | undefined
  /** How long a caller holding a stale value waits for the refresh before it takes the stale value (0: never). */
  readonly softTimeout?: Duration.DurationInput | undefined
  /** A fetch running longer than this is interrupted and fails with `FetchTimeout`. */
  readonly hardTimeout?: Duration.DurationInput | "infinity" | undefined
  /**
   * Whether to cache a fetched value: `false` keeps it out (errors, empty results), `true` caches it
   * with `ttl`, a duration caches it for that long instead (negative caching with its own TTL).
   */
  readonly cacheIf?: ((value: V) => boolean | Duration.DurationInput) | undefined
}

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
}

/** A config with its defaults applied and its durations in milliseconds. */
export interface ResolvedConfig {
  readonly name: string
  readonly defaultTtl: number
  readonly maxSize: number
  readonly evictionPolicy: EvictionPolicy
  readonly stampedeProtection: boolean
  readonly stampedeTimeout: number
  readonly statsEnabled: boolean
  readonly telemetryPrefix: ReadonlyArray<string>
  readonly sweepInterval: number
  readonly codec: Codec.Codec<any>
  readonly grace: number
  readonly softTimeout: number
  readonly hardTimeout: number
  readonly refreshBackoff: number
}

/** Applies defaults and checks every field; the first nonsensical one is a `ConfigError`. */
export const resolve = <V, I>(
  config: Config<V, I> & { readonly name: string }
): Either.Either<ResolvedConfig, ConfigError> =>
  Either.gen(function*() {
    const unknown = Check.options("config", config, configFields)
    if (unknown !== undefined) return yield* Either.left(unknown)
    if (typeof config.name !== "string" || config.name.length === 0) {
      return yield* Either.left(new ConfigError({ field: "name", reason: "expected a non-empty string" }))
    }
    const prefix = config.telemetryPrefix ?? ["vela", "cache"]
    if (
      !Array.isArray(prefix) || prefix.length === 0 ||
      !prefix.every((part) => typeof part === "string" && part.length > 0)
    ) {
      return yield* Either.left(new ConfigError({ field: "telemetryPrefix", reason: "expected non-empty strings" }))
    }
    if (config.value !== undefined && !Schema.isSchema(config.value)) {
      return yield* Either.left(new ConfigError({ field: "value", reason: "expected a Schema" }))
    }
    return {
      name: config.name,
      defaultTtl: yield* Check.ttl("defaultTtl", config.defaultTtl ?? "infinity"),
      maxSize: yield* Check.size("maxSize", config.maxSize ?? "infinity"),
      evictionPolicy: yield* Check.policy(config.evictionPolicy ?? "ttl-only"),
      stampedeProtection: yield* Check.boolean("stampedeProtection", config.stampedeProtection ?? true),
      stampedeTimeout: yield* Check.timer("stampedeTimeout", config.stampedeTimeout ?? "5 seconds", false),
      statsEnabled: yield* Check.boolean("statsEnabled", config.statsEnabled ?? true),
      telemetryPrefix: prefix,
      sweepInterval: yield* Check.timer("sweepInterval", config.sweepInterval ?? "30 seconds", false),
      codec: config.value === undefined ? Codec.json : Codec.fromSchema(config.value),
      grace: yield* Check.millis("grace", config.grace ?? 0, false, true),
      softTimeout: yield* Check.timer("softTimeout", config.softTimeout ?? 0, false, true),
      hardTimeout: yield* Check.timer("hardTimeout", config.hardTimeout ?? "infinity", true),
      refreshBackoff: yield* Check.millis("refreshBackoff", config.refreshBackoff ?? "5 seconds", false, true)
    }
  })

/**
 * Builds a cache on the `Topology` in context. The cache lives as long as the scope: closing it
 * stops the sweeper and any running fetch, and every later call fails with `CacheClosed`.
 */
export const make = <V = unknown, I = unknown>(
  config: Config<V, I> & { readonly name: string }
): Effect.Effect<Cache<V>, ConfigError | BackendError, Topology | Scope.Scope> =>
  Effect.gen(function*() {
    const resolved = yield* resolve(config)
    const topology = yield* Topology
    const clock = yield* Effect.clock
    const scope = yield* Effect.scope
    const telemetry = Option.getOrUndefined(yield* Effect.serviceOption(Telemetry))
    const { name, telemetryPrefix: prefix } = resolved
    const counters = makeCounters(prefix, name, resolved.statsEnabled)
    const { emit, recordSize, span, start } = Observe.make(telemetry, clock, prefix, name)
    const store: Store = yield* topology.open({
      namespace: name,
      clock,
      codec: Grace.codec(resolved.codec),
      maxSize: resolved.maxSize,
      evictionPolicy: resolved.evictionPolicy,
      onEvict: (count) => {
        counters.evictions.add(count)
        emit?.("evict", noStart, {}, { count })
      },
      onExpire: (count) => {
        counters.expirations.add(count)
        emit?.("expire", noStart, {}, { count })
      },
      stats: () => counters.snapshot()
    })
    let closed = false
    yield* Effect.addFinalizer(() => Effect.sync(() => closed = true))
    yield* Effect.forkIn(
      Effect.schedule(
        Effect.catchAllCause(
          Effect.zipRight(
            Effect.sync(() => pruneBackoff()),
            recordSize === undefined || store.sync?.authoritative !== true
              ? store.sweep
              : Effect.flatMap(store.sweep, () => Effect.map(store.size, recordSize))
          ),
          (cause) => Effect.annotateLogs(Effect.logWarning("sweep failed", cause), { cache: name, operation: "sweep" })
        ),
        Schedule.spaced(resolved.sweepInterval)
      ),
      scope
    )
    const coalescer = Coalescer.make(scope, clock, resolved.stampedeTimeout)
    /** Fetches run without the coalescer (`stampedeProtection: false`), by key, so a write can take their lease. */
    const unshared = new Map<string, Set<{ held: boolean }>>()
    /** Keys whose refresh failed, and until when their stale value is served without another try. */
    const backoff = new Map<string, number>()
    /**
     * A write or removal of `key` wins over its fetches in flight: they no longer store their value,
     * and the next `getOrFetch` reads and fetches afresh. What was known of the old entry goes too.
     */
    const drop = (key: string) => {
      coalescer.release(key)
      backoff.delete(key)
      const leases = unshared.get(key)
      if (leases === undefined) return
      for (const lease of leases) lease.held = false
      unshared.delete(key)
    }
    /** `drop` of every key, for changes that do not name their keys (`flush`, `invalidateTag`). */
    const dropAll = () => {
      coalescer.releaseAll()
      backoff.clear()
      for (const leases of unshared.values()) for (const lease of leases) lease.held = false
      unshared.clear()
    }
    const closedError = new CacheClosed({ cache: name })

    // Reads

    const check = (key: unknown): CacheError | undefined => closed ? closedError : Check.checkKey(key)
    const sync = store.sync

    /** A hit, an authoritative miss, or `Unknown` (a stale entry too); counted and reported. */
    const readSync = (key: string): unknown => {
      if (sync === undefined) return Unknown
      const started = start()
      const entry = sync.get(key)
      if (entry !== undefined) {
        let value = entry.value
        if (value instanceof Graced) {
          if (value.freshUntil <= clock.unsafeCurrentTimeMillis()) return Unknown
          value = value.value
        }
        counters.hits.add(1)
        emit?.("get", started, { key, result: "hit" })
        return value
      }
      if (!sync.authoritative) return Unknown
      counters.misses.add(1)
      emit?.("get", started, { key, result: "miss" })
      return Miss
    }

    /** A fresh value, a stale one within its grace, or nothing: a hit or a miss. */
    const classify = (key: string, entry: Option.Option<Entry>, started: bigint): Lookup<V> => {
      let found: Lookup<V> = missing
      if (Option.isSome(entry)) {
        const value = entry.value.value
        found = !(value instanceof Graced)
          ? { _tag: "Fresh", value: value as V }
          : value.freshUntil > clock.unsafeCurrentTimeMillis()
          ? { _tag: "Fresh", value: value.value as V }
          : { _tag: "Stale", value: value.value as V }
      }
      const hit = found._tag === "Fresh"
      if (hit) counters.hits.add(1)
      else counters.misses.add(1)
      emit?.("get", started, { key, result: hit ? "hit" : "miss" })
      return found
    }

    const getCallback = store.getCallback
    /**
     * A store read through `getCallback`, counted and classified as `lookup` does; `done` gets
     * `missing` with the failure when there is one.
     */
    const lookupCallback = getCallback === undefined ? undefined : (
      key: string,
      done: (found: Lookup<V>, failure?: CacheError) => void
    ) => {
      const started = start()
      getCallback(key, (entry, failure) => {
        if (failure === undefined) return done(classify(key, Option.fromNullable(entry), started))
        if (failure._tag === "CodecError") counters.codecErrors.add(1)
        done(missing, failure)
      })
    }

    // The Effect API reads through `store.get` (an `Effect.async` over a native callback read), the
    // facade through `store.getCallback`: each store's native form serves both.
    const lookup = (key: string): Effect.Effect<Lookup<V>, CacheError> => {
      const started = start()
      return store.get(key).pipe(
        Effect.tapErrorTag("CodecError", () => Effect.sync(() => counters.codecErrors.add(1))),
        Effect.map((entry) => classify(key, entry, started))
      )
    }

    /** `lookup` for callers without the runtime (the Promise facade): the fresh value, or `Miss`. */
    const readCallback = lookupCallback === undefined ? undefined : (
      key: string,
      done: (value: unknown, failure?: CacheError) => void
    ) =>
      lookupCallback(key, (found, failure) =>
        failure !== undefined ? done(undefined, failure) : done(found._tag === "Fresh" ? found.value : Miss))

    const readStore = (key: string): Effect.Effect<Option.Option<V>, CacheError> =>
      Effect.map(lookup(key), (found) =>
        found._tag === "Fresh" ? Option.some(found.value) : Option.none())

    const read = (key: string): Effect.Effect<Option.Option<V>, CacheError> => {
      const found = readSync(key)
      if (found === Unknown) {
        return readStore(key)
      }
      return Effect.succeed(found === Miss ? Option.none() : Option.some(found as V))
    }

    const get = (key: string): Effect.Effect<V, NotFound | CacheError> =>
      Effect.suspend(() => {
        const invalid = check(key)
        if (invalid !== undefined) {
          return Effect.fail(invalid)
        }
        const found = readSync(key)
        if (found === Miss) {
          return Effect.fail(new NotFound({ key }))
        }
        if (found !== Unknown) {
          return Effect.succeed(found as V)
        }
        return Effect.flatMap(
          readStore(key),
          (value) =>
            Option.isSome(value) ? Effect.succeed(value.value) : Effect.fail(new NotFound({ key }))
        )
      })

    const getOption = (key: string): Effect.Effect<Option.Option<V>, CacheError> =>
      Effect.suspend(() => {
        const invalid = check(key)
        return invalid === undefined ? read(key) : Effect.fail(invalid)
      })

    // Writes

    const defaults = Either.right({ ttl: resolved.defaultTtl, tags: [] as ReadonlyArray<string> })
    /** The ttl and tags of `options`, already checked to be an object of known options (or `undefined`). */
    const entryOptions = (
      options: PutOptions | undefined
    ): Either.Either<{ ttl: number; tags: ReadonlyArray<string> }, ConfigError> => {
      if (options === undefined || (options.ttl === undefined && options.tags === undefined)) {
        return defaults
      }
      const ttl = options.ttl === undefined ? Either.right(resolved.defaultTtl) : Check.ttl("ttl", options.ttl)
      if (Either.isLeft(ttl)) {
        return Either.left(ttl.left)
      }
      const tags = options.tags === undefined ? Either.right([]) : Check.tags(options.tags)
      if (Either.isLeft(tags)) {
        return Either.left(tags.left)
      }
      return Either.right({ ttl: ttl.right, tags: tags.right })
    }

    /** The entry a `put` writes, or why it cannot be written. */
    const prepare = (key: string, value: V, options: PutOptions | undefined): Either.Either<Entry, CacheError> => {
      const invalid = check(key)
      if (invalid !== undefined) {
        return Either.left(invalid)
      }
      if (value === undefined) {
        return Either.left(new CodecError({ key, direction: "encode", cause: "undefined cannot be stored" }))
      }
      const malformed = Check.options("options", options, putFields)
      if (malformed !== undefined) {
        return Either.left(malformed)
      }
      const parsed = entryOptions(options)
      if (Either.isLeft(parsed)) {
        return Either.left(parsed.left)
      }
      const { tags, ttl } = parsed.right
      return Either.right({
        value,
        expiresAt: ttl === Infinity ? null : clock.unsafeCurrentTimeMillis() + ttl,
        tags,
        version: 0
      })
    }

    const wrote = (key: string, entry: Entry, started: bigint) => {
      counters.writes.add(1)
      emit?.("put", started, {
        key,
        ttl: entry.expiresAt === null ? "infinity" : entry.expiresAt - clock.unsafeCurrentTimeMillis()
      })
    }

    const setCallback = store.setCallback
    const write = (key: string, entry: Entry): Effect.Effect<void, CacheError> => {
      const started = start()
      return Effect.map(store.set(key, entry), () => wrote(key, entry, started))
    }

    const put = (key: string, value: V, options?: PutOptions): Effect.Effect<void, CacheError> =>
      Effect.suspend(() => {
        const prepared = prepare(key, value, options)
        if (Either.isLeft(prepared)) return Effect.fail(prepared.left)
        drop(key)
        return write(key, prepared.right)
      })

    /** `put` straight into an in-memory store; the failure, if any, is returned. */
    const putSync = sync?.set === undefined ? undefined : (key: string, value: V, options?: PutOptions) => {
      const prepared = prepare(key, value, options)
      if (Either.isLeft(prepared)) return prepared.left
      drop(key)
      const started = start()
      sync.set!(key, prepared.right)
      wrote(key, prepared.right, started)
      return undefined
    }

    /** `put` through `setCallback`, for callers without the runtime (the Promise facade). */
    const putCallback = setCallback === undefined ? undefined : (
      key: string,
      value: V,
      options: PutOptions | undefined,
      done: (failure?: CacheError) => void
    ) => {
      const prepared = prepare(key, value, options)
      if (Either.isLeft(prepared)) return done(prepared.left)
      drop(key)
      const started = start()
      setCallback(key, prepared.right, (failure) => {
        if (failure === undefined) wrote(key, prepared.right, started)
        done(failure)
      })
    }

    const remove = (key: string): Effect.Effect<void, CacheError> =>
      Effect.suspend(() => {
        const invalid = check(key)
        if (invalid !== undefined) return Effect.fail(invalid)
        drop(key)
        const started = start()
        return Effect.map(store.delete(key), (removed) => {
          if (removed) counters.deletes.add(1)
          emit?.("delete", started, { key, removed })
        })
      })

    const exists = (key: string): Effect.Effect<boolean, CacheError> =>
      Effect.suspend(() => {
        const invalid = check(key)
        return invalid === undefined ? store.has(key) : Effect.fail(invalid)
      })

    const whenOpen = <A>(self: Effect.Effect<A, CacheError>): Effect.Effect<A, CacheError> =>
      Effect.suspend(() => closed ? Effect.fail(closedError) : self)

    const flush = Effect.suspend(() => {
      const started = start()
      return Effect.tap(
        whenOpen(Effect.zipRight(Effect.sync(dropAll), store.clear)),
        () => emit?.("flush", started, {})
      )
    })

    const invalidateTag = (tag: string): Effect.Effect<number, CacheError> =>
      Effect.suspend(() => {
        if (closed) return Effect.fail(closedError)
        if (typeof tag !== "string" || tag.length === 0) {
          return Effect.fail(new ConfigError({ field: "tag", reason: "expected a non-empty string" }))
        }
        dropAll()
        const started = start()
        return Effect.map(store.invalidateTag(tag), (count) => {
          counters.deletes.add(count)
          emit?.("invalidate_tag", started, { tag }, { count })
          return count
        })
      })

    // Fetching

    /** What a `getOrFetch` does on a miss or a stale read, from its options and the config's defaults. */
    const fetchPlan = (options: FetchOptions<V> | undefined): Either.Either<FetchPlan<V>, ConfigError> => {
      const malformed = Check.options("options", options, fetchFields)
      if (malformed !== undefined) return Either.left(malformed)
      const entry = entryOptions(options)
      if (Either.isLeft(entry)) return Either.left(entry.left)
      if (options === undefined) return Either.right({ ...entry.right, ...fetchDefaults, cacheIf: undefined })
      const grace = options.grace === undefined
        ? Either.right(resolved.grace)
        : Check.millis("grace", options.grace, false, true)
      if (Either.isLeft(grace)) return Either.left(grace.left)
      const softTimeout = options.softTimeout === undefined
        ? Either.right(resolved.softTimeout)
        : Check.timer("softTimeout", options.softTimeout, false, true)
      if (Either.isLeft(softTimeout)) return Either.left(softTimeout.left)
      const hardTimeout = options.hardTimeout === undefined
        ? Either.right(resolved.hardTimeout)
        : Check.timer("hardTimeout", options.hardTimeout, true)
      if (Either.isLeft(hardTimeout)) return Either.left(hardTimeout.left)
      if (options.cacheIf !== undefined && typeof options.cacheIf !== "function") {
        return Either.left(new ConfigError({ field: "cacheIf", reason: "expected a function" }))
      }
      return Either.right({
        ...entry.right,
        grace: grace.right,
        softTimeout: softTimeout.right,
        hardTimeout: hardTimeout.right,
        cacheIf: options.cacheIf
      })
    }
    const fetchDefaults = {
      grace: resolved.grace,
      softTimeout: resolved.softTimeout,
      hardTimeout: resolved.hardTimeout
    }

    /** The entry of a fetched value; with grace, kept `grace` past its TTL with its freshness inside. */
    const fetchedEntry = (value: V, ttl: number, plan: FetchPlan<V>): Entry => {
      const now = clock.unsafeCurrentTimeMillis()
      if (ttl === Infinity) return { value, expiresAt: null, tags: plan.tags, version: 0 }
      if (plan.grace === 0) return { value, expiresAt: now + ttl, tags: plan.tags, version: 0 }
      // A grace that reaches past the longest TTL keeps the stale value with no expiry.
      const kept = ttl + plan.grace > Check.maxTtlMillis ? null : now + ttl + plan.grace
      return { value: new Graced(value, now + ttl), expiresAt: kept, tags: plan.tags, version: 0 }
    }

    /** Stores a fetched value through `save` as `cacheIf` decides; `undefined` is never cached. */
    const storeFetched = (value: V, plan: FetchPlan<V>, save: Save): Effect.Effect<void, CacheError> => {
      if (value === undefined) return Effect.void
      const decision = plan.cacheIf === undefined ? true : plan.cacheIf(value)
      if (decision === false) return Effect.void
      if (decision === true) return save(fetchedEntry(value, plan.ttl, plan))
      const ttl = Check.ttl("cacheIf", decision)
      return Either.isLeft(ttl) ? Effect.fail(ttl.left) : save(fetchedEntry(value, ttl.right, plan))
    }

    /** Writes a fetched entry while `lease` holds the key: a `put` or `delete` since then wins. */
    const saveHeld = (key: string, lease: Coalescer.Lease): Save => (entry) =>
      lease.held ? write(key, entry) : Effect.void

    /** `saveHeld` through a store's single flight, whose `write` also checks the lease beyond this process. */
    const saveLeased = (
      key: string,
      lease: Coalescer.Lease,
      leased: (entry: Entry) => Effect.Effect<boolean, CacheError>
    ): Save =>
    (entry) => {
      if (!lease.held) return Effect.void
      const started = start()
      return Effect.map(leased(entry), (stored) => {
        if (stored) wrote(key, entry, started)
      })
    }

    const fetchAndStore = <E, R>(
      key: string,
      fetch: (key: string) => Effect.Effect<V, E, R>,
      plan: FetchPlan<V>,
      refresh: boolean,
      save: Save
    ): Effect.Effect<V, E | FetchTimeout | CacheError, R> =>
      Effect.suspend(() => {
        const started = start()
        counters.fetches.add(1)
        if (refresh) counters.refreshes.add(1)
        const bounded = plan.hardTimeout === Infinity ? fetch(key) : Effect.timeoutFail(fetch(key), {
          duration: plan.hardTimeout,
          onTimeout: () => new FetchTimeout({ key, timeout: plan.hardTimeout })
        })
        return bounded.pipe(
          Effect.onExit((exit) =>
            Effect.sync(() => {
              if (Exit.isFailure(exit)) counters.fetchErrors.add(1)
              emit?.("fetch", started, { key, result: Exit.isSuccess(exit) ? "ok" : "error" })
            })
          ),
          Effect.tap((value) => storeFetched(value, plan, save))
        )
      })

    /** Counts and reports a caller that waits on another caller's fetch; `unread`: its read as a miss too. */
    const joined = (key: string, unread: boolean) => {
      if (unread) {
        counters.misses.add(1)
        emit?.("get", noStart, { key, result: "miss" })
      }
      counters.coalesced.add(1)
      emit?.("fetch", start(), { key, result: "coalesced" })
    }

    /** A fetch of its own with `stampedeProtection: false`, whose value a write of the key meanwhile wins over. */
    const fetchUnshared = <E, R>(
      key: string,
      fetch: (key: string) => Effect.Effect<V, E, R>,
      plan: FetchPlan<V>
    ): Effect.Effect<V, E | FetchTimeout | CacheError, R> =>
      Effect.suspend(() => {
        const lease = { held: true }
        let leases = unshared.get(key)
        if (leases === undefined) unshared.set(key, leases = new Set())
        leases.add(lease)
        const done = Effect.sync(() => {
          leases.delete(lease)
          if (leases.size === 0 && unshared.get(key) === leases) unshared.delete(key)
        })
        return Effect.ensuring(fetchAndStore(key, fetch, plan, false, saveHeld(key, lease)), done)
      })

    /** The fetch of a key known to be missing: coalesced in this process, and beyond where the store can. */
    const onMiss = <E, R>(
      key: string,
      fetch: (key: string) => Effect.Effect<V, E, R>,
      plan: FetchPlan<V>,
      unread = false
    ): Effect.Effect<V, E | FetchTimeout | CacheError, R> => {
      if (!resolved.stampedeProtection) return fetchUnshared(key, fetch, plan)
      const timeout = resolved.stampedeTimeout
      const singleFlight = store.singleFlight
      return coalescer.run(
        key,
        (lease) =>
          singleFlight === undefined
            ? fetchAndStore(key, fetch, plan, false, saveHeld(key, lease))
            // A waiter gets what the winner stored, which carries its freshness when fetched with grace.
            : Effect.map(
              singleFlight(
                key,
                (leased) => fetchAndStore(key, fetch, plan, false, saveLeased(key, lease, leased)),
                timeout
              ),
              (value) => value instanceof Graced ? value.value as V : value
            ),
        () => joined(key, unread),
        {
          timeoutMillis: timeout,
          onTimeout: () => Effect.fail(new FetchTimeout({ key, timeout }))
        }
      )
    }

    /** Forgets backoffs that ran out; run with the sweeper, so keys never refreshed again are not kept. */
    const pruneBackoff = () => {
      const now = clock.unsafeCurrentTimeMillis()
      for (const [key, until] of backoff) if (until <= now) backoff.delete(key)
    }
    /** The stale value of each key being refreshed, for callers that join the refresh. */
    const refreshing = new Map<string, { readonly value: V }>()

    /**
     * A stale value within its grace: refresh it (once, however many callers), wait up to
     * `softTimeout` for the fresh value, and otherwise, or when the refresh fails, serve the stale one.
     */
    const onStale = <E, R>(
      key: string,
      stale: V,
      fetch: (key: string) => Effect.Effect<V, E, R>,
      plan: FetchPlan<V>,
      unread = false
    ): Effect.Effect<V, never, R> => {
      const serveStale = () =>
        Effect.sync(() => {
          counters.staleHits.add(1)
          emit?.("fetch", noStart, { key, result: "stale" })
          return stale
        })
      const now = clock.unsafeCurrentTimeMillis()
      if ((backoff.get(key) ?? 0) > now) return serveStale()
      backoff.delete(key)
      const mine = { value: stale }
      const refresh = (lease: Coalescer.Lease) =>
        fetchAndStore(key, fetch, plan, true, saveHeld(key, lease)).pipe(
          Effect.tapError(() =>
            Effect.sync(() => {
              counters.refreshErrors.add(1)
              // A refresh let go of (its key written, removed or flushed) leaves no backoff behind.
              if (lease.held) backoff.set(key, clock.unsafeCurrentTimeMillis() + resolved.refreshBackoff)
            })
          ),
          Effect.ensuring(Effect.sync(() => {
            if (refreshing.get(key) === mine) refreshing.delete(key)
          }))
        )
      if (!coalescer.running(key)) refreshing.set(key, mine)
      return coalescer.run(key, refresh, () => joined(key, unread), {
        timeoutMillis: plan.softTimeout,
        onTimeout: serveStale
      }).pipe(Effect.catchAll(serveStale))
    }

    const getOrFetch = <E = never, R = never>(
      key: string,
      fetch: (key: string) => Effect.Effect<V, E, R>,
      options?: FetchOptions<V>
    ): Effect.Effect<V, E | FetchTimeout | CacheError, R> =>
      Effect.suspend(() => {
        const invalid = check(key)
        if (invalid !== undefined) return Effect.fail(invalid)
        if (typeof fetch !== "function") {
          return Effect.fail(new ConfigError({ field: "fetch", reason: "expected a function of the key" }))
        }
        const found = readSync(key)
        if (found !== Unknown && found !== Miss) return Effect.succeed(found as V)
        const plan = fetchPlan(options)
        if (Either.isLeft(plan)) return Effect.fail(plan.left)
        if (found === Miss) return onMiss(key, fetch, plan.right)
        // A fetch of this key is already running here: join it rather than ask a remote store first
        // (the read it skips counts as a miss, as it would have been one).
        if (resolved.stampedeProtection && coalescer.running(key)) {
          const stale = refreshing.get(key)
          return stale === undefined
            ? onMiss(key, fetch, plan.right, true)
            : onStale(key, stale.value, fetch, plan.right, true)
        }
        return lookup(key).pipe(
          // Data that no longer decodes is counted and fetched again, never a crash.
          Effect.catchTag(
            "CodecError",
            (error) =>
              Effect.as(
                Effect.annotateLogs(Effect.logDebug(`${error.message}; fetching it again`), {
                  cache: name,
                  key,
                  operation: "getOrFetch"
                }),
                missing
              )
          ),
          Effect.flatMap((current): Effect.Effect<V, E | FetchTimeout | CacheError, R> => {
            switch (current._tag) {
              case "Fresh":
                return Effect.succeed(current.value)
              case "Stale":
                return onStale(key, current.value, fetch, plan.right)
              case "Missing":
                return onMiss(key, fetch, plan.right)
            }
          })
        )
      })

    // Batches

    const checkAll = (keys: ReadonlyArray<string>): CacheError | undefined => {
      if (closed) return closedError
      if (!Array.isArray(keys)) return new ConfigError({ field: "keys", reason: "expected an array of keys" })
      for (const key of keys) {
        const invalid = Check.checkKey(key)
        if (invalid !== undefined) return invalid
      }
      return undefined
    }

    const getMany = (keys: ReadonlyArray<string>): Effect.Effect<ReadonlyArray<Option.Option<V>>, CacheError> =>
      Effect.suspend(() => {
        const invalid = checkAll(keys)
        if (invalid !== undefined) return Effect.fail(invalid)
        if (sync?.authoritative === true) {
          return Effect.succeed(keys.map((key) => {
            const found = readSync(key)
            if (found === Miss) return Option.none()
            if (found !== Unknown) return Option.some(found as V)
            // An authoritative store answers `Unknown` only for a stale entry: a miss for plain reads.
            counters.misses.add(1)
            emit?.("get", noStart, { key, result: "miss" })
            return Option.none()
          }))
        }
        const started = start()
        return store.getMany(keys).pipe(
          Effect.tapErrorTag("CodecError", () => Effect.sync(() => counters.codecErrors.add(1))),
          Effect.map((entries) =>
            entries.map((entry, i) => {
              const found = classify(keys[i], entry, started)
              return found._tag === "Fresh" ? Option.some(found.value) : Option.none()
            })
          )
        )
      })

    const putMany = (
      entries: ReadonlyArray<readonly [key: string, value: V, options?: PutOptions]>,
      options?: PutOptions
    ): Effect.Effect<void, CacheError> =>
      Effect.suspend(() => {
        if (!Array.isArray(entries) || !entries.every((entry) => Array.isArray(entry) && entry.length <= 3)) {
          return Effect.fail(
            new ConfigError({ field: "entries", reason: "expected an array of [key, value, options?] tuples" })
          )
        }
        const malformed = Check.options("options", options, putFields) ??
          entries.reduce<ConfigError | undefined>(
            (found, [, , own]) => found ?? Check.options("options", own, putFields),
            undefined
          )
        if (malformed !== undefined) return Effect.fail(malformed)
        const invalid = checkAll(entries.map(([key]) => key))
        if (invalid !== undefined) return Effect.fail(invalid)
        const now = clock.unsafeCurrentTimeMillis()
        const batch: Array<readonly [string, Entry]> = []
        for (const [key, value, own] of entries) {
          if (value === undefined) {
            return Effect.fail(new CodecError({ key, direction: "encode", cause: "undefined cannot be stored" }))
          }
          const parsed = entryOptions(own === undefined ? options : { ...options, ...own })
          if (Either.isLeft(parsed)) return Effect.fail(parsed.left)
          const { tags, ttl } = parsed.right
          batch.push([key, { value, expiresAt: ttl === Infinity ? null : now + ttl, tags, version: 0 }])
        }
        for (const [key] of batch) drop(key)
        const started = start()
        return Effect.map(store.setMany(batch), () => {
          counters.writes.add(batch.length)
          for (const [key, entry] of batch) {
            emit?.("put", started, { key, ttl: entry.expiresAt === null ? "infinity" : entry.expiresAt - now })
          }
        })
      })

    const deleteMany = (keys: ReadonlyArray<string>): Effect.Effect<number, CacheError> =>
      Effect.suspend(() => {
        const invalid = checkAll(keys)
        if (invalid !== undefined) return Effect.fail(invalid)
        for (const key of keys) drop(key)
        return Effect.tap(store.deleteMany(keys), (removed) => counters.deletes.add(removed))
      })

    const cache: Cache<V> = {
      name,
      get: (key) => span("get", key, get(key)),
      getOption: (key) => span("get", key, getOption(key)),
      put: (key, value, options) => span("put", key, put(key, value, options)),
      delete: (key) => span("delete", key, remove(key)),
      exists: (key) => span("exists", key, exists(key)),
      flush: () => span("flush", undefined, flush),
      size: () => span("size", undefined, whenOpen(store.size)),
      stats: () => store.stats ?? Effect.sync(() => counters.snapshot()),
      getOrFetch: (key, fetch, options) => span("get_or_fetch", key, getOrFetch(key, fetch, options)),
      invalidateTag: (tag) => span("invalidate_tag", undefined, invalidateTag(tag), tag),
      getMany: (keys) => span("get_many", undefined, getMany(keys)),
      putMany: (entries, options) => span("put_many", undefined, putMany(entries, options)),
      deleteMany: (keys) => span("delete_many", undefined, deleteMany(keys))
    }
    // With spans on, every facade call runs on the runtime, so that each one gets its span.
    const unsafe: UnsafeCache = {
      name,
      clock,
      synchronous: sync?.authoritative === true,
      check,
      readSync,
      readCallback,
      putCallback,
      putSync,
      joined,
      fetchMiss: (key, fetch, options) =>
        Effect.suspend(() => {
          const plan = fetchPlan(options)
          return Either.isLeft(plan)
            ? Effect.fail(plan.left)
            : onMiss(key, fetch as (key: string) => Effect.Effect<V, unknown>, plan.right)
        })
    }
    registry.set(cache, telemetry?.spans === true ? throughRuntime(unsafe) : unsafe)
    return cache
  })

/** A layer of one cache on the `Topology` in context; `name` defaults to the Tag's key. */
export const layer = <Id, V, I = V>(
  tag: Context.Tag<Id, Cache<V>>,
  config: Config<V, I> = {}
): Layer.Layer<Id, ConfigError | BackendError, Topology> =>
  Layer.scoped(tag, make({ ...config, name: config.name ?? tag.key }))

/** `layer` on an in-memory backend and the `Local` topology: the common single-process cache. */
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
 */
export const layerConfig = <Id, V, I = V>(
  tag: Context.Tag<Id, Cache<V>>,
  config: Config<V, I> = {}
): Layer.Layer<Id, ConfigError | BackendError, Topology> =>
  Layer.scoped(
    tag,
    Effect.flatMap(fromEnvironment(config), (merged) => make({ ...merged, name: merged.name ?? tag.key }))
  )

// internal

type Lookup<V> =
  | { readonly _tag: "Fresh"; readonly value: V }
  | { readonly _tag: "Stale"; readonly value: V }
  | { readonly _tag: "Missing" }

const missing: Lookup<never> = { _tag: "Missing" }

/** Stores a fetched entry, or leaves it out when the fetch no longer holds its key. */
type Save = (entry: Entry) => Effect.Effect<void, CacheError>

/** The fields of `Config`, `PutOptions` and `FetchOptions`: any other key is a typo. */
const configFields: ReadonlyArray<keyof Config> = [
  "name",
  "defaultTtl",
  "maxSize",
  "evictionPolicy",
  "stampedeProtection",
  "stampedeTimeout",
  "statsEnabled",
  "telemetryPrefix",
  "sweepInterval",
  "value",
  "grace",
  "softTimeout",
  "hardTimeout",
  "refreshBackoff"
]
const putFields: ReadonlyArray<keyof PutOptions> = ["ttl", "tags"]
const fetchFields: ReadonlyArray<keyof FetchOptions<unknown>> = [
  ...putFields,
  "grace",
  "softTimeout",
  "hardTimeout",
  "cacheIf"
]

interface FetchPlan<V> {
  readonly ttl: number
  readonly tags: ReadonlyArray<string>
  readonly grace: number
  readonly softTimeout: number
  readonly hardTimeout: number
  readonly cacheIf: ((value: V) => boolean | Duration.DurationInput) | undefined
}

const environment = {
  name: "NAME",
  defaultTtl: "DEFAULT_TTL",
  maxSize: "MAX_SIZE",
  evictionPolicy: "EVICTION_POLICY",
  stampedeProtection: "STAMPEDE_PROTECTION",
  stampedeTimeout: "STAMPEDE_TIMEOUT",
  statsEnabled: "STATS_ENABLED",
  telemetryPrefix: "TELEMETRY_PREFIX",
  sweepInterval: "SWEEP_INTERVAL",
  grace: "GRACE",
  softTimeout: "SOFT_TIMEOUT",
  hardTimeout: "HARD_TIMEOUT",
  refreshBackoff: "REFRESH_BACKOFF"
} as const

/** Reads the overrides as strings, then turns them into the values a config in code would hold. */
const fromEnvironment = <V, I>(config: Config<V, I>): Effect.Effect<Config<V, I>, ConfigError> =>
  Effect.reduce(
    Object.entries(environment) as Array<[keyof typeof environment, string]>,
    config,
    (merged, [field, variable]) =>
      EffectConfig.option(EffectConfig.string(variable)).pipe(
        EffectConfig.nested("VELA"),
        Effect.mapError((error) => new ConfigError({ field, reason: String(error) })),
        Effect.flatMap(Option.match({
          onNone: () => Effect.succeed(merged),
          onSome: (text) => Effect.map(parseOverride(field, text.trim()), (value) => ({ ...merged, [field]: value }))
        }))
      )
  )

const parseOverride = (field: keyof typeof environment, text: string): Effect.Effect<unknown, ConfigError> => {
  switch (field) {
    case "stampedeProtection":
    case "statsEnabled":
      return text === "true" || text === "false"
        ? Effect.succeed(text === "true")
        : Effect.fail(new ConfigError({ field, reason: `expected true or false, got ${JSON.stringify(text)}` }))
    case "telemetryPrefix":
      return Effect.succeed(text.split(",").map((part) => part.trim()))
    case "maxSize":
      return Effect.succeed(/^\d+$/.test(text) ? Number(text) : text)
    case "defaultTtl":
    case "stampedeTimeout":
    case "sweepInterval":
    case "grace":
    case "softTimeout":
    case "hardTimeout":
    case "refreshBackoff":
      // A bare number is milliseconds, as in code; anything else goes to the duration parser.
      return Effect.succeed(/^\d+(\.\d+)?$/.test(text) ? Number(text) : text)
    default:
      return Effect.succeed(text)
  }
}
