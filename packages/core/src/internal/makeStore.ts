/** `Backend.makeStore`: a whole `Store` from what a store does natively, the rest derived. */
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import type { GetCallback, SetCallback, Store, StorePrimitives } from "../Backend.js"
import type { CacheError } from "../Errors.js"
import { BackendError } from "../Errors.js"
import { atomicOperations } from "./atomicOperations.js"
import { emptyStream } from "./emptyStream.js"

export const makeStore = (primitives: StorePrimitives): Store => {
  const get = primitives.get ?? fromGetCallback(primitives.getCallback)
  const set = primitives.set ?? fromSetCallback(primitives.setCallback)
  const getMany: Store["getMany"] = primitives.getMany ??
    ((keys) => Effect.forEach(keys, get, { concurrency: batchConcurrency }))
  const atomic = atomicOperations(primitives)
  return {
    get,
    getCallback: primitives.getCallback ?? gatheredGetCallback(get, getMany),
    has: primitives.has ?? ((key) => Effect.map(get(key), Option.isSome)),
    set,
    setCallback: primitives.setCallback ?? toSetCallback(set),
    delete: primitives.delete,
    getMany,
    setMany: primitives.setMany ??
      ((entries) =>
        Effect.forEach(entries, ([key, entry]) => set(key, entry), { concurrency: batchConcurrency, discard: true })),
    deleteMany: primitives.deleteMany ??
      ((keys) =>
        Effect.map(
          Effect.forEach(keys, primitives.delete, { concurrency: batchConcurrency }),
          (removed) => removed.filter(Boolean).length
        )),
    invalidateTag: primitives.invalidateTag,
    ...atomic,
    clear: primitives.clear,
    size: primitives.size,
    sweep: primitives.sweep,
    // Read when asked for, not here: a topology learns from the asking that a near cache is watching.
    get invalidations() {
      return primitives.invalidations ?? emptyStream
    },
    sync: primitives.sync,
    singleFlight: primitives.singleFlight ??
      ((key, fetch) => fetch((entry) => Effect.as(set(key, entry), true))),
    stats: primitives.stats
  }
}

const batchConcurrency = 16

const fromGetCallback = (getCallback: GetCallback): Store["get"] => (key) =>
  Effect.async((resume) =>
    getCallback(
      key,
      (entry, failure) =>
        resume(failure === undefined ? Effect.succeed(Option.fromNullable(entry)) : Effect.fail(failure))
    )
  )

const fromSetCallback = (setCallback: SetCallback): Store["set"] => (key, entry) =>
  Effect.async((resume) =>
    setCallback(key, entry, (failure) => resume(failure === undefined ? Effect.void : Effect.fail(failure)))
  )

type Done = Parameters<GetCallback>[1]

const getAlone = (get: Store["get"], key: string, done: Done) =>
  Effect.runCallback(get(key), {
    onExit: (exit) =>
      Exit.isSuccess(exit) ? done(Option.getOrUndefined(exit.value)) : done(undefined, failureOf("get", exit.cause))
  })

/**
 * `getCallback` for a store whose reads are Effects: the reads of one tick are gathered and run as
 * one `getMany` (one fiber, one batch for all of them). When the batch fails, each key is read
 * alone, so a failure (a value that no longer decodes) reaches only its own caller.
 */
const gatheredGetCallback = (get: Store["get"], getMany: Store["getMany"]): GetCallback => {
  let keys: Array<string> = []
  let waiting: Array<Done> = []
  const flush = () => {
    const batch = keys
    const callers = waiting
    keys = []
    waiting = []
    if (batch.length === 1) return getAlone(get, batch[0], callers[0])
    Effect.runCallback(getMany(batch), {
      onExit: (exit) => {
        if (Exit.isSuccess(exit)) callers.forEach((done, i) => done(Option.getOrUndefined(exit.value[i])))
        else batch.forEach((key, i) => getAlone(get, key, callers[i]))
      }
    })
  }
  return (key, done) => {
    waiting.push(done)
    if (keys.push(key) === 1) queueMicrotask(flush)
  }
}

const toSetCallback = (set: Store["set"]): SetCallback => (key, entry, done) =>
  Effect.runCallback(set(key, entry), {
    onExit: (exit) => Exit.isSuccess(exit) ? done() : done(failureOf("set", exit.cause))
  })

/** A store's operations fail only with `CacheError`; a defect (a bug in the store) is reported as one, not lost. */
const failureOf = (operation: string, cause: Cause.Cause<CacheError>): CacheError =>
  Option.getOrElse(
    Cause.failureOption(cause),
    () => new BackendError({ backend: "store", operation, cause: Cause.squash(cause) })
  )
