/**
 * Per-peer batching of key operations. Operations that reach a peer queue in the same turn of the
 * event loop leave as one `Batch` RPC (up to `maxBatch` operations each), so throughput grows with
 * concurrency instead of being bound by one round trip per key.
 *
 * Concurrency: the queue of a peer is flushed on `setImmediate`, after the I/O callbacks of the
 * turn, so every fiber that ran in that turn has had its chance to join. Several batches to one
 * peer may be in flight at once. A caller interrupted while it waits leaves its operation in the
 * batch; the answer is dropped.
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

export const make = (node: ClusterNode["Type"], runtime: Runtime.Runtime<never>, maxBatch = 512): Batcher => {
  const queues = new Map<string, Array<Pending>>()
  const runFork = RuntimeModule.runFork(runtime)

  const send = (peer: string, now: number, batch: ReadonlyArray<Pending>) =>
    runFork(
      Effect.flatMap(
        Effect.exit(node.call(peer, (client) => client.Batch({ now, ops: batch.map((p) => p.op) }))),
        (exit) =>
          Effect.sync(() => {
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

  const flush = (peer: string) => {
    const queue = queues.get(peer)
    queues.delete(peer)
    if (queue === undefined) return
    // One `now` per RPC: operations of caches on different clocks do not share a batch.
    const byNow = new Map<number, Array<Pending>>()
    for (const pending of queue) {
      let group = byNow.get(pending.now)
      if (group === undefined) byNow.set(pending.now, group = [])
      group.push(pending)
      if (group.length === maxBatch) {
        send(peer, pending.now, group)
        byNow.delete(pending.now)
      }
    }
    for (const [now, group] of byNow) send(peer, now, group)
  }

  return {
    run: (peer, now, op) =>
      Effect.async<OpResult, NodeUnavailable>((resume) => {
        let queue = queues.get(peer)
        if (queue === undefined) {
          queues.set(peer, queue = [])
          setImmediate(flush, peer)
        }
        queue.push({ now, op, resume })
      })
  }
}
