/** What every part of the Replicated topology on this node shares. */
import type { ClusterNode } from "../../ClusterNode.js"
import type { Batcher } from "../batcher.js"
import type { Hlc, Stamp } from "../replica.js"
import type { Spaces } from "../spaces.js"
import type { Space } from "./space.js"

export interface Replication {
  /** This node's id. */
  readonly self: string
  readonly node: ClusterNode["Type"]
  readonly batcher: Batcher
  readonly spaces: Spaces<Space>
  /** Orders every write of this node after every write it has seen. */
  readonly hlc: Hlc
  /** `tombstoneTtl`, in milliseconds. */
  readonly tombstoneTtl: number
  /** `chunkSize`: entries per pull when copying from a peer. */
  readonly chunkSize: number
}

/** A new stamp of this node. */
export const stamp = ({ hlc, self }: Replication): Stamp => ({ version: hlc.next(), origin: self })

/** The live members but this node. */
export const peers = ({ node, self }: Replication): ReadonlyArray<string> =>
  node.currentMembers().filter((m) => m !== self)
