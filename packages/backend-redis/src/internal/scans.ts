/**
 * The operations on a whole namespace, which visit its keys with `SCAN` on every node: `clear` and
 * `size`.
 *
 * Concurrency: `clear` deletes tag sets before entries: a concurrent tagged `put` then either loses
 * its entry or keeps both entry and set, never an entry its tag cannot reach. Leases go last, so
 * fetches in flight do not write over the flush.
 */
import type { BackendError } from "@vela/core"
import * as Effect from "effect/Effect"
import { groupBySlot } from "./keys.js"
import type { Namespace } from "./namespace.js"
import { attempt, scanEach, unlink } from "./namespace.js"
import * as Scripts from "./scripts.js"

export const clear = (ns: Namespace): Effect.Effect<void, BackendError> =>
  Effect.gen(function*() {
    const { keys } = ns
    yield* scanEach(ns, "flush", keys.patterns.t, (found) => unlink(ns, "flush", found))
    yield* scanEach(ns, "flush", keys.patterns.k, (found) => unlink(ns, "flush", found))
    yield* scanEach(ns, "flush", keys.patterns.l, (found) => unlink(ns, "flush", found))
    if (ns.channel !== "") {
      yield* attempt(
        ns,
        "flush",
        () => Scripts.run(ns.client, Scripts.publish, [keys.lease("", 0)], [ns.channel, ns.announce(0, `"f":1`)])
      )
    }
  })

/** The live entries, counted by a script reading only their headers; a key `SCAN` returns twice counts once. */
export const size = (ns: Namespace): Effect.Effect<number, BackendError> =>
  Effect.suspend(() => {
    const at = ns.now()
    const seen = new Set<string>()
    let total = 0
    return Effect.map(
      scanEach(ns, "size", ns.keys.patterns.k, (found) => {
        const fresh = found.filter((key) => !seen.has(key))
        for (const key of fresh) seen.add(key)
        return Effect.forEach(groupBySlot(ns.keys, fresh), (group) =>
          Effect.map(
            attempt(ns, "size", () => Scripts.run(ns.client, Scripts.countLive, group, [at])),
            (n) => {
              total += Number(n)
            }
          ), { concurrency: "unbounded", discard: true })
      }),
      () => total
    )
  })
