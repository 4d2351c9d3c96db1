/**
 * What every part of one cache's store shares: the connection it came from, the namespace's key
 * layout and bus channel, the cache's clock and codec, and the way a command becomes an `Effect`.
 */
import type { Backend } from "@vela/core"
import { BackendError } from "@vela/core"
import * as Effect from "effect/Effect"
import * as FiberId from "effect/FiberId"
import type { Cluster, Redis } from "ioredis"
import { randomBytes } from "node:crypto"
import type { Connection } from "./connection.js"
import { groupBySlot, Keyspace } from "./keys.js"

/** One opened namespace: shared by the reads, writes, tags, leases and scans of its store. */
export interface Namespace {
  readonly connection: Connection
  readonly client: Redis | Cluster
  readonly keys: Keyspace
  readonly codec: Backend.OpenOptions["codec"]
  /** The cache's clock, in epoch milliseconds. */
  readonly now: () => number
  /** This store's publisher id on the bus. */
  readonly id: string
  /** The bus channel, `""` when the bus is off. */
  readonly channel: string
  /** The next message of `bucket`; built when its command is sent, so numbers follow send order. */
  readonly announce: (bucket: number, body: string) => string
  /** Every bucket's number, for the commands that visit each one. */
  readonly buckets: ReadonlyArray<number>
}

export const make = (connection: Connection, options: Backend.OpenOptions): Namespace => {
  const { clock } = options
  const keys = new Keyspace(connection.prefix, options.namespace, connection.buckets)
  const id = randomBytes(8).toString("hex")
  const channel = connection.subscriber === undefined ? "" : keys.channel
  const sequence = new Array<number>(connection.buckets).fill(0)
  return {
    connection,
    client: connection.client,
    keys,
    codec: options.codec,
    now: () => clock.unsafeCurrentTimeMillis(),
    id,
    channel,
    announce: (bucket, body) => channel === "" ? "" : `{"p":"${id}","b":${bucket},"s":${++sequence[bucket]},${body}}`,
    buckets: Array.from({ length: connection.buckets }, (_, b) => b)
  }
}

/**
 * The `PX` argument of a write of an entry expiring at `expiresAt` (`""`: no expiry): relative, so
 * Redis expires it for every process alike, plus the connection's grace.
 */
export const pxOf = (ns: Namespace, expiresAt: number | null): string =>
  expiresAt === null ? "" : String(Math.max(1, Math.ceil(expiresAt - ns.now())) + ns.connection.expiryGrace)

/**
 * A fresh id for each command a fiber waits on. A fiber suspended on one command then looks
 * different from one suspended on the next, so `TestClock.adjust`, which waits until every fiber
 * stays suspended, does not mistake a fiber making progress through commands for an idle one.
 */
let commands = 0
export const waitingOn = () => FiberId.make(++commands, 0)

/** `run` as an `Effect` that waits on it, its failure a `BackendError` naming `operation`. */
export const attempt = <A>(ns: Namespace, operation: string, run: () => Promise<A>): Effect.Effect<A, BackendError> =>
  Effect.async((resume) => {
    run().then(
      (a) => resume(Effect.succeed(a)),
      (cause) => resume(Effect.fail(new BackendError({ backend: ns.connection.name, operation, cause })))
    )
  }, waitingOn())

const scanCount = 1_000

/** Visits every key matching `pattern`, one `SCAN` batch at a time, on every node. */
export const scanEach = (
  ns: Namespace,
  operation: string,
  pattern: string,
  f: (found: ReadonlyArray<string>) => Effect.Effect<void, BackendError>
): Effect.Effect<void, BackendError> =>
  Effect.forEach(ns.connection.masters(), (node) => {
    const loop = (cursor: string): Effect.Effect<void, BackendError> =>
      Effect.flatMap(
        attempt(ns, operation, () => node.scan(cursor, "MATCH", pattern, "COUNT", scanCount)),
        ([next, found]) =>
          Effect.zipRight(found.length === 0 ? Effect.void : f(found), next === "0" ? Effect.void : loop(next))
      )
    return loop("0")
  }, { discard: true })

/** Unlinks `found`, one `UNLINK` per slot. */
export const unlink = (
  ns: Namespace,
  operation: string,
  found: ReadonlyArray<string>
): Effect.Effect<void, BackendError> =>
  Effect.forEach(groupBySlot(ns.keys, found), (group) => attempt(ns, operation, () => ns.client.unlink(...group)), {
    concurrency: "unbounded",
    discard: true
  })
