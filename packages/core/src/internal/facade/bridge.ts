/** Between callbacks, Promises and Effects: how the facade hands results and user functions across. */
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Runtime from "effect/Runtime"

export const resolvedUndefined = Promise.resolve(undefined)

/**
 * The Promise of a call that reports through `done` (a failure, or `undefined` and the value). When
 * `done` runs before the call returns (an in-memory store), the Promise is made settled.
 */
export const fromCallback = <A>(call: (done: (failure: unknown, value: A) => void) => void): Promise<A> => {
  let now: Promise<A> | undefined
  let later: ((failure: unknown, value: A) => void) | undefined
  call((failure, value) => {
    if (later !== undefined) return later(failure, value)
    now = failure !== undefined
      ? Promise.reject(failure)
      : value === undefined
      ? resolvedUndefined as Promise<A>
      : Promise.resolve(value)
  })
  return now ?? new Promise<A>((resolve, reject) => {
    later = (failure, value) => failure === undefined ? resolve(value) : reject(failure)
  })
}

/** What a facade fetch threw, carried through the runtime so callers get the very same value. */
export class Thrown {
  constructor(readonly thrown: unknown) {}
}

/** What a user function gave, as an Effect: a value, a PromiseLike's result, or what it threw or rejected with. */
export const orThrown = <A>(f: () => A | PromiseLike<A>): Effect.Effect<A, Thrown> => {
  try {
    const result = f()
    return isPromiseLike(result)
      ? Effect.tryPromise({ try: async () => result, catch: (thrown) => new Thrown(thrown) })
      : Effect.succeed(result)
  } catch (thrown) {
    return Effect.fail(new Thrown(thrown))
  }
}

export const isPromiseLike = (value: unknown): value is PromiseLike<unknown> =>
  (typeof value === "object" || typeof value === "function") && value !== null &&
  typeof (value as { then?: unknown }).then === "function"

export const unwrap = (error: unknown): unknown => error instanceof Thrown ? error.thrown : error

export const isAsync = (cause: Cause.Cause<unknown>): boolean => Runtime.isAsyncFiberException(Cause.squash(cause))
