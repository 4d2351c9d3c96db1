/**
 * One cache's namespace on Redis (a single server or a cluster): the `Store` a `Backend.open` gives.
 *
 * Expiry: Redis removes an entry by itself (`PX`, relative, so every process sees the same expiry
 * and a test clock at epoch 0 is no problem); every read also checks the stored `expiresAt` against
 * the cache's clock, so an entry is never returned after `expiresAt` even if Redis still holds it.
 *
 * Concurrency: a write and its bus message leave in one script, so a change and its announcement are
 * atomic. `flush` deletes tag sets before entries: a concurrent tagged `put` then either loses its
 * entry or keeps both entry and set, never an entry its tag cannot reach.
 *
 * Failure: every command is bounded by the client's `commandTimeout`, and commands fail at once
 * while the connection is down (no offline queue), so an outage is a prompt `BackendError`.
 */
import type { CacheError, CodecError } from "@vela/core"
import { Backend, BackendError, ConfigError, FetchTimeout } from "@vela/core"
import type { Scope } from "effect"
import { Effect, Either, FiberId, Option, Stream } from "effect"
import type { Cluster, Redis } from "ioredis"
import { randomBytes } from "node:crypto"
import type { BusListener, BusMessage, Subscriber } from "./bus.js"
import { Inbox, Sequences } from "./bus.js"
import * as Entry from "./entry.js"
import { groupBySlot, Keyspace } from "./keys.js"
import * as Scripts from "./scripts.js"

/** What a store needs of its backend. */
export interface Connection {
  readonly name: string
  readonly client: Redis | Cluster
  /** The nodes `SCAN` must visit: the server, or every cluster master. */
  readonly masters: () => ReadonlyArray<Redis>
  /** `undefined` when the bus is off. */
  readonly subscriber: Subscriber | undefined
  readonly prefix: string
  readonly buckets: number
  /** How much longer than its TTL Redis keeps an entry (reads still end it at `expiresAt`). */
  readonly expiryGrace: number
  /** Whether the store offers `singleFlight`. */
  readonly singleFlight: boolean
}

/**
 * A fresh id for each command a fiber waits on. A fiber suspended on one command then looks
 * different from one suspended on the next, so `TestClock.adjust`, which waits until every fiber
 * stays suspended, does not mistake a fiber making progress through commands for an idle one.
 */
let commands = 0
const waitingOn = () => FiberId.make(++commands, 0)

/** How often a waiter of a single flight looks again when no bus message woke it. */
const pollMillis = 100
const scanCount = 1_000
/** Most gets one MGET, or puts one script, carries. */
const maxBatch = 256

