/**
 * Expired rows: `size` subtracts the expired rows it finds through the `(namespace, expires_at)`
 * index from the namespace's row count; the sweeper deletes them in batches of `sweepBatchSize`,
 * each its own short transaction, yielding to the event loop between them, so readers and writers
 * never wait on one long delete.
 */
import type { BackendError } from "@vela/core"
import { Backend } from "@vela/core"
import * as Effect from "effect/Effect"
import type { Namespace } from "./namespace.js"

/** The number of live rows. */
export const size = (ns: Namespace): Effect.Effect<number, BackendError> =>
  Effect.suspend(() => {
    try {
      return Effect.succeed(ns.statements.size.get({ namespace: ns.namespace, now: ns.now() })!)
    } catch (cause) {
      return Effect.fail(ns.fail("size", cause))
    }
  })

export const sweep = (ns: Namespace): Effect.Effect<void, BackendError> => {
  const { namespace, now, statements: s, sweepBatchSize } = ns
  const batch = ns.writer.submit("sweep", () => s.sweep.run(namespace, now(), sweepBatchSize).changes)
  const loop: Effect.Effect<void, BackendError> = Effect.suspend(() => {
    let pending: boolean
    try {
      pending = s.hasExpired.get(namespace, now()) === 1
    } catch (cause) {
      return Effect.fail(ns.fail("sweep", cause))
    }
    if (!pending) return Effect.void
    return Effect.flatMap(batch, (removed) => {
      if (removed > 0) ns.options.onExpire(removed)
      return removed < sweepBatchSize ? Effect.void : Effect.zipRight(Backend.yieldToEventLoop, loop)
    })
  })
  return loop
}
