/**
 * The in-memory backend, the default: entries live in this process's heap, values are kept by
 * reference (no copy, no encoding). Fastest, and gone when the process ends.
 */
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type { OpenOptions, Store } from "./Backend.js"
import { Backend, makeStore } from "./Backend.js"
import { WrongType } from "./Errors.js"
import { MemoryStore } from "./internal/memoryStore.js"
import { yieldToEventLoop } from "./internal/yieldToEventLoop.js"

/**
 * Options of the memory backend.
 *
 * @since 0.1.0
 * @category models
 */
export interface MemoryOptions {
  /** How long the sweeper may hold the event loop before it yields, in milliseconds (default 2). */
  readonly sweepSliceMillis?: number | undefined
}

/**
 * Expired entries removed between two looks at the time slice. Small, because the first removals of
 * a burst can run before the JIT has compiled the heap's sift-down: then a removal took up to 0.3 ms,
 * and a batch of 256 held the event loop 5-9 ms past its slice.
 */
const SWEEP_BATCH = 8

/** A `Store` over a `MemoryStore`, reading time from the cache's clock. */
const openStore = (options: OpenOptions, sweepSliceMillis = 2): Store => {
  const clock = options.clock
  const store = new MemoryStore({ ...options, now: () => clock.unsafeCurrentTimeMillis() })
  // A slice is measured on the monotonic timer, not the cache's clock: it is about the event loop.
  const sweepStep = Effect.sync(() => {
    const end = performance.now() + sweepSliceMillis
    do store.sweep(SWEEP_BATCH)
    while (store.needsSweep() && performance.now() < end)
  })
  const sweep: Effect.Effect<void> = Effect.suspend(() =>
    store.needsSweep()
      ? Effect.zipRight(sweepStep, Effect.zipRight(yieldToEventLoop, sweep))
      : Effect.void
  )
  return makeStore({
    get: (key) => Effect.sync(() => Option.fromNullable(store.get(key))),
    has: (key) => Effect.sync(() => store.peek(key) !== undefined),
    set: (key, entry) => Effect.sync(() => store.set(key, entry)),
    delete: (key) => Effect.sync(() => store.delete(key)),
    invalidateTag: (tag) => Effect.sync(() => store.invalidateTag(tag)),
    readForUpdate: (key) => Effect.sync(() => Option.fromNullable(store.readForUpdate(key))),
    compareAndSet: (key, expected, next) =>
      Effect.sync(() => store.compareAndSet(key, expected?.token as number | undefined, next)),
    take: (key) => Effect.sync(() => Option.fromNullable(store.take(key))),
    touch: (key, expiresAt) => Effect.sync(() => store.touch(key, expiresAt)),
    increment: (key, by, created) =>
      Effect.suspend(() => {
        const sum = store.increment(key, by, created)
        return Number.isNaN(sum)
          ? Effect.fail(new WrongType({ key, operation: "increment", expected: "a finite number" }))
          : Effect.succeed(sum)
      }),
    clear: Effect.sync(() => store.clear()),
    size: Effect.sync(() => store.size()),
    sweep,
    sync: { get: (key) => store.get(key), set: (key, entry, now) => store.set(key, entry, now), authoritative: true },
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
  })
}

/**
 * A memory backend. Each cache that opens it gets its own namespace; opening the same name twice
 * gives two views of one namespace, as two clients of one Redis would have.
 *
 * @since 0.1.0
 * @category constructors
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
            store = openStore(open, options.sweepSliceMillis)
            namespaces.set(open.namespace, store)
          }
          return store
        })
    })
  })

/**
 * The memory backend as a layer: `make(options)`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: MemoryOptions = {}): Layer.Layer<Backend> => Layer.effect(Backend, make(options))
