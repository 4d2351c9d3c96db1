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
import type { BackendError, CacheError, FetchTimeout } from "./Errors.js"
import { CacheClosed, CodecError, ConfigError, NotFound } from "./Errors.js"
import * as Batch from "./internal/batch.js"
import * as Check from "./internal/config.js"
import { Miss, registry, Unknown } from "./internal/unsafe.js"
import * as Local from "./Local.js"
import * as Memory from "./Memory.js"
import type { Stats } from "./Stats.js"
import { makeCounters } from "./Stats.js"
import type { TelemetryEvent } from "./Telemetry.js"
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
}

/** Options of `put` and `getOrFetch`. */
export interface PutOptions {
  /** Default: the cache's `defaultTtl`. */
  readonly ttl?: Duration.DurationInput | "infinity" | undefined
  readonly tags?: ReadonlyArray<string> | undefined
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
    options?: PutOptions
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
}

/** Applies defaults and checks every field; the first nonsensical one is a `ConfigError`. */
export const resolve = <V, I>(
  config: Config<V, I> & { readonly name: string }
): Either.Either<ResolvedConfig, ConfigError> =>
  Either.gen(function*() {
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
      defaultTtl: yield* Check.millis("defaultTtl", config.defaultTtl ?? "infinity", true),
      maxSize: yield* Check.size("maxSize", config.maxSize ?? "infinity"),
      evictionPolicy: yield* Check.policy(config.evictionPolicy ?? "ttl-only"),
      stampedeProtection: yield* Check.boolean("stampedeProtection", config.stampedeProtection ?? true),
      stampedeTimeout: yield* Check.millis("stampedeTimeout", config.stampedeTimeout ?? "5 seconds", false),
      statsEnabled: yield* Check.boolean("statsEnabled", config.statsEnabled ?? true),
      telemetryPrefix: prefix,
      sweepInterval: yield* Check.millis("sweepInterval", config.sweepInterval ?? "30 seconds", false),
      codec: config.value === undefined ? Codec.json : Codec.fromSchema(config.value)
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
    const store: Store = yield* topology.open({
      namespace: name,
      clock,
      codec: resolved.codec,
      maxSize: resolved.maxSize,
      evictionPolicy: resolved.evictionPolicy,
      onEvict: (count) => counters.evictions.add(count),
      onExpire: (count) => counters.expirations.add(count)
    })
    let closed = false
    yield* Effect.addFinalizer(() => Effect.sync(() => closed = true))
    yield* Effect.forkIn(
      Effect.schedule(
        Effect.catchAllCause(store.sweep, (cause) => Effect.logWarning(`vela: sweep of cache ${name} failed`, cause)),
        Schedule.spaced(resolved.sweepInterval)
      ),
      scope
    )
    const coalescer = Coalescer.make(scope, clock, resolved.stampedeTimeout)
    const closedError = new CacheClosed({ cache: name })

    // Telemetry

    const noStart = BigInt(-1)
    const emit = telemetry === undefined ? undefined : (
      op: string,
      startNanos: bigint,
      metadata: Record<string, unknown>,
      measurements: Record<string, number> = {}
    ) => {
      if (!telemetry.active()) return
      // A listener that arrived while the operation ran sees it take no time.
      const duration = startNanos === noStart ? 0 : Number(clock.unsafeCurrentTimeNanos() - startNanos) / 1e6
      const event: TelemetryEvent = {
        event: [...prefix, op, "stop"],
        measurements: { duration, ...measurements },
        metadata: { cache: name, ...metadata }
      }
      telemetry.emit(event)
    }
    const span = telemetry?.spans === true
      ? <A, E, R>(op: string, key: string | undefined, self: Effect.Effect<A, E, R>) =>
        Effect.withSpan(self, `${prefix.join(".")}.${op}`, {
          attributes: key === undefined ? { cache: name } : { cache: name, key }
        })
      : <A, E, R>(_op: string, _key: string | undefined, self: Effect.Effect<A, E, R>) => self
    const start = () => telemetry?.active() === true ? clock.unsafeCurrentTimeNanos() : noStart

    // Reads

    const check = (key: unknown): CacheError | undefined => closed ? closedError : Check.checkKey(key)
    const sync = store.sync

    /** A hit, an authoritative miss, or `Unknown`; counted and reported. */
    const readSync = (key: string): unknown => {
      if (sync === undefined) return Unknown
      const started = start()
      const entry = sync.get(key)
      if (entry !== undefined) {
        counters.hits.add(1)
        emit?.("get", started, { key, result: "hit" })
        return entry.value
      }
      if (!sync.authoritative) return Unknown
      counters.misses.add(1)
      emit?.("get", started, { key, result: "miss" })
      return Miss
    }

    const readStore = (key: string): Effect.Effect<Option.Option<V>, CacheError> => {
      const started = start()
      const counted = Effect.tapErrorTag(store.get(key), "CodecError", () =>
        Effect.sync(() =>
          counters.codecErrors.add(1)
        ))
      return Effect.map(counted, (entry) => {
        const hit = Option.isSome(entry)
        if (hit) counters.hits.add(1)
        else counters.misses.add(1)
        emit?.("get", started, { key, result: hit ? "hit" : "miss" })
        return hit ? Option.some(entry.value.value as V) : Option.none()
      })
    }

    const read = (key: string): Effect.Effect<Option.Option<V>, CacheError> => {
      const found = readSync(key)
      if (found === Unknown) return readStore(key)
      return Effect.succeed(found === Miss ? Option.none() : Option.some(found as V))
    }

    const get = (key: string): Effect.Effect<V, NotFound | CacheError> =>
      Effect.suspend(() => {
        const invalid = check(key)
        if (invalid !== undefined) return Effect.fail(invalid)
        const found = readSync(key)
        if (found === Miss) return Effect.fail(new NotFound({ key }))
        if (found !== Unknown) return Effect.succeed(found as V)
        return Effect.flatMap(
          readStore(key),
          (value) => Option.isSome(value) ? Effect.succeed(value.value) : Effect.fail(new NotFound({ key }))
        )
      })

    const getOption = (key: string): Effect.Effect<Option.Option<V>, CacheError> =>
      Effect.suspend(() => {
        const invalid = check(key)
        return invalid === undefined ? read(key) : Effect.fail(invalid)
      })

    // Writes

    const defaults = Either.right({ ttl: resolved.defaultTtl, tags: [] as ReadonlyArray<string> })
    const entryOptions = (
      options: PutOptions | undefined
    ): Either.Either<{ ttl: number; tags: ReadonlyArray<string> }, ConfigError> => {
      if (options === undefined || (options.ttl === undefined && options.tags === undefined)) return defaults
      const ttl = options.ttl === undefined ? Either.right(resolved.defaultTtl) : Check.millis("ttl", options.ttl, true)
      if (Either.isLeft(ttl)) return Either.left(ttl.left)
      const tags = options.tags === undefined ? Either.right([]) : Check.tags(options.tags)
      if (Either.isLeft(tags)) return Either.left(tags.left)
      return Either.right({ ttl: ttl.right, tags: tags.right })
    }

    /** The entry a `put` writes, or why it cannot be written. */
    const prepare = (key: string, value: V, options: PutOptions | undefined): Either.Either<Entry, CacheError> => {
      const invalid = check(key)
      if (invalid !== undefined) return Either.left(invalid)
      if (value === undefined) {
        return Either.left(new CodecError({ key, direction: "encode", cause: "undefined cannot be stored" }))
      }
      const parsed = entryOptions(options)
      if (Either.isLeft(parsed)) return Either.left(parsed.left)
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

    const write = (key: string, entry: Entry) => {
      const started = start()
      return Effect.map(store.set(key, entry), () => wrote(key, entry, started))
    }

    const put = (key: string, value: V, options?: PutOptions): Effect.Effect<void, CacheError> =>
      Effect.suspend(() => {
        const prepared = prepare(key, value, options)
        return Either.isLeft(prepared) ? Effect.fail(prepared.left) : write(key, prepared.right)
      })

    /** `put` straight into an in-memory store; the failure, if any, is returned. */
    const putSync = sync?.set === undefined ? undefined : (key: string, value: V, options?: PutOptions) => {
      const prepared = prepare(key, value, options)
      if (Either.isLeft(prepared)) return prepared.left
      const started = start()
      sync.set!(key, prepared.right)
      wrote(key, prepared.right, started)
      return undefined
    }

    const remove = (key: string): Effect.Effect<void, CacheError> =>
      Effect.suspend(() => {
        const invalid = check(key)
        if (invalid !== undefined) return Effect.fail(invalid)
        return Effect.map(store.delete(key), (removed) => {
          if (removed) counters.deletes.add(1)
        })
      })

    const exists = (key: string): Effect.Effect<boolean, CacheError> =>
      Effect.suspend(() => {
        const invalid = check(key)
        return invalid === undefined ? store.has(key) : Effect.fail(invalid)
      })

    const whenOpen = <A>(self: Effect.Effect<A, CacheError>): Effect.Effect<A, CacheError> =>
      Effect.suspend(() => closed ? Effect.fail(closedError) : self)

    const invalidateTag = (tag: string): Effect.Effect<number, CacheError> =>
      Effect.suspend(() => {
        if (closed) return Effect.fail(closedError)
        if (typeof tag !== "string" || tag.length === 0) {
          return Effect.fail(new ConfigError({ field: "tag", reason: "expected a non-empty string" }))
        }
        const started = start()
        return Effect.map(store.invalidateTag(tag), (count) => {
          counters.deletes.add(count)
          emit?.("invalidate_tag", started, { tag }, { count })
          return count
        })
      })

    // Fetching

    const fetchAndStore = <E, R>(
      key: string,
      fetch: (key: string) => Effect.Effect<V, E, R>,
      ttl: number,
      tags: ReadonlyArray<string>
    ): Effect.Effect<V, E | CacheError, R> =>
      Effect.suspend(() => {
        const started = start()
        counters.fetches.add(1)
        return fetch(key).pipe(
          Effect.onExit((exit) =>
            Effect.sync(() => {
              if (Exit.isFailure(exit)) counters.fetchErrors.add(1)
              emit?.("fetch", started, { key, result: Exit.isSuccess(exit) ? "ok" : "error" })
            })
          ),
          // A fetch that yields `undefined` answers its callers but is not cached.
          Effect.tap((value) =>
            value === undefined ? Effect.void : write(key, {
              value,
              expiresAt: ttl === Infinity ? null : clock.unsafeCurrentTimeMillis() + ttl,
              tags,
              version: 0
            })
          )
        )
      })

    const joined = (key: string) => {
      counters.coalesced.add(1)
      emit?.("fetch", start(), { key, result: "coalesced" })
    }

    /** The fetch of a key known to be missing: coalesced in this process, and beyond where the store can. */
    const onMiss = <E, R>(
      key: string,
      fetch: (key: string) => Effect.Effect<V, E, R>,
      ttl: number,
      tags: ReadonlyArray<string>
    ): Effect.Effect<V, E | FetchTimeout | CacheError, R> => {
      const fetchOnce = fetchAndStore(key, fetch, ttl, tags)
      if (!resolved.stampedeProtection) return fetchOnce
      return coalescer.run(
        key,
        store.singleFlight === undefined ? fetchOnce : store.singleFlight(key, fetchOnce, resolved.stampedeTimeout),
        () => joined(key)
      )
    }

    const getOrFetch = <E = never, R = never>(
      key: string,
      fetch: (key: string) => Effect.Effect<V, E, R>,
      options?: PutOptions
    ): Effect.Effect<V, E | FetchTimeout | CacheError, R> =>
      Effect.suspend(() => {
        const invalid = check(key)
        if (invalid !== undefined) return Effect.fail(invalid)
        const parsed = entryOptions(options)
        if (Either.isLeft(parsed)) return Effect.fail(parsed.left)
        const found = readSync(key)
        if (found !== Unknown && found !== Miss) return Effect.succeed(found as V)
        const miss = onMiss(key, fetch, parsed.right.ttl, parsed.right.tags)
        if (found === Miss) return miss
        return readStore(key).pipe(
          // Data that no longer decodes is counted and fetched again, never a crash.
          Effect.catchTag("CodecError", (error) =>
            Effect.as(Effect.logDebug(`vela: ${error.message}; fetching it again`), Option.none<V>())),
          Effect.flatMap(Option.match({
            onNone: () =>
              miss,
            onSome: Effect.succeed
          }))
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
            return found === Miss ? Option.none() : Option.some(found as V)
          }))
        }
        const started = start()
        return Batch.getMany(store, keys).pipe(
          Effect.tapErrorTag("CodecError", () => Effect.sync(() => counters.codecErrors.add(1))),
          Effect.map((entries) =>
            entries.map((entry, i) => {
              const hit = Option.isSome(entry)
              if (hit) counters.hits.add(1)
              else counters.misses.add(1)
              emit?.("get", started, { key: keys[i], result: hit ? "hit" : "miss" })
              return Option.map(entry, (found) => found.value as V)
            })
          )
        )
      })

    const putMany = (
      entries: ReadonlyArray<readonly [key: string, value: V, options?: PutOptions]>,
      options?: PutOptions
    ): Effect.Effect<void, CacheError> =>
      Effect.suspend(() => {
        const invalid = checkAll(Array.isArray(entries) ? entries.map(([key]) => key) : (entries as never))
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
        const started = start()
        return Effect.map(Batch.setMany(store, batch), () => {
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
        return Effect.tap(Batch.deleteMany(store, keys), (removed) => counters.deletes.add(removed))
      })

    const cache: Cache<V> = {
      name,
      get: (key) => span("get", key, get(key)),
      getOption: (key) => span("get", key, getOption(key)),
      put: (key, value, options) => span("put", key, put(key, value, options)),
      delete: (key) => span("delete", key, remove(key)),
      exists: (key) => span("exists", key, exists(key)),
      flush: () => span("flush", undefined, whenOpen(store.clear)),
      size: () => span("size", undefined, whenOpen(store.size)),
      stats: () => Effect.sync(() => counters.snapshot()),
      getOrFetch: (key, fetch, options) => span("get_or_fetch", key, getOrFetch(key, fetch, options)),
      invalidateTag: (tag) => span("invalidate_tag", undefined, invalidateTag(tag)),
      getMany: (keys) => span("get_many", undefined, getMany(keys)),
      putMany: (entries, options) => span("put_many", undefined, putMany(entries, options)),
      deleteMany: (keys) => span("delete_many", undefined, deleteMany(keys))
    }
    registry.set(cache, {
      name,
      clock,
      synchronous: sync?.authoritative === true,
      check,
      readSync,
      putSync,
      joined,
      fetchMiss: (key, fetch, options) =>
        Effect.suspend(() => {
          const parsed = entryOptions(options)
          return Either.isLeft(parsed)
            ? Effect.fail(parsed.left)
            : onMiss(key, fetch as (key: string) => Effect.Effect<V, unknown>, parsed.right.ttl, parsed.right.tags)
        })
    })
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
 * `VELA_STATS_ENABLED`, `VELA_TELEMETRY_PREFIX` (comma-separated) and `VELA_SWEEP_INTERVAL` with
 * the default provider. A value that is set wins over `config`; a malformed one is a `ConfigError`.
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

const environment = {
  name: "NAME",
  defaultTtl: "DEFAULT_TTL",
  maxSize: "MAX_SIZE",
  evictionPolicy: "EVICTION_POLICY",
  stampedeProtection: "STAMPEDE_PROTECTION",
  stampedeTimeout: "STAMPEDE_TIMEOUT",
  statsEnabled: "STATS_ENABLED",
  telemetryPrefix: "TELEMETRY_PREFIX",
  sweepInterval: "SWEEP_INTERVAL"
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
      // A bare number is milliseconds, as in code; anything else goes to the duration parser.
      return Effect.succeed(/^\d+(\.\d+)?$/.test(text) ? Number(text) : text)
    default:
      return Effect.succeed(text)
  }
}
