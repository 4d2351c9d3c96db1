/**
 * The in-memory backend, the default: entries live in this process's heap, values are kept by
 * reference (no copy, no encoding). Fastest, and gone when the process ends.
 */
import { Effect, Layer, Option, Stream } from "effect"
import type { OpenOptions, Store } from "./Backend.js"
import { Backend } from "./Backend.js"
import { MemoryStore } from "./internal/memoryStore.js"
import { yieldToEventLoop } from "./internal/yieldToEventLoop.js"

export interface MemoryOptions {
  /** Expired entries removed per sweep step before the sweeper yields to the event loop. */
  readonly sweepBatchSize?: number | undefined
}

/** A `Store` over a `MemoryStore`, reading time from the cache's clock. */
export const makeStore = (options: OpenOptions, sweepBatchSize = 2_000): Store => {
  const clock = options.clock
  const store = new MemoryStore({ ...options, now: () => clock.unsafeCurrentTimeMillis() })
  const sweepStep = Effect.sync(() => store.sweep(sweepBatchSize))
  const sweep: Effect.Effect<void> = Effect.suspend(() =>
    store.hasExpired()
      ? Effect.zipRight(sweepStep, Effect.zipRight(yieldToEventLoop, sweep))
      : Effect.void
  )
  return {
    get: (key) => Effect.sync(() => Option.fromNullable(store.get(key))),
    has: (key) => Effect.sync(() => store.peek(key) !== undefined),
    set: (key, entry) => Effect.sync(() => store.set(key, entry)),
    delete: (key) => Effect.sync(() => store.delete(key)),
    invalidateTag: (tag) => Effect.sync(() => store.invalidateTag(tag)),
    clear: Effect.sync(() => store.clear()),
    size: Effect.sync(() => store.size()),
    sweep,
    invalidations: Stream.empty,
    sync: { get: (key) => store.get(key), set: (key, entry) => store.set(key, entry), authoritative: true },
    getMany: (keys) => Effect.sync(() => keys.map((key) => Option.fromNullable(store.get(key)))),
    setMany: (entries) =>
      Effect.sync(() => {
        for (const [key, entry] of entries) store.set(key, entry)
      }),
    deleteMany: (keys) =>
      Effect.sync(() => {
        let removed = 0
        for (const key of keys) if (store.delete(key)) removed++
        return removed
      })
  }
}

/**
 * A memory backend. Each cache that opens it gets its own namespace; opening the same name twice
 * gives two views of one namespace, as two clients of one Redis would have.
 */
export const make = (options: MemoryOptions = {}): Effect.Effect<Backend["Type"]> =>
  Effect.sync(() => {
    const namespaces = new Map<string, Store>()
    return Backend.of({
      name: "memory",
      open: (open) =>
        Effect.sync(() => {
          let store = namespaces.get(open.namespace)
          if (store === undefined) {
            store = makeStore(open, options.sweepBatchSize)
            namespaces.set(open.namespace, store)
          }
          return store
        })
    })
  })

export const layer = (options: MemoryOptions = {}): Layer.Layer<Backend> => Layer.effect(Backend, make(options))
