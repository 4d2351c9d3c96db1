/** Lets timers and I/O run before the fiber continues (a macrotask, so it needs no `Clock`). */
import { Effect } from "effect"

export const yieldToEventLoop: Effect.Effect<void> = Effect.async<void>((resume) => {
  const handle = setImmediate(() => resume(Effect.void))
  return Effect.sync(() => clearImmediate(handle))
})
