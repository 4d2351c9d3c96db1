import * as Effect from "effect/Effect"

/**
 * The pause after `conflicts` lost compare-and-sets in a row: random, up to 2^conflicts ms (at most
 * 32), so that writers racing on one key spread out instead of retrying in lockstep, where every
 * round costs each loser a read and a write and only one wins. A timer, not `Clock`: this is not an
 * expiry decision, and a `TestClock` must not hold a retry.
 */
export const conflictBackoff = (conflicts: number): Effect.Effect<void> =>
  Effect.async<void>((resume) => {
    const handle = setTimeout(() => resume(Effect.void), Math.random() * Math.min(2 ** conflicts, 32))
    return Effect.sync(() => clearTimeout(handle))
  })
