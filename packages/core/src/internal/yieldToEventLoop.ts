import * as Effect from "effect/Effect"

/**
 * Lets timers and I/O run before the fiber continues. `Effect.yieldNow` alone may resume on a
 * microtask, which keeps the event loop blocked; a macrotask does not, and needs no `Clock`.
 */
export const yieldToEventLoop: Effect.Effect<void> = Effect.async<void>((resume) => {
  const handle = setImmediate(() => resume(Effect.void))
  return Effect.sync(() => clearImmediate(handle))
})
