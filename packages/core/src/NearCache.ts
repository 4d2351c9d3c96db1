/**
 * An in-memory L1 in front of any topology: reads L1, then L2, promoting what L2 returns; writes go
 * through to L2 and update L1. The L1 applies the invalidations L2 reports, so a change made
 * elsewhere drops the local copy.
 *
 * Concurrency: a read of L2 and an invalidation can overlap, and the read must not then promote the
 * value the invalidation just dropped. Every local write and every invalidation takes the next stamp
 * and marks what it changed: its keys, or everything (a tag, a flush, the connection). A read promotes
 * only when neither its key nor everything was marked after the stamp it started at, so writes of
 * other keys do not keep its value out of L1.
 *
 * Failure: when L2 reports that its invalidations stopped (`Disconnected`), the L1 is cleared and
 * bypassed until they resume (`Connected`), so an outage never serves a stale value.
 * Invariant: an L1 entry never outlives its L2 entry's `expiresAt` nor the L1 `ttl`.
 */
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import type { Entry, Invalidation, Store } from "./Backend.js"
import { makeStore } from "./Backend.js"
import type { ConfigError } from "./Errors.js"
import * as Check from "./internal/config.js"
import { MemoryStore } from "./internal/memoryStore.js"
import { Topology } from "./Topology.js"

/**
 * Options of the near cache: how long an entry may stay in L1, and its bound.
 *
 * @since 0.1.0
 * @category models
 */
export interface NearCacheOptions {
  /** How long an entry may stay in L1 (default `"60 seconds"`). */
  readonly ttl?: Duration.DurationInput | undefined
  /** Bound of L1, kept by W-TinyLFU (default: unbounded). */
  readonly maxSize?: number | "infinity" | undefined
}

const noop = () => {}

/** How many keys' marks L1 keeps; past that it marks everything instead, so the marks stay bounded. */
const markedKeys = 1024