export const open = (
  connection: Connection,
  options: Backend.OpenOptions
): Effect.Effect<Backend.Store, BackendError | ConfigError, Scope.Scope> =>
  Effect.gen(function*() {
    if (options.maxSize !== Infinity) {
      return yield* new ConfigError({
        field: "maxSize",
        reason: "Redis bounds memory itself: set maxmemory and maxmemory-policy on the server, not maxSize"
      })
    }
    const { client, expiryGrace, subscriber } = connection
    const { clock, codec } = options
    const keys = new Keyspace(connection.prefix, options.namespace, connection.buckets)
    const id = randomBytes(8).toString("hex")
    const channel = subscriber === undefined ? "" : keys.channel
    const sequence = new Array<number>(connection.buckets).fill(0)
    const now = () => clock.unsafeCurrentTimeMillis()

    // The bus

    /** The next message of `bucket`; built when its command is sent, so numbers follow send order. */
    const announce = (bucket: number, body: string) =>
      channel === "" ? "" : `{"p":"${id}","b":${bucket},"s":${++sequence[bucket]},${body}}`
    const inbox = new Inbox()
    const sequences = new Sequences()
    const waiters = new Map<string, Set<() => void>>()
    const wake = (key: string) => {
      const set = waiters.get(key)
      if (set !== undefined) { for (const resume of set) resume() }
    }
    const wakeAll = () => {
      for (const set of waiters.values()) for (const resume of set) resume()
    }
    const listener: BusListener = {
      id,
      onMessage: (message: BusMessage) => {
        if (message.r !== undefined) return wake(message.r)
        if (!sequences.next(message)) {
          inbox.offer({ _tag: "Flush" })
          return wakeAll()
        }
        if (message.k !== undefined) {
          inbox.offer({ _tag: "Keys", keys: message.k })
          for (const key of message.k) wake(key)
        } else if (message.t !== undefined) {
          inbox.offer({ _tag: "Tag", tag: message.t })
          wakeAll()
        } else if (message.f !== undefined) {
          inbox.offer({ _tag: "Flush" })
          wakeAll()
        }
      },
      onConnected: () => inbox.offer({ _tag: "Connected" }),
      onDisconnected: () => {
        sequences.reset()
        inbox.offer({ _tag: "Disconnected" })
      }
    }
    if (subscriber !== undefined) {
      yield* Effect.acquireRelease(
        Effect.promise(() => subscriber.add(channel, listener)),
        () => Effect.sync(() => subscriber.remove(channel, listener))
      )
      if (!subscriber.connected) inbox.offer({ _tag: "Disconnected" })
    }

    // Commands

    const attempt = <A>(operation: string, run: () => Promise<A>): Effect.Effect<A, BackendError> =>
      Effect.async((resume) => {
        run().then(
          (a) => resume(Effect.succeed(a)),
          (cause) => resume(Effect.fail(new BackendError({ backend: connection.name, operation, cause })))
        )
      }, waitingOn())

    const unlink = (operation: string, found: ReadonlyArray<string>) =>
      Effect.forEach(groupBySlot(keys, found), (group) => attempt(operation, () => client.unlink(...group)), {
        concurrency: "unbounded",
        discard: true
      })

    /** Visits every key matching `pattern`, one `SCAN` batch at a time, on every node. */
    const scanEach = (
      operation: string,
      pattern: string,
      f: (found: ReadonlyArray<string>) => Effect.Effect<void, BackendError>
    ) =>
      Effect.forEach(connection.masters(), (node) => {
        const loop = (cursor: string): Effect.Effect<void, BackendError> =>
          Effect.flatMap(
            attempt(operation, () => node.scan(cursor, "MATCH", pattern, "COUNT", scanCount)),
            ([next, found]) =>
              Effect.zipRight(found.length === 0 ? Effect.void : f(found), next === "0" ? Effect.void : loop(next))
          )
        return loop("0")
      }, { discard: true })

    const buckets = Array.from({ length: connection.buckets }, (_, b) => b)

    // The hot paths (get, set) resume their fiber straight from the reply, with one `Effect.async`
    // and no intermediate effects, and share commands with the other callers of the same tick.

    type ReadDone = (entry: Backend.Entry | undefined, failure?: BackendError | CodecError) => void
    const readReply = (done: ReadDone, key: string, payload: string | null) => {
      if (payload === null) return done(undefined)
      const decoded = Entry.decode(codec, key, payload, now())
      return Either.isLeft(decoded) ? done(undefined, decoded.left) : done(decoded.right ?? undefined)
    }

    // Reads of one bucket within one tick go out as one MGET: one command for many callers.
    interface Reads {
      readonly entryKeys: Array<string>
      readonly names: Array<string>
      readonly callers: Array<ReadDone>
    }
    const reads = new Array<Reads | undefined>(connection.buckets)
    const flushReads = (bucket: number) => {
      const batch = reads[bucket]
      if (batch === undefined) return
      reads[bucket] = undefined
      client.mget(batch.entryKeys).then(
        (payloads) => {
          for (let i = 0; i < payloads.length; i++) readReply(batch.callers[i], batch.names[i], payloads[i])
        },
        (cause) => {
          const error = new BackendError({ backend: connection.name, operation: "get", cause })
          for (const done of batch.callers) done(undefined, error)
        }
      )
    }

    const read = (key: string, done: ReadDone) => {
      const bucket = keys.bucketOf(key)
      let batch = reads[bucket]
      if (batch === undefined) {
        batch = { entryKeys: [], names: [], callers: [] }
        reads[bucket] = batch
        process.nextTick(flushReads, bucket)
      }
      batch.entryKeys.push(keys.entry(key, bucket))
      batch.names.push(key)
      batch.callers.push(done)
      if (batch.entryKeys.length >= maxBatch) flushReads(bucket)
    }

    const get = (key: string): Effect.Effect<Option.Option<Backend.Entry>, BackendError | CodecError> =>
      Effect.async(
        (resume) =>
          read(
            key,
            (entry, failure) =>
              resume(failure === undefined ? Effect.succeed(Option.fromNullable(entry)) : Effect.fail(failure))
          ),
        waitingOn()
      )

    /** `stored`: whether a fetch's write (with a lease token) found its lease and stored the entry. */
    type WriteDone = (failure?: BackendError | CodecError, stored?: boolean) => void
    const setFailed = (cause: unknown) => new BackendError({ backend: connection.name, operation: "set", cause })

    // Untagged puts of one bucket within one tick go out as one script: every SET, then one message
    // naming every key. Still atomic (changes and announcement together), and one command and one
    // Lua call for many callers instead of one each.
    interface Batch {
      /** Each put's entry and lease. */
      readonly scriptKeys: Array<string>
      readonly args: Array<string>
      readonly names: Array<string>
      readonly callers: Array<WriteDone>
    }
    const batches = new Array<Batch | undefined>(connection.buckets)
    const flush = (bucket: number) => {
      const batch = batches[bucket]
      if (batch === undefined) return
      batches[bucket] = undefined
      Scripts.run(client, Scripts.putMany, batch.scriptKeys, [
        channel,
        announce(bucket, `"k":${JSON.stringify(batch.names)}`),
        ...batch.args
      ]).then(
        () => {
          for (const done of batch.callers) done()
        },
        (cause) => {
          const failure = setFailed(cause)
          for (const done of batch.callers) done(failure)
        }
      )
    }
    const enqueue = (
      bucket: number,
      key: string,
      entryKey: string,
      payload: string,
      px: string,
      done: WriteDone
    ) => {
      let batch = batches[bucket]
      if (batch === undefined) {
        batch = { scriptKeys: [], args: [], names: [], callers: [] }
        batches[bucket] = batch
        process.nextTick(flush, bucket)
      }
      batch.scriptKeys.push(entryKey, keys.lease(key, bucket))
      batch.args.push(payload, px)
      batch.names.push(key)
      batch.callers.push(done)
      if (batch.names.length >= maxBatch) flush(bucket)
    }

    /** A put, or with `token` the write of a fetch holding the key's lease (stored only while it holds it). */
    const write = (key: string, entry: Backend.Entry, done: WriteDone, token = "") => {
      const payload = Entry.encode(codec, key, entry)
      if (Either.isLeft(payload)) return done(payload.left)
      const bucket = keys.bucketOf(key)
      const entryKey = keys.entry(key, bucket)
      const px = entry.expiresAt === null ? "" : String(Math.max(1, Math.ceil(entry.expiresAt - now())) + expiryGrace)
      if (entry.tags.length === 0 && token === "") return enqueue(bucket, key, entryKey, payload.right, px, done)
      const scriptKeys = [entryKey, keys.lease(key, bucket)]
      for (const tag of entry.tags) scriptKeys.push(keys.tagSet(tag, bucket))
      Scripts.run(client, Scripts.put, scriptKeys, [
        payload.right,
        px,
        channel,
        announce(bucket, `"k":[${JSON.stringify(key)}]`),
        token
      ]).then((stored) => done(undefined, stored === 1), (cause) => done(setFailed(cause)))
    }

    const set = (key: string, entry: Backend.Entry): Effect.Effect<void, BackendError | CodecError> =>
      Effect.async(
        (resume) => write(key, entry, (failure) => resume(failure === undefined ? Effect.void : Effect.fail(failure))),
        waitingOn()
      )

    const setLeased = (key: string, token: string) => (entry: Backend.Entry) =>
      Effect.async<boolean, BackendError | CodecError>(
        (resume) =>
          write(
            key,
            entry,
            (failure, stored) => resume(failure === undefined ? Effect.succeed(stored === true) : Effect.fail(failure)),
            token
          ),
        waitingOn()
      )

    const live = (expiresAt: string | null, at: number) =>
      expiresAt !== null && (expiresAt === "" || Number(expiresAt) > at)

    const remove = (key: string) =>
      Effect.suspend(() => {
        const bucket = keys.bucketOf(key)
        const at = now()
        return Effect.map(
          attempt("delete", () =>
            Scripts.run(client, Scripts.remove, [keys.entry(key, bucket), keys.lease(key, bucket)], [
              channel,
              announce(bucket, `"k":[${JSON.stringify(key)}]`)
            ])),
          (expiresAt) => live(expiresAt as string | null, at)
        )
      })

    /** One `MGET` per bucket (a single one on a single server), answers in the order asked. */
    const getMany = (wanted: ReadonlyArray<string>) =>
      Effect.suspend(() => {
        const groups = new Map<number, Array<number>>()
        wanted.forEach((key, i) => {
          const bucket = keys.bucketOf(key)
          const group = groups.get(bucket)
          if (group === undefined) groups.set(bucket, [i])
          else group.push(i)
        })
        const found = new Array<Option.Option<Backend.Entry>>(wanted.length)
        return Effect.as(
          Effect.forEach(groups, ([bucket, indices]) =>
            Effect.flatMap(
              attempt("getMany", () => client.mget(indices.map((i) => keys.entry(wanted[i], bucket)))),
              (payloads) => {
                let failure: BackendError | CodecError | undefined
                indices.forEach((index, j) =>
                  readReply(
                    (entry, error) => {
                      found[index] = Option.fromNullable(entry)
                      failure ??= error
                    },
                    wanted[index],
                    payloads[j]
                  )
                )
                return failure === undefined ? Effect.void : Effect.fail(failure)
              }
            ), { concurrency: "unbounded", discard: true }),
          found
        )
      })

    const store = Backend.makeStore({
      get,
      getCallback: read,
      setCallback: write,
      getMany,
      // Issued together, the single-key commands leave in one auto-pipelined write.
      setMany: (entries) =>
        Effect.forEach(entries, ([key, entry]) => set(key, entry), { concurrency: "unbounded", discard: true }),
      deleteMany: (removed) =>
        Effect.map(
          Effect.forEach(removed, remove, { concurrency: "unbounded" }),
          (results) => results.filter(Boolean).length
        ),
      has: (key) =>
        Effect.map(
          attempt("has", () => client.getrange(keys.entry(key), 0, 31)),
          (header) => Entry.isLive(header, now())
        ),
      set,
      delete: remove,
      invalidateTag: (tag) =>
        Effect.suspend(() => {
          const at = now()
          return Effect.map(
            Effect.forEach(buckets, (bucket) =>
              attempt("invalidateTag", () =>
                Scripts.run(client, Scripts.invalidateTag, [keys.tagSet(tag, bucket)], [
                  tag,
                  at,
                  channel,
                  announce(bucket, `"t":${JSON.stringify(tag)}`)
                ])), { concurrency: "unbounded" }),
            (counts) =>
              counts.reduce((sum: number, n) => sum + Number(n), 0)
          )
        }),
      clear: Effect.gen(function*() {
        yield* scanEach("flush", keys.patterns.t, (found) => unlink("flush", found))
        yield* scanEach("flush", keys.patterns.k, (found) => unlink("flush", found))
        // Fetches in flight do not write over the flush.
        yield* scanEach("flush", keys.patterns.l, (found) => unlink("flush", found))
        if (channel !== "") {
          yield* attempt(
            "flush",
            () => Scripts.run(client, Scripts.publish, [keys.lease("", 0)], [channel, announce(0, `"f":1`)])
          )
        }
      }),
      size: Effect.suspend(() => {
        const at = now()
        const seen = new Set<string>()
        let total = 0
        return Effect.map(
          scanEach("size", keys.patterns.k, (found) => {
            const fresh = found.filter((key) => !seen.has(key))
            for (const key of fresh) seen.add(key)
            return Effect.forEach(groupBySlot(keys, fresh), (group) =>
              Effect.map(
                attempt("size", () => Scripts.run(client, Scripts.countLive, group, [at])),
                (n) => {
                  total += Number(n)
                }
              ), { concurrency: "unbounded", discard: true })
          }),
          () => total
        )
      }),
      sweep: Effect.suspend(() => {
        const at = now()
        return scanEach("sweep", keys.patterns.t, (found) =>
          Effect.forEach(
            found,
            (tagSet) =>
              attempt("sweep", () => Scripts.run(client, Scripts.sweepTag, [tagSet], [keys.tagOf(tagSet), at])),
            { concurrency: 8, discard: true }
          ))
      }),
      invalidations: subscriber === undefined ? Stream.empty : inbox.stream,
      singleFlight: !connection.singleFlight ?
        undefined :
        <A, E, R>(
          key: string,
          fetch: (write: (entry: Backend.Entry) => Effect.Effect<boolean, CacheError>) => Effect.Effect<A, E, R>,
          timeoutMillis: number
        ) =>
          Effect.suspend(() => {
            const bucket = keys.bucketOf(key)
            const lease = keys.lease(key, bucket)
            const token = randomBytes(8).toString("hex")
            const deadline = Date.now() + timeoutMillis
            const released = channel === "" ? "" : JSON.stringify({ p: id, b: bucket, r: key })
            const release = Effect.ignore(
              attempt("singleFlight", () => Scripts.run(client, Scripts.release, [lease], [token, channel, released]))
            )
            const lead = Effect.ensuring(fetch(setLeased(key, token)), release)
            const acquire = attempt("singleFlight", () => client.set(lease, token, "PX", timeoutMillis, "NX"))
            const waitFor = (millis: number) =>
              Effect.async<void>((resume) => {
                let set = waiters.get(key)
                if (set === undefined) {
                  set = new Set()
                  waiters.set(key, set)
                }
                let resumed = false
                const done = () => {
                  if (resumed) return
                  resumed = true
                  resume(Effect.void)
                }
                set.add(done)
                const timer = setTimeout(done, millis)
                return Effect.sync(() => {
                  clearTimeout(timer)
                  set.delete(done)
                  if (set.size === 0) waiters.delete(key)
                })
              })
            /** The entry, with data that no longer decodes read as a miss (the fetch replaces it). */
            const current = Effect.catchTag(get(key), "CodecError", () => Effect.succeed(Option.none()))
            const wait: Effect.Effect<A, E | CacheError | FetchTimeout, R> = Effect.flatMap(current, (entry) => {
              if (Option.isSome(entry)) return Effect.succeed(entry.value.value as A)
              const left = deadline - Date.now()
              if (left <= 0) return Effect.fail(new FetchTimeout({ key, timeout: timeoutMillis }))
              return Effect.zipRight(waitFor(Math.min(left, pollMillis)), retry)
            })
            // Whoever holds the lease, even won at once, reads before fetching: another process may
            // have fetched, stored and released the key since this one missed it.
            const retry: Effect.Effect<A, E | CacheError | FetchTimeout, R> = Effect.flatMap(
              acquire,
              (won) =>
                won === "OK"
                  ? Effect.flatMap(
                    current,
                    (entry) => Option.isSome(entry) ? Effect.as(release, entry.value.value as A) : lead
                  )
                  : wait
            )
            return retry
          })
    })
    return store
  })
