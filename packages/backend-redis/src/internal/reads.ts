/**
 * Reads: the reads of one bucket within one tick go out as one `MGET` (a `GET` when alone), one
 * command for many callers, and each caller is answered straight from the reply (no intermediate
 * effects). `getMany` sends its own `MGET` per bucket; `has` reads only an entry's header.
 */
import type { Backend, CodecError } from "@vela/core"
import { BackendError } from "@vela/core"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Entry from "./entry.js"
import type { Namespace } from "./namespace.js"
import { attempt, waitingOn } from "./namespace.js"

/** Most gets one `MGET` carries. */
const maxBatch = 256

export type ReadDone = (entry: Backend.Entry | undefined, failure?: BackendError | CodecError) => void

export interface Reads {
  /** The tick-shared read, answered by callback. */
  readonly getCallback: (key: string, done: ReadDone) => void
  /**
   * `getCallback` as an `Effect` that names the command it waits on (see `waitingOn`), which the
   * `get` `Backend.makeStore` would derive cannot: so `TestClock` suites on Redis stay exact.
   */
  readonly get: (key: string) => Effect.Effect<Option.Option<Backend.Entry>, BackendError | CodecError>
  readonly getMany: (
    keys: ReadonlyArray<string>
  ) => Effect.Effect<ReadonlyArray<Option.Option<Backend.Entry>>, BackendError | CodecError>
  /** `GETRANGE` of the header: the value is neither sent nor decoded. */
  readonly has: (key: string) => Effect.Effect<boolean, BackendError>
}

interface Batch {
  readonly entryKeys: Array<string>
  readonly names: Array<string>
  readonly callers: Array<ReadDone>
}

export const make = (ns: Namespace): Reads => {
  const { client, codec, keys, now } = ns

  const answer = (done: ReadDone, key: string, payload: string | null, at: number) => {
    if (payload === null) return done(undefined)
    const decoded = Entry.decode(codec, key, payload, at)
    return Entry.isFailure(decoded) ? done(undefined, decoded) : done(decoded)
  }

  const pending = new Array<Batch | undefined>(ns.buckets.length)
  const flush = (bucket: number) => {
    const batch = pending[bucket]
    if (batch === undefined) return
    pending[bucket] = undefined
    const failed = (cause: unknown) => {
      const error = new BackendError({ backend: ns.connection.name, operation: "get", cause })
      for (const done of batch.callers) done(undefined, error)
    }
    // A lone read (every read at concurrency 1) as a `GET`: its reply is the payload, not an array.
    if (batch.callers.length === 1) {
      client.get(batch.entryKeys[0]).then((payload) => answer(batch.callers[0], batch.names[0], payload, now()), failed)
      return
    }
    client.mget(batch.entryKeys).then((payloads) => {
      const at = now()
      for (let i = 0; i < payloads.length; i++) answer(batch.callers[i], batch.names[i], payloads[i], at)
    }, failed)
  }

  const getCallback = (key: string, done: ReadDone) => {
    const bucket = keys.bucketOf(key)
    let batch = pending[bucket]
    if (batch === undefined) {
      batch = { entryKeys: [], names: [], callers: [] }
      pending[bucket] = batch
      process.nextTick(flush, bucket)
    }
    batch.entryKeys.push(keys.entry(key, bucket))
    batch.names.push(key)
    batch.callers.push(done)
    if (batch.entryKeys.length >= maxBatch) flush(bucket)
  }

  const get = (key: string): Effect.Effect<Option.Option<Backend.Entry>, BackendError | CodecError> =>
    Effect.async(
      (resume) =>
        getCallback(
          key,
          (entry, failure) =>
            resume(failure === undefined ? Effect.succeed(Option.fromNullable(entry)) : Effect.fail(failure))
        ),
      waitingOn()
    )

  /** Decodes `payloads` (the replies for `indices` of `wanted`) into `found`; the first failure, if any. */
  const decodeInto = (
    found: Array<Option.Option<Backend.Entry>>,
    wanted: ReadonlyArray<string>,
    indices: ReadonlyArray<number> | undefined,
    payloads: ReadonlyArray<string | null>
  ): CodecError | undefined => {
    let failure: CodecError | undefined
    const at = now()
    for (let j = 0; j < payloads.length; j++) {
      const index = indices === undefined ? j : indices[j]
      const payload = payloads[j]
      if (payload === null) {
        found[index] = Option.none()
        continue
      }
      const decoded = Entry.decode(codec, wanted[index], payload, at)
      if (decoded === undefined) found[index] = Option.none()
      else if (Entry.isFailure(decoded)) {
        found[index] = Option.none()
        failure ??= decoded
      } else found[index] = Option.some(decoded)
    }
    return failure
  }

  /**
   * One `MGET` per bucket (a single one on a single server), answers in the order asked. Callbacks,
   * not one forked fiber per bucket: a batch of 100 keys costs little more than its `MGET`.
   */
  const getMany = (wanted: ReadonlyArray<string>) =>
    Effect.async<ReadonlyArray<Option.Option<Backend.Entry>>, BackendError | CodecError>((resume) => {
      const found = new Array<Option.Option<Backend.Entry>>(wanted.length)
      if (wanted.length === 0) return resume(Effect.succeed(found))
      const failed = (cause: unknown) => new BackendError({ backend: ns.connection.name, operation: "getMany", cause })
      // The indices of `wanted` per bucket; on a single server, one group of all of them in order.
      const groups = new Map<number, Array<number> | undefined>()
      if (keys.buckets === 1) groups.set(0, undefined)
      else {
        for (let i = 0; i < wanted.length; i++) {
          const bucket = keys.bucketOf(wanted[i])
          const group = groups.get(bucket)
          if (group === undefined) groups.set(bucket, [i])
          else group.push(i)
        }
      }
      let left = groups.size
      let settled = false
      const settle = (failure: BackendError | CodecError | undefined) => {
        if (settled) return
        if (failure !== undefined || --left === 0) {
          settled = true
          resume(failure === undefined ? Effect.succeed(found) : Effect.fail(failure))
        }
      }
      for (const [bucket, indices] of groups) {
        const count = indices === undefined ? wanted.length : indices.length
        const entryKeys = new Array<string>(count)
        for (let j = 0; j < count; j++) {
          entryKeys[j] = keys.entry(wanted[indices === undefined ? j : indices[j]], bucket)
        }
        client.mget(entryKeys).then(
          (payloads) => settle(decodeInto(found, wanted, indices, payloads)),
          (cause) => settle(failed(cause))
        )
      }
    }, waitingOn())

  const has = (key: string) =>
    Effect.map(
      attempt(ns, "has", () => client.getrange(keys.entry(key), 0, 31)),
      (header) => Entry.isLive(header, now())
    )

  return { getCallback, get, getMany, has }
}
