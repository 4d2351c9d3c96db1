/**
 * Tags: each bucket keeps a set of the entry keys carrying a tag. A set may hold members that no
 * longer carry it (an overwrite does not read the old tags): `invalidateTag` checks each entry's own
 * tags before removing it, and the sweep drops the stale members.
 */
import type { BackendError } from "@vela/core"
import * as Effect from "effect/Effect"
import type { Namespace } from "./namespace.js"
import { attempt, scanEach } from "./namespace.js"
import * as Scripts from "./scripts.js"

/** Removes every entry carrying `tag`, one script per bucket; returns how many live entries went. */
export const invalidateTag = (ns: Namespace, tag: string): Effect.Effect<number, BackendError> =>
  Effect.suspend(() => {
    const at = ns.now()
    return Effect.map(
      Effect.forEach(ns.buckets, (bucket) =>
        attempt(ns, "invalidateTag", () =>
          Scripts.run(ns.client, Scripts.invalidateTag, [ns.keys.tagSet(tag, bucket)], [
            tag,
            at,
            ns.channel,
            ns.announce(bucket, `"t":${JSON.stringify(tag)}`)
          ])), { concurrency: "unbounded" }),
      (counts) =>
        counts.reduce((sum: number, n) =>
          sum + Number(n), 0)
    )
  })

/** Drops the members of every tag set that are gone, expired or no longer tagged (Redis expires the entries). */
export const sweep = (ns: Namespace): Effect.Effect<void, BackendError> =>
  Effect.suspend(() => {
    const at = ns.now()
    return scanEach(ns, "sweep", ns.keys.patterns.t, (found) =>
      Effect.forEach(
        found,
        (tagSet) =>
          attempt(ns, "sweep", () => Scripts.run(ns.client, Scripts.sweepTag, [tagSet], [ns.keys.tagOf(tagSet), at])),
        { concurrency: 8, discard: true }
      ))
  })