/**
 * A near cache (an in-memory L1) in front of the `Topology` in context, as a topology of its own.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: NearCacheOptions = {}): Layer.Layer<Topology, ConfigError, Topology> =>
  Layer.effect(
    Topology,
    Effect.gen(function*() {
      const ttl = yield* Check.millis("nearCache.ttl", options.ttl ?? "60 seconds", false)
      const maxSize = yield* Check.size("nearCache.maxSize", options.maxSize ?? "infinity")
      const inner = yield* Topology
      return Topology.of({
        name: `near-cache over ${inner.name}`,
        open: (open) =>
          Effect.gen(function*() {
            const l2 = yield* inner.open(open)
            const near = makeNear(l2, open.clock, ttl, maxSize)
            yield* Effect.forkScoped(
              Stream.runForEach(l2.invalidations, (change) => Effect.sync(() => near.apply(change)))
            )
            return near.store
          })
      })
    })
  )

// internal

const makeNear = (l2: Store, clock: { unsafeCurrentTimeMillis(): number }, ttl: number, maxSize: number) => {
  const now = () => clock.unsafeCurrentTimeMillis()
  const l1 = new MemoryStore({ maxSize, evictionPolicy: "tinylfu", onEvict: noop, onExpire: noop, now })
  let stamp = 0
  /** The stamp of the last change of everything; a key's own mark counts only when it is later. */
  let everything = 0
  const marks = new Map<string, number>()
  let bypass = false

  /** Drops `key` from L1 and marks it changed; returns its mark. */
  const forget = (key: string) => {
    if (marks.size >= markedKeys) {
      marks.clear()
      everything = stamp
    }
    marks.set(key, ++stamp)
    l1.delete(key)
    return stamp
  }

  const markEverything = () => {
    marks.clear()
    everything = ++stamp
  }

  /** Keeps `entry` in L1 unless `key` or everything changed since `seen`. */
  const promote = (key: string, entry: Entry, seen: number) => {
    if (bypass || everything > seen || (marks.get(key) ?? 0) > seen) return
    const cap = now() + ttl
    l1.set(key, { ...entry, expiresAt: entry.expiresAt === null ? cap : Math.min(entry.expiresAt, cap) })
  }

  /** Runs a write on L2 with L1 emptied of what it touches, so no reader promotes an old value meanwhile. */
  const change = <A, E>(dropLocal: () => void, write: Effect.Effect<A, E>) =>
    Effect.suspend(() => {
      dropLocal()
      return write
    })

  /**
   * An atomic write of `key` on L2, whose result L1 cannot know: the key leaves L1 before and again
   * after, so that a read that overlapped it promotes nothing it saw before the write landed.
   */
  const rewrite = <A, E>(key: string, write: Effect.Effect<A, E>) => {
    const drop = Effect.sync(() => forget(key))
    return Effect.zipRight(drop, Effect.ensuring(write, drop))
  }

  const apply = (invalidation: Invalidation) => {
    if (invalidation._tag === "Keys") {
      for (const key of invalidation.keys) forget(key)
      return
    }
    markEverything()
    switch (invalidation._tag) {
      case "Tag":
        l1.invalidateTag(invalidation.tag)
        return
      case "Flush":
        l1.clear()
        return
      case "Disconnected":
        bypass = true
        l1.clear()
        return
      case "Connected":
        bypass = false
        return
    }
  }

  // Both forms of a read and a write, each passing to L2's own: an Effect API read stays in its fiber.
  const store = makeStore({
    get: (key) =>
      Effect.suspend(() => {
        const local = bypass ? undefined : l1.get(key)
        if (local !== undefined) return Effect.succeed(Option.some(local))
        const seen = stamp
        return Effect.tap(l2.get(key), (entry) => {
          if (Option.isSome(entry)) promote(key, entry.value, seen)
        })
      }),
    getCallback: (key, done) => {
      const local = bypass ? undefined : l1.get(key)
      if (local !== undefined) return done(local)
      const seen = stamp
      l2.getCallback(key, (entry, failure) => {
        if (entry !== undefined) promote(key, entry, seen)
        done(entry, failure)
      })
    },
    has: (key) => Effect.suspend(() => !bypass && l1.peek(key) !== undefined ? Effect.succeed(true) : l2.has(key)),
    set: (key, entry) =>
      Effect.suspend(() => {
        const seen = forget(key)
        return Effect.tap(l2.set(key, entry), () => promote(key, entry, seen))
      }),
    setCallback: (key, entry, done) => {
      const seen = forget(key)
      l2.setCallback(key, entry, (failure) => {
        if (failure === undefined) promote(key, entry, seen)
        done(failure)
      })
    },
    delete: (key) => change(() => forget(key), l2.delete(key)),
    invalidateTag: (tag) =>
      change(() => {
        markEverything()
        l1.invalidateTag(tag)
      }, l2.invalidateTag(tag)),
    // The atomic operations are L2's: only there is a key's every write ordered.
    readForUpdate: l2.readForUpdate,
    compareAndSet: (key, expected, next) => rewrite(key, l2.compareAndSet(key, expected, next)),
    take: (key) => rewrite(key, l2.take(key)),
    touch: (key, expiresAt) => rewrite(key, l2.touch(key, expiresAt)),
    increment: (key, by, created) => rewrite(key, l2.increment(key, by, created)),
    clear: change(() => {
      markEverything()
      l1.clear()
    }, l2.clear),
    size: l2.size,
    sweep: Effect.zipRight(Effect.sync(() => l1.sweep(Infinity)), l2.sweep),
    invalidations: l2.invalidations,
    // Single flight beyond this process is L2's to give; the value it stores reaches L1 on the next read.
    singleFlight: l2.singleFlight,
    stats: l2.stats,
    sync: { get: (key) => bypass ? undefined : l1.get(key), authoritative: false },
    getMany: (keys) =>
      Effect.suspend(() => {
        const local = keys.map((key) => bypass ? undefined : l1.get(key))
        const missing = keys.filter((_, i) => local[i] === undefined)
        if (missing.length === 0) return Effect.succeed(local.map((entry) => Option.some(entry!)))
        const seen = stamp
        return Effect.map(l2.getMany(missing), (remote) => {
          let next = 0
          return keys.map((key, i) => {
            const entry = local[i]
            if (entry !== undefined) return Option.some(entry)
            const found = remote[next++]
            if (Option.isSome(found)) promote(key, found.value, seen)
            return found
          })
        })
      }),
    setMany: (entries) =>
      Effect.suspend(() => {
        for (const [key] of entries) forget(key)
        const seen = stamp
        return Effect.tap(l2.setMany(entries), () => {
          for (const [key, entry] of entries) promote(key, entry, seen)
        })
      }),
    deleteMany: (keys) =>
      change(() => {
        for (const key of keys) forget(key)
      }, l2.deleteMany(keys))
  })
  return { store, apply }
}
