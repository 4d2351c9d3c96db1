/**
 * Per-peer batching of key operations. Operations that reach a peer queue in the same turn of the
 * event loop leave as one batch on the node's data lane (up to `maxBatch` operations and
 * `maxBatchBytes` of entries each, at most half a frame; an entry larger than that leaves alone, and
 * writers refuse one that no frame holds), so throughput grows with concurrency instead of being
 * bound by one round trip per key.
 *
 * Concurrency: the queue of a peer is flushed on `setImmediate`, after the I/O callbacks of the
 * turn, so every fiber that ran in that turn has had its chance to join. At most `maxInflight`
 * flushes per peer are on the wire (each one request per request time); operations that arrive
 * meanwhile wait for one to come back and leave together (Nagle's idea), so under load batches grow
 * instead of the number of small writes.
 * A caller interrupted while it waits leaves its operation in the batch; the answer is dropped.
 *
 * Cost: an operation is a plain record in a queue; no fiber, `Deferred` or Schema work per
 * operation, and no fiber per batch: the lane's callback resolves every waiter of the batch.
 * `submit` sends one operation to several peers (a write and its replicas) behind a single waiter,
 * and enqueues at once, so the caller can apply its own copy while the batches are on the wire.
 *
 * A peer whose reply would not fit in a frame answers the operations it left out `Later`; they
 * leave again first, in the next batch.
 *
 * Failure: a batch that fails (peer unreachable, connection lost, even a defect of the transport)
 * fails every operation in it with a `NodeUnavailable`; the caller decides whether another holder
 * can answer.
 */
import { NodeUnavailable } from "@vela/core"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type { ClusterNode } from "../ClusterNode.js"
import type { Op, OpResult } from "./protocol.js"
import { wireBytes } from "./wire.js"

/** Whoever waits for the answers of one operation sent to one or more peers. */
interface Waiter {
  /** The answer of the i-th peer, or the error of its batch. */
  readonly results: Array<OpResult | NodeUnavailable | undefined>
  remaining: number
  readonly failFast: boolean
  done: boolean
  /** Called once: every answer, or the first failure of a `failFast` waiter. */
  resume: ((answer: ReadonlyArray<OpResult> | NodeUnavailable) => void) | undefined
}

interface Pending {
  readonly op: Op
  readonly waiter: Waiter
  readonly index: number
}

export interface Batcher {
  /** `op` on `peer`, batched with the other operations to that peer. */
  readonly run: (peer: string, now: number, op: Op) => Effect.Effect<OpResult, NodeUnavailable>
  /** `run` for callers without the runtime: `done` is called once with the answer. */
  readonly send: (peer: string, now: number, op: Op, done: (answer: OpResult | NodeUnavailable) => void) => void
  /**
   * Enqueues `op` for every peer now, and returns what waits for their answers, in the order of
   * `peers`. With `failFast`, the first peer that cannot be reached fails it at once; without, it
   * waits for every peer and reports the unreachable ones as `NodeUnavailable` in the results.
   */
  readonly submit: (
    peers: ReadonlyArray<string>,
    now: number,
    op: Op,
    failFast: boolean
  ) => Effect.Effect<ReadonlyArray<OpResult | NodeUnavailable>, NodeUnavailable>
}

interface Queue {
  readonly now: number
  items: Array<Pending>
}

/** The requests sent to a peer by one flush, counted as one against `maxInflight`. */
interface Flight {
  requests: number
}

interface Peer {
  /** One queue per request time: operations of caches on different clocks do not share a batch. */
  queues: Array<Queue>
  queued: number
  inflight: number
  scheduled: boolean
}

