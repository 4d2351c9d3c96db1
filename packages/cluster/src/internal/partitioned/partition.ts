/** What every part of the Partitioned topology on this node shares. */
import type * as Effect from "effect/Effect"
import type * as Fiber from "effect/Fiber"
import type * as Runtime from "effect/Runtime"
import type { ClusterNode } from "../../ClusterNode.js"
import type { Batcher } from "../batcher.js"
import type { Spaces } from "../spaces.js"
import type { Ring } from "./ring.js"
import type { Space } from "./space.js"

export interface Partition {
  /** This node's id. */
  readonly self: string
  readonly node: ClusterNode["Type"]
  readonly batcher: Batcher
  /**
   * The owner's own requests while it serves an atomic operation (copies to the replicas, reads of
   * a key it gained lately): their batches hold only operations served without waiting on another
   * node, so no reply waits on a batch that waits on it (the `batcher`'s may carry atomic ones).
   */
  readonly leaf: Batcher
  readonly ring: Ring
  readonly spaces: Spaces<Space>
  /** Copies of each key beyond its owner. */
  readonly replicas: number
  /** Holders of each key: the owner and its replicas. */
  readonly copies: number
  /** `handoffGrace`, in milliseconds. */
  readonly grace: number
  /** Runs an effect on the live clock, outside the caller's fiber. */
  readonly runFork: <A, E>(effect: Effect.Effect<A, E>, options?: Runtime.RunForkOptions) => Fiber.RuntimeFiber<A, E>
}
