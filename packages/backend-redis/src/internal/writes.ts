/**
 * Writes: every change and its bus message leave in one script, so a change and its announcement
 * are atomic. Untagged puts of one bucket within one tick go out as one script (every `SET`, then
 * one message naming every key): one command and one Lua call for many callers. A tagged put, and
 * the write of a fetch holding the key's lease, run a script of their own.
 */
import type { Backend, CodecError } from "@vela/core"
import { BackendError } from "@vela/core"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Entry from "./entry.js"
import type { Namespace } from "./namespace.js"
import { pxOf, waitingOn } from "./namespace.js"
import * as Scripts from "./scripts.js"

/** Most puts one script carries. */
const maxBatch = 256

/** `stored`: whether a fetch's write (with a lease token) found its lease and stored the entry. */
export type WriteDone = (failure?: BackendError | CodecError, stored?: boolean) => void

export interface Writes {
  /** A put, or with `token` the write of a fetch holding the key's lease (stored only while it holds it). */
  readonly setCallback: (key: string, entry: Backend.Entry, done: WriteDone, token?: string) => void
  /** `setCallback` as an `Effect` naming the command it waits on, as `Reads.get` is `getCallback`. */
  readonly set: (key: string, entry: Backend.Entry) => Effect.Effect<void, BackendError | CodecError>
  /** Every put handed to `setCallback` at once, so they share the tick's scripts; one fiber waits for all. */
  readonly setMany: (
    entries: ReadonlyArray<readonly [string, Backend.Entry]>
  ) => Effect.Effect<void, BackendError | CodecError>
  readonly delete: (key: string) => Effect.Effect<boolean, BackendError>
  /** One script per key, all sent at once (one pipelined write); one fiber waits for all. */
  readonly deleteMany: (keys: ReadonlyArray<string>) => Effect.Effect<number, BackendError>
}

interface Batch {
  /** Each put's entry. */
  readonly entryKeys: Array<string>
  /** Each put's lease. */
  readonly leaseKeys: Array<string>
  readonly args: Array<string>
  readonly names: Array<string>
  readonly callers: Array<WriteDone>
}

export const make = (ns: Namespace): Writes => {
  const { announce, channel, client, codec, keys, now } = ns
  const failed = (operation: string, cause: unknown) =>
    new BackendError({ backend: ns.connection.name, operation, cause })

  const { subscriber } = ns.connection
  const self = () => subscriber === undefined || channel === "" ? "" : subscriber.self(channel, ns.id)

  const pending = new Array<Batch | undefined>(ns.buckets.length)
  const flush = (bucket: number) => {
    const batch = pending[bucket]
    if (batch === undefined) return
    pending[bucket] = undefined
    const { args, callers } = batch
    args[0] = channel
    args[1] = announce(bucket, `"k":${JSON.stringify(batch.names)}`)
    args[2] = self()
    Scripts.runCallback(client, Scripts.putMany, batch.entryKeys.concat(batch.leaseKeys), args, () => {
      for (const done of callers) done()
    }, (cause) => {
      const failure = failed("set", cause)
      for (const done of callers) done(failure)
    })
  }
  const enqueue = (bucket: number, key: string, entryKey: string, payload: string, px: string, done: WriteDone) => {
    let batch = pending[bucket]
    if (batch === undefined) {
      // args: channel, message and self, filled in by `flush`, then a payload and px per put.
      batch = { entryKeys: [], leaseKeys: [], args: ["", "", ""], names: [], callers: [] }
      pending[bucket] = batch
      process.nextTick(flush, bucket)
    }
    batch.entryKeys.push(entryKey)
    batch.leaseKeys.push(keys.lease(key, bucket))
    batch.args.push(payload, px)
    batch.names.push(key)
    batch.callers.push(done)
    if (batch.names.length >= maxBatch) flush(bucket)
  }

  const setCallback = (key: string, entry: Backend.Entry, done: WriteDone, token = "") => {
    const payload = Entry.encode(codec, key, entry)
    if (Either.isLeft(payload)) return done(payload.left)
    const bucket = keys.bucketOf(key)
    const entryKey = keys.entry(key, bucket)
    const px = pxOf(ns, entry.expiresAt)
    if (entry.tags.length === 0 && token === "") return enqueue(bucket, key, entryKey, payload.right, px, done)
    const scriptKeys = [entryKey, keys.lease(key, bucket)]
    for (const tag of entry.tags) scriptKeys.push(keys.tagSet(tag, bucket))
    Scripts.runCallback(
      client,
      Scripts.put,
      scriptKeys,
      [
        payload.right,
        px,
        channel,
        announce(bucket, `"k":[${JSON.stringify(key)}]`),
        token,
        self()
      ],
      (stored) => done(undefined, stored === 1),
      (cause) => done(failed("set", cause))
    )
  }

  const set = (key: string, entry: Backend.Entry): Effect.Effect<void, BackendError | CodecError> =>
    Effect.async(
      (resume) =>
        setCallback(key, entry, (failure) => resume(failure === undefined ? Effect.void : Effect.fail(failure))),
      waitingOn()
    )

  const setMany = (entries: ReadonlyArray<readonly [string, Backend.Entry]>) =>
    Effect.async<void, BackendError | CodecError>((resume) => {
      let left = entries.length
      if (left === 0) return resume(Effect.void)
      let settled = false
      const done: WriteDone = (failure) => {
        if (settled) return
        if (failure !== undefined || --left === 0) {
          settled = true
          resume(failure === undefined ? Effect.void : Effect.fail(failure))
        }
      }
      for (const [key, entry] of entries) setCallback(key, entry, done)
    }, waitingOn())

  /** Removes `key`, telling `done` whether a live entry (by the cache's clock at `at`) went. */
  const remove = (key: string, at: number, done: (failure?: BackendError, live?: boolean) => void) => {
    const bucket = keys.bucketOf(key)
    Scripts.run(client, Scripts.remove, [keys.entry(key, bucket), keys.lease(key, bucket)], [
      channel,
      announce(bucket, `"k":[${JSON.stringify(key)}]`)
    ]).then(
      (expiresAt) => done(undefined, expiresAt !== null && (expiresAt === "" || Number(expiresAt) > at)),
      (cause) => done(failed("delete", cause))
    )
  }

  const deleteMany = (removed: ReadonlyArray<string>) =>
    Effect.async<number, BackendError>((resume) => {
      let left = removed.length
      if (left === 0) return resume(Effect.succeed(0))
      let live = 0
      let settled = false
      const at = now()
      const done = (failure?: BackendError, wasLive?: boolean) => {
        if (settled) return
        if (wasLive === true) live++
        if (failure !== undefined || --left === 0) {
          settled = true
          resume(failure === undefined ? Effect.succeed(live) : Effect.fail(failure))
        }
      }
      for (const key of removed) remove(key, at, done)
    }, waitingOn())

  return {
    setCallback,
    set,
    setMany,
    delete: (key) => Effect.map(deleteMany([key]), (n) => n > 0),
    deleteMany
  }
}
