/**
 * The one read path of a cache, served to the Effect API and the Promise facade alike: `now`
 * answers without the runtime where the store has a synchronous view (an in-memory hit, an
 * authoritative miss); otherwise the store answers, through `store.get` for the Effect API and
 * through `store.getCallback` for callers without the runtime. Either way the answer is counted,
 * reported and told fresh from stale in one place (`classify`).
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type { Entry } from "../../Backend.js"
import type { CacheError } from "../../Errors.js"
import { NotFound } from "../../Errors.js"
import { Graced } from "../grace.js"
import * as Grace from "../grace.js"
import type { Core } from "./core.js"

/** `now` found no answer that does not need the store's asynchronous read. */
export const Unknown: unique symbol = Symbol("@vela/core/Unknown")
/** `now` found a miss that holds for the whole cache. */
export const Miss: unique symbol = Symbol("@vela/core/Miss")

/** What a read of the store found: a fresh value, a stale one within its grace, or nothing. */
export type Lookup<V> =
  | { readonly _tag: "Fresh"; readonly value: V }
  | { readonly _tag: "Stale"; readonly value: V }
  | { readonly _tag: "Missing" }

export const missing: Lookup<never> = { _tag: "Missing" }

const notFound = (key: string) => Effect.fail(new NotFound({ key }))
const succeedSome = <A>(value: A) => Effect.succeed(Option.some(value))
const succeedNone = () => Effect.succeedNone

export interface Reads<V> {
  /** A hit, an authoritative miss, or `Unknown` (a stale entry too); hits and misses are counted and reported. */
  readonly now: (key: string) => V | typeof Miss | typeof Unknown
  /** The store's answer through `store.get`, counted and reported. */
  readonly lookup: (key: string) => Effect.Effect<Lookup<V>, CacheError>
  /** The store's answer through `store.getCallback`; `done` gets `missing` with the failure when there is one. */
  readonly lookupCallback: (key: string, done: (found: Lookup<V>, failure?: CacheError) => void) => void
  /** Counts and reports what a read of the store found, started at `started`. */
  readonly classify: (key: string, entry: Entry | undefined, started: bigint) => Lookup<V>
  /** The value of a fresh entry, or `Miss` (nothing, or a stale entry); counted and reported as `classify`. */
  readonly freshValue: (key: string, entry: Option.Option<Entry>, started: bigint) => V | typeof Miss
  /** Counts a failed read of the store (data that no longer decodes). */
  readonly failed: (failure: CacheError) => void
  readonly get: (key: string) => Effect.Effect<V, NotFound | CacheError>
  readonly getOption: (key: string) => Effect.Effect<Option.Option<V>, CacheError>
}

export const make = <V>(core: Core): Reads<V> => {
  const { check, clock, counters, store } = core
  const { emit, start, watching } = core.observer
  const sync = store.sync

  const now = (key: string): V | typeof Miss | typeof Unknown => {
    if (sync === undefined) return Unknown
    const started = start()
    const entry = sync.get(key)
    if (entry !== undefined) {
      let value = entry.value
      // A stale entry is for the store's read to answer (its grace, its refresh). `Grace.fresh`
      // written out: every in-memory hit passes here, and the call cost it 2-4%.
      if (value instanceof Graced) {
        if (value.freshUntil <= clock.unsafeCurrentTimeMillis()) return Unknown
        value = value.value
      }
      counters.hits.add(1)
      if (watching()) emit?.("get", started, { key, result: "hit" })
      return value as V
    }
    if (!sync.authoritative) return Unknown
    counters.misses.add(1)
    if (watching()) emit?.("get", started, { key, result: "miss" })
    return Miss
  }

  const report = (key: string, hit: boolean, started: bigint) => {
    if (hit) counters.hits.add(1)
    else counters.misses.add(1)
    if (watching()) emit?.("get", started, { key, result: hit ? "hit" : "miss" })
  }

  const classify = (key: string, entry: Entry | undefined, started: bigint): Lookup<V> => {
    let found: Lookup<V> = missing
    if (entry !== undefined) {
      const value = Grace.fresh(entry.value, clock, Miss)
      found = value !== Miss
        ? { _tag: "Fresh", value: value as V }
        : { _tag: "Stale", value: (entry.value as Graced).value as V }
    }
    report(key, found._tag === "Fresh", started)
    return found
  }

  /** `classify` for reads that want only a fresh value: no `Lookup` is built. */
  const freshValue = (key: string, entry: Option.Option<Entry>, started: bigint): V | typeof Miss => {
    const value = entry._tag === "Some" ? Grace.fresh(entry.value.value, clock, Miss) : Miss
    report(key, value !== Miss, started)
    return value as V | typeof Miss
  }

  const failed = (failure: CacheError) => {
    if (failure._tag === "CodecError") counters.codecErrors.add(1)
  }
  /** A failed read of the store, counted and passed on. */
  const failRead = (failure: CacheError) => {
    failed(failure)
    return Effect.fail(failure)
  }

  const lookup = (key: string): Effect.Effect<Lookup<V>, CacheError> => {
    const started = start()
    return Effect.matchEffect(store.get(key), {
      onFailure: failRead,
      onSuccess: (entry) => Effect.succeed(classify(key, Option.getOrUndefined(entry), started))
    })
  }

  const lookupCallback = (key: string, done: (found: Lookup<V>, failure?: CacheError) => void) => {
    const started = start()
    store.getCallback(key, (entry, failure) => {
      if (failure === undefined) return done(classify(key, entry, started))
      failed(failure)
      done(missing, failure)
    })
  }

  /**
   * What the store answers for a key `now` could not answer, through `hit` or `miss`: one
   * continuation over `store.get` (the store's own Effect, which names what it waits on for
   * `TestClock`), straight from the entry: no `Lookup`, no further steps.
   */
  const fromStore = <A, E>(
    key: string,
    hit: (value: V) => Effect.Effect<A, E>,
    miss: (key: string) => Effect.Effect<A, E>
  ): Effect.Effect<A, E | CacheError> => {
    const started = start()
    return Effect.matchEffect(store.get(key), {
      onFailure: failRead,
      onSuccess: (entry) => {
        const value = freshValue(key, entry, started)
        return value === Miss ? miss(key) : hit(value)
      }
    })
  }

  // A hit answered in this step, each read with its own answer (a call site of one callee).
  const get = (key: string): Effect.Effect<V, NotFound | CacheError> =>
    Effect.suspend(() => {
      const invalid = check(key)
      if (invalid !== undefined) return Effect.fail(invalid)
      const found = now(key)
      if (found === Miss) return notFound(key)
      return found === Unknown ? fromStore(key, Effect.succeed, notFound) : Effect.succeed(found)
    })

  const getOption = (key: string): Effect.Effect<Option.Option<V>, CacheError> =>
    Effect.suspend(() => {
      const invalid = check(key)
      if (invalid !== undefined) return Effect.fail(invalid)
      const found = now(key)
      if (found === Miss) return Effect.succeedNone
      return found === Unknown ? fromStore(key, succeedSome, succeedNone) : Effect.succeed(Option.some(found))
    })

  return { now, lookup, lookupCallback, classify, freshValue, failed, get, getOption }
}
