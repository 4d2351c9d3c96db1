/**
 * A store's side of the bus: the changes other processes announce on the namespace's channel become
 * the store's `invalidations`, and wake the single-flight waiters of the keys they name. A message
 * out of sequence means one was missed: it reads as a `Flush`.
 */
import type { Backend } from "@vela/core"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import type { BusListener, BusMessage } from "./bus.js"
import { Inbox, Sequences } from "./bus.js"
import type { Leases } from "./leases.js"
import type { Namespace } from "./namespace.js"

/** Subscribes for the scope; the stream is empty when the bus is off. */
export const listen = (
  ns: Namespace,
  leases: Leases
): Effect.Effect<Stream.Stream<Backend.Invalidation>, never, Scope.Scope> =>
  Effect.gen(function*() {
    const { subscriber } = ns.connection
    if (subscriber === undefined) return Stream.empty
    const inbox = new Inbox()
    const sequences = new Sequences()
    const listener: BusListener = {
      id: ns.id,
      onMessage: (message: BusMessage) => {
        if (message.r !== undefined) return leases.wake(message.r)
        if (!sequences.next(message)) {
          inbox.offer({ _tag: "Flush" })
          return leases.wakeAll()
        }
        if (message.k !== undefined) {
          inbox.offer({ _tag: "Keys", keys: message.k })
          for (const key of message.k) leases.wake(key)
        } else if (message.t !== undefined) {
          inbox.offer({ _tag: "Tag", tag: message.t })
          leases.wakeAll()
        } else if (message.f !== undefined) {
          inbox.offer({ _tag: "Flush" })
          leases.wakeAll()
        }
      },
      onConnected: () => inbox.offer({ _tag: "Connected" }),
      onDisconnected: () => {
        sequences.reset()
        inbox.offer({ _tag: "Disconnected" })
      }
    }
    yield* Effect.acquireRelease(
      Effect.promise(() => subscriber.add(ns.channel, listener)),
      () => Effect.sync(() => subscriber.remove(ns.channel, listener))
    )
    if (!subscriber.connected) inbox.offer({ _tag: "Disconnected" })
    return inbox.stream
  })