export const make = (
  node: ClusterNode["Type"],
  maxBatch = 512,
  maxInflight = 1
): Batcher => {
  const peers = new Map<string, Peer>()
  const maxBatchBytes = Math.min(512 * 1024, node.maxFrameBytes / 2)

  const finish = (waiter: Waiter, answer: ReadonlyArray<OpResult> | NodeUnavailable) => {
    waiter.done = true
    const resume = waiter.resume
    if (resume !== undefined) {
      waiter.resume = undefined
      resume(answer)
    }
  }

  const settle = (pending: Pending, result: OpResult | NodeUnavailable) => {
    const waiter = pending.waiter
    if (waiter.done) return
    waiter.results[pending.index] = result
    if (result instanceof NodeUnavailable && waiter.failFast) return finish(waiter, result)
    if (--waiter.remaining === 0) finish(waiter, waiter.results as Array<OpResult>)
  }

  const schedule = (peer: string, state: Peer) => {
    if (state.scheduled || state.queued === 0 || state.inflight >= maxInflight) return
    state.scheduled = true
    setImmediate(flush, peer)
  }

  const send = (peer: string, state: Peer, now: number, batch: ReadonlyArray<Pending>, flight: Flight) => {
    flight.requests++
    const ops = new Array<Op>(batch.length)
    for (let i = 0; i < batch.length; i++) ops[i] = batch[i].op
    node.batch(peer, now, ops, (answer) => {
      land(peer, state, flight)
      if (answer instanceof NodeUnavailable) {
        for (const pending of batch) settle(pending, answer)
        return
      }
      // Operations the peer left for later (its reply was full) go first in the next batch, in order.
      const again: Array<Pending> = []
      for (let i = 0; i < batch.length; i++) {
        if (answer[i]._tag === "Later") again.push(batch[i])
        else settle(batch[i], answer[i])
      }
      if (again.length > 0) requeue(peer, state, now, again)
    })
  }

  /** One of the requests of `flight` came back: once all have, the flight no longer counts. */
  const land = (peer: string, state: Peer, flight: Flight) => {
    if (--flight.requests > 0) return
    state.inflight--
    schedule(peer, state)
  }

  // Everything queued leaves at once, as one of the `maxInflight` flights: a request per request
  // time (and per `maxBatch` operations or `maxBatchBytes`). One request per flight left the
  // operations of every later millisecond waiting a round trip each.
  const flush = (peer: string) => {
    const state = peers.get(peer)
    if (state === undefined) return
    state.scheduled = false
    if (state.inflight >= maxInflight || state.queued === 0) return
    state.inflight++
    // Held until every request is sent, so that one answered at once does not end the flight early.
    const flight: Flight = { requests: 1 }
    while (state.queued > 0) {
      const queue = state.queues[0]
      // At most `maxBatch` operations and `maxBatchBytes`, or one operation alone.
      let count = 0
      let bytes = 0
      while (count < queue.items.length && count < maxBatch) {
        const next = weight(queue.items[count].op)
        if (count > 0 && bytes + next > maxBatchBytes) break
        bytes += next
        count++
      }
      const batch = count === queue.items.length ? queue.items : queue.items.splice(0, count)
      if (batch === queue.items) state.queues.shift()
      state.queued -= batch.length
      send(peer, state, queue.now, batch, flight)
    }
    land(peer, state, flight)
  }

  const requeue = (peer: string, state: Peer, now: number, items: Array<Pending>) => {
    state.queues.unshift({ now, items })
    state.queued += items.length
    schedule(peer, state)
  }

  const enqueue = (peer: string, now: number, pending: Pending) => {
    let state = peers.get(peer)
    if (state === undefined) peers.set(peer, state = { queues: [], queued: 0, inflight: 0, scheduled: false })
    let queue: Queue | undefined
    for (const q of state.queues) {
      if (q.now === now) {
        queue = q
        break
      }
    }
    if (queue === undefined) state.queues.push(queue = { now, items: [] })
    queue.items.push(pending)
    state.queued++
    schedule(peer, state)
  }

  const toExit = (answer: ReadonlyArray<OpResult> | NodeUnavailable) =>
    answer instanceof NodeUnavailable ? Exit.fail(answer) : Exit.succeed(answer)
  const wait = (waiter: Waiter) =>
    Effect.async<ReadonlyArray<OpResult>, NodeUnavailable>((resume) => {
      if (waiter.done) {
        const failed = waiter.failFast ? waiter.results.find((r) => r instanceof NodeUnavailable) : undefined
        resume(toExit(failed instanceof NodeUnavailable ? failed : waiter.results as Array<OpResult>))
      } else {
        waiter.resume = (answer) => resume(toExit(answer))
      }
    })

  const makeWaiter = (count: number, failFast: boolean): Waiter => ({
    results: new Array(count),
    remaining: count,
    failFast,
    done: count === 0,
    resume: undefined
  })

  const sendOne: Batcher["send"] = (peer, now, op, done) => {
    const waiter = makeWaiter(1, true)
    waiter.resume = (answer) => done(answer instanceof NodeUnavailable ? answer : answer[0])
    enqueue(peer, now, { op, waiter, index: 0 })
  }

  return {
    run: (peer, now, op) =>
      Effect.async((resume) =>
        sendOne(
          peer,
          now,
          op,
          (answer) => resume(answer instanceof NodeUnavailable ? Effect.fail(answer) : Effect.succeed(answer))
        )
      ),
    send: sendOne,
    submit: (targets, now, op, failFast) => {
      const waiter = makeWaiter(targets.length, failFast)
      for (let i = 0; i < targets.length; i++) enqueue(targets[i], now, { op, waiter, index: i })
      return wait(waiter)
    }
  }
}

/** About how many bytes `op` adds to a frame. */
const weight = (op: Op): number =>
  op._tag === "Set" || op._tag === "ReplicaPut"
    ? 64 + wireBytes(op.ns, op.key, op.entry)
    : op._tag === "CompareAndSet" && op.next !== null
    ? 64 + wireBytes(op.ns, op.key, op.next)
    : 64 + op.ns.length
