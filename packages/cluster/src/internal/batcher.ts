/**
 * Per-peer batching of key operations. Operations that reach a peer queue in the same turn of the
 * event loop leave as one `Batch` RPC (up to `maxBatch` operations each), so throughput grows with
 * concurrency instead of being bound by one round trip per key.
 *
 * Concurrency: the queue of a peer is flushed on `setImmediate`, after the I/O callbacks of the
 * turn, so every fiber that ran in that turn has had its chance to join. At most `maxInflight`
 * batches per peer are on the wire; operations that arrive meanwhile wait for one to come back and
 * leave together (Nagle's idea), so under load batches grow instead of the number of small writes.
 * A caller interrupted while it waits leaves its operation in the batch; the answer is dropped.
 * Failure: a batch that fails (peer unreachable, connection lost) fails every operation in it with
 * the same `NodeUnavailable`; the caller decides whether another holder can answer.
 */
import type { NodeUnavailable } from "@vela/core"
import type { Runtime } from "effect"
import { Effect, Exit, Runtime as RuntimeModule } from "effect"
import type { ClusterNode } from "../ClusterNode.js"
import type { Op, OpResult } from "./protocol.js"

interface Pending {
  readonly now: number
  readonly op: Op
  readonly resume: (result: Effect.Effect<OpResult, NodeUnavailable>) => void
}

export interface Batcher {
  readonly run: (peer: string, now: number, op: Op) => Effect.Effect<OpResult, NodeUnavailable>
}

interface Peer {
  queue: Array<Pending>
  inflight: number
  scheduled: boolean
}

export const make = (
  node: ClusterNode["Type"],
  runtime: Runtime.Runtime<never>,
  maxBatch = 512,
  maxInflight = 4
): Batcher => {
  const peers = new Map<string, Peer>()
  const runFork = RuntimeModule.runFork(runtime)

  const schedule = (peer: string, state: Peer) => {
    if (state.scheduled || state.queue.length === 0 || state.inflight >= maxInflight) return
    state.scheduled = true
    setImmediate(flush, peer)
  }

  const send = (peer: string, state: Peer, now: number, batch: ReadonlyArray<Pending>) => {
    state.inflight++
    runFork(
      Effect.flatMap(
        Effect.exit(node.call(peer, (client) => client.Batch({ now, ops: batch.map((p) => p.op) }))),
        (exit) =>
          Effect.sync(() => {
            state.inflight--
            schedule(peer, state)
            if (Exit.isSuccess(exit) && exit.value.length === batch.length) {
              for (let i = 0; i < batch.length; i++) batch[i].resume(Effect.succeed(exit.value[i]))
              return
            }
            const failure = Exit.isSuccess(exit)
              ? Effect.die(new Error(`peer ${peer} answered ${exit.value.length} of ${batch.length} operations`))
              : Effect.failCause(exit.cause)
            for (const pending of batch) pending.resume(failure as Effect.Effect<never, NodeUnavailable>)
          })
      )
    )
  }

  const flush = (peer: string) => {
    const state = peers.get(peer)
    if (state === undefined) return
    state.scheduled = false
    if (state.inflight >= maxInflight || state.queue.length === 0) return
    const queue = state.queue
    state.queue = []
    // One `now` per RPC: operations of caches on different clocks do not share a batch.
    const byNow = new Map<number, Array<Pending>>()
    for (const pending of queue) {
      let group = byNow.get(pending.now)
      if (group === undefined) byNow.set(pending.now, group = [])
      group.push(pending)
      if (group.length === maxBatch) {
        send(peer, state, pending.now, group)
        byNow.delete(pending.now)
      }
    }
    for (const [now, group] of byNow) send(peer, state, now, group)
  }

  return {
    run: (peer, now, op) =>
      Effect.async<OpResult, NodeUnavailable>((resume) => {
        let state = peers.get(peer)
        if (state === undefined) peers.set(peer, state = { queue: [], inflight: 0, scheduled: false })
        state.queue.push({ now, op, resume })
        schedule(peer, state)
      })
  }
}
