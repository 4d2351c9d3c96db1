/**
 * The wire protocol between cluster nodes: one `RpcGroup` with Schema payloads, carried by
 * `@effect/rpc` over TCP in length-prefixed MessagePack frames (`frames.ts`). Handshake first (`Hello`, `Authenticate`), then
 * membership (`Gossip`, `Leave`) and the cache operations that are not key operations, each of
 * which names its namespace. Key operations (`Op`) travel in batches on the data lane (`lane.ts`).
 */
import { Rpc, RpcGroup } from "@effect/rpc"
import * as Schema from "effect/Schema"
import { compile } from "./guard.js"

/** A request from a connection that has not proved the shared secret. */
export class Unauthorized extends Schema.TaggedError<Unauthorized>()("Unauthorized", {
  reason: Schema.String
}) {}

/** The peer could not serve the request (no topology yet, a store failure). */
export class RemoteFailure extends Schema.TaggedError<RemoteFailure>()("RemoteFailure", {
  message: Schema.String,
  cause: Schema.Defect
}) {}

/** A node as the others know it; `incarnation` grows when a process restarts at the same address. */
export const MemberRecord = Schema.Struct({ id: Schema.String, incarnation: Schema.Number })
export type MemberRecord = typeof MemberRecord.Type

/** An entry on the wire: its value is text encoded with the namespace's codec. */
export const WireEntry = Schema.Struct({
  value: Schema.String,
  expiresAt: Schema.NullOr(Schema.Number),
  tags: Schema.Array(Schema.String),
  version: Schema.Number
})
export type WireEntry = typeof WireEntry.Type

/** The stamp of a write: its version, then the node that made it. */
export const Stamp = Schema.Struct({ version: Schema.Number, origin: Schema.String })

/** One key operation of a batch. `ns` is the cache's namespace. */
export const Op = Schema.Union(
  /** `watch`: the reader keeps the value in a near cache; tell it when the key changes. */
  Schema.TaggedStruct("Get", { ns: Schema.String, key: Schema.String, watch: Schema.Boolean }),
  Schema.TaggedStruct("Has", { ns: Schema.String, key: Schema.String }),
  /**
   * Partitioned: a write (or a handoff copy) of the put `entry.version` made on node `origin`; a
   * holder applies it only over an older stamp. `watch`: the writer keeps the value in a near cache.
   */
  Schema.TaggedStruct("Set", {
    ns: Schema.String,
    key: Schema.String,
    entry: WireEntry,
    origin: Schema.String,
    watch: Schema.Boolean
  }),
  /** Partitioned: a delete, stamped as a `Set` is; it leaves a tombstone, so older writes arriving later stay out. */
  Schema.TaggedStruct("Delete", {
    ns: Schema.String,
    key: Schema.String,
    version: Schema.Number,
    origin: Schema.String
  }),
  /**
   * Partitioned, to the key's owner (others answer `Unavailable`), which orders these with the
   * key's writes and sends what they write or delete on to the key's replicas, stamped afresh, as
   * a put or a delete would: the live entry with its stamp (`Stamped`), or `Missing`. `view`, on
   * each of these: the requester's members, hashed; an owner that sees others refuses them.
   */
  Schema.TaggedStruct("ReadForUpdate", { ns: Schema.String, key: Schema.String, view: Schema.Number }),
  /**
   * Partitioned, to the owner: when the key still shows the write stamped `expected` (`null`: no
   * live entry), writes `next` (`null`: deletes it) and answers its stamp (`Written`); otherwise
   * answers what the key shows (`Stamped` or `Missing`). `next.version` is the owner's to give.
   */
  Schema.TaggedStruct("CompareAndSet", {
    ns: Schema.String,
    key: Schema.String,
    expected: Schema.NullOr(Stamp),
    next: Schema.NullOr(WireEntry),
    watch: Schema.Boolean,
    view: Schema.Number
  }),
  /** Partitioned, to the owner: removes the live entry and answers it (`Found`), or `Missing`. */
  Schema.TaggedStruct("Take", { ns: Schema.String, key: Schema.String, view: Schema.Number }),
  /**
   * Partitioned, to the owner, for a cache whose codec keeps numbers as their JSON text
   * (`Codec.numbersAsJson`): adds `by` to the number the key holds (absent: 0, written with `expiresAt` and `tags`) and
   * answers the sum (`Sum`), or `Bool` false when the key holds no number or the sum is not finite.
   */
  Schema.TaggedStruct("Increment", {
    ns: Schema.String,
    key: Schema.String,
    by: Schema.Number,
    expiresAt: Schema.NullOr(Schema.Number),
    tags: Schema.Array(Schema.String),
    view: Schema.Number
  }),
  /** Partitioned, to the owner: gives the live entry this `expiresAt` (`Bool`: whether one was live). */
  Schema.TaggedStruct("Touch", {
    ns: Schema.String,
    key: Schema.String,
    expiresAt: Schema.NullOr(Schema.Number),
    view: Schema.Number
  }),
  /**
   * Partitioned, to any holder: what it has of the key, with the stamp (`Stamped`, or `Missing`
   * with a recent delete's), for an owner that gained the key lately and may not have it yet.
   */
  Schema.TaggedStruct("Peek", { ns: Schema.String, key: Schema.String }),
  /** Replicated: a put, with the node that made it (its version and `origin` order it). */
  Schema.TaggedStruct("ReplicaPut", { ns: Schema.String, key: Schema.String, entry: WireEntry, origin: Schema.String }),
  /** Replicated: a delete, kept as a tombstone at its stamp. */
  Schema.TaggedStruct("ReplicaDelete", {
    ns: Schema.String,
    key: Schema.String,
    version: Schema.Number,
    origin: Schema.String
  }),
  /** Replicated: entries carrying `tag` with an older stamp are gone. */
  Schema.TaggedStruct("ReplicaTag", {
    ns: Schema.String,
    tag: Schema.String,
    version: Schema.Number,
    origin: Schema.String
  }),
  /** Replicated: every entry with an older stamp is gone. */
  Schema.TaggedStruct("ReplicaFlush", { ns: Schema.String, version: Schema.Number, origin: Schema.String })
)
export type Op = typeof Op.Type

/** A node's state of one namespace in brief, for anti-entropy: per-bucket hashes and counts, and its floors. */
export const SpaceDigest = Schema.Struct({
  ns: Schema.String,
  hashes: Schema.Array(Schema.Number),
  counts: Schema.Array(Schema.Number),
  flush: Schema.NullOr(Stamp),
  tags: Schema.Array(Schema.Struct({ tag: Schema.String, version: Schema.Number, origin: Schema.String }))
})
export type SpaceDigest = typeof SpaceDigest.Type

/** One key of a pulled bucket: its stamp, and its entry (`null`: a tombstone). */
export const ReplicaItem = Schema.Struct({
  key: Schema.String,
  version: Schema.Number,
  origin: Schema.String,
  entry: Schema.NullOr(WireEntry)
})
export type ReplicaItem = typeof ReplicaItem.Type

/**
 * Replicated: what is known in `buckets` of `ns` (tombstones included), in key order within a
 * bucket, starting after key `after` of the first bucket.
 */
export const PullRequest = Schema.Struct({
  ns: Schema.String,
  buckets: Schema.Array(Schema.Number),
  after: Schema.NullOr(Schema.String)
})
export type PullRequest = typeof PullRequest.Type

/**
 * As many items as one reply holds; `more`, when it could not hold them all: where the next pull
 * starts (`bucket`, one of those asked for, after its key `after`).
 */
export const PullAnswer = Schema.Struct({
  items: Schema.Array(ReplicaItem),
  more: Schema.NullOr(Schema.Struct({ bucket: Schema.Number, after: Schema.NullOr(Schema.String) }))
})
export type PullAnswer = typeof PullAnswer.Type

/**
 * The outcome of one `Op`, in the order of the batch. `Later`: not run, the reply was full (a frame
 * would not hold it); the requester sends the operation again.
 */
export const OpResult = Schema.Union(
  Schema.TaggedStruct("Found", { entry: WireEntry }),
  /** `deleted`: the stamp of a recent delete of the key on the holder that answers. */
  Schema.TaggedStruct("Missing", {
    deleted: Schema.optional(Schema.Struct({ version: Schema.Number, origin: Schema.String }))
  }),
  Schema.TaggedStruct("Bool", { value: Schema.Boolean }),
  /** An entry with the stamp of its write (`entry.version`, `origin`). */
  Schema.TaggedStruct("Stamped", { entry: WireEntry, origin: Schema.String }),
  /** What an `Increment` added up to. */
  Schema.TaggedStruct("Sum", { value: Schema.Number }),
  /** The stamp of the write an atomic operation made. */
  Schema.TaggedStruct("Written", { version: Schema.Number, origin: Schema.String }),
  /**
   * An atomic operation that reached a node not owning its key (not `applied`), or whose write the
   * owner applied but could not copy to a replica (`node`): the requester fails with `NodeUnavailable`.
   */
  Schema.TaggedStruct("Unavailable", { node: Schema.String, message: Schema.String, applied: Schema.Boolean }),
  Schema.TaggedStruct("Failed", { message: Schema.String }),
  Schema.TaggedStruct("Later", {})
)
export type OpResult = typeof OpResult.Type

/** The operations of one batch, in the order they run. */
export const Ops = Schema.Array(Op)
/** The results of one batch, in the order of its operations. */
export const OpResults = Schema.Array(OpResult)

/*
 * The data lane's frames (`lane.ts`): the handshake the RPC connection makes with `Hello` and
 * `Authenticate`, as tuples, then batches. Each is checked against its Schema as it arrives, by a
 * guard compiled from the Schema (`guard.ts`: what `Schema.is` accepts, at a fraction of its cost).
 */
/** The server's answer to the client's nonce: `[id, nonce, proof]`. */
export const LaneChallenge = Schema.Tuple(Schema.String, Schema.String, Schema.String)
/** The client's proof: `[member, proof]`. */
export const LaneProof = Schema.Tuple(MemberRecord, Schema.String)
/** A batch: `[request id, now, ops]`. */
export const LaneRequest = Schema.Tuple(Schema.Number, Schema.Number, Ops)

export const isLaneChallenge = compile(LaneChallenge)
export const isLaneProof = compile(LaneProof)
export const isLaneRequest = compile(LaneRequest)
export const isOpResults = compile(OpResults)

export const Change = Schema.Union(
  Schema.TaggedStruct("Keys", { keys: Schema.Array(Schema.String) }),
  Schema.TaggedStruct("Tag", { tag: Schema.String }),
  Schema.TaggedStruct("Flush", {})
)
export type Change = typeof Change.Type

/**
 * Partitioned: removes the entries tagged `tag` written before the stamp (`version`, `origin`), and
 * keeps such writes out for a while after; answers the keys it removed. `members`: the members the
 * request reaches; one that sees others (a member that just joined) passes it on to them.
 */
export const InvalidateTagRequest = Schema.Struct({
  now: Schema.Number,
  ns: Schema.String,
  tag: Schema.String,
  version: Schema.Number,
  origin: Schema.String,
  members: Schema.Array(Schema.String)
})
export type InvalidateTagRequest = typeof InvalidateTagRequest.Type

/**
 * Partitioned: removes every entry of `ns` written before the stamp, and keeps such writes out for a
 * while after. `members` as for `InvalidateTagRequest`.
 */
export const ClearRequest = Schema.Struct({
  ns: Schema.String,
  version: Schema.Number,
  origin: Schema.String,
  members: Schema.Array(Schema.String)
})
export type ClearRequest = typeof ClearRequest.Type

/**
 * Partitioned `size`, counted once on the requester's ring of `members`: each live key is counted
 * by its first holder not in `skip` (members that cannot be reached). A key whose first such holder
 * is in `fresh` (joined lately: its keys may still be on their way) is listed instead, by its
 * holders and by its holders outside `fresh` (those before the join); the requester counts the union.
 */
export const SizeRequest = Schema.Struct({
  now: Schema.Number,
  ns: Schema.String,
  members: Schema.Array(Schema.String),
  skip: Schema.Array(Schema.String),
  fresh: Schema.Array(Schema.String)
})
export type SizeRequest = typeof SizeRequest.Type
export const SizeAnswer = Schema.Struct({ count: Schema.Number, keys: Schema.Array(Schema.String) })
export type SizeAnswer = typeof SizeAnswer.Type

export const LeaseOutcome = Schema.Literal("won", "done", "timeout")
export type LeaseOutcome = typeof LeaseOutcome.Type

export class Rpcs extends RpcGroup.make(
  Rpc.make("Hello", {
    payload: { nonce: Schema.String },
    success: Schema.Struct({ id: Schema.String, nonce: Schema.String, proof: Schema.String })
  }),
  Rpc.make("Authenticate", {
    payload: { member: MemberRecord, proof: Schema.String },
    error: Unauthorized
  }),
  Rpc.make("Gossip", {
    payload: { from: MemberRecord, members: Schema.Array(MemberRecord) },
    success: Schema.Array(MemberRecord),
    error: Unauthorized
  }),
  Rpc.make("Leave", { payload: { member: MemberRecord }, error: Unauthorized }),
  /** The counters of the caches named `ns` on the node, added up (`Stats` without `hitRate`). */
  Rpc.make("Stats", {
    payload: { ns: Schema.String },
    success: Schema.Record({ key: Schema.String, value: Schema.Number }),
    error: Unauthorized
  }),
  Rpc.make("InvalidateTag", {
    payload: InvalidateTagRequest,
    success: Schema.Array(Schema.String),
    error: Schema.Union(Unauthorized, RemoteFailure)
  }),
  Rpc.make("Clear", { payload: ClearRequest, error: Schema.Union(Unauthorized, RemoteFailure) }),
  Rpc.make("Size", {
    payload: SizeRequest,
    success: SizeAnswer,
    error: Schema.Union(Unauthorized, RemoteFailure)
  }),
  Rpc.make("Lease", {
    payload: { ns: Schema.String, key: Schema.String, timeout: Schema.Number },
    success: LeaseOutcome,
    error: Schema.Union(Unauthorized, RemoteFailure)
  }),
  Rpc.make("Release", {
    payload: { ns: Schema.String, key: Schema.String },
    error: Schema.Union(Unauthorized, RemoteFailure)
  }),
  Rpc.make("Invalidate", {
    payload: { ns: Schema.String, change: Change },
    error: Schema.Union(Unauthorized, RemoteFailure)
  }),
  Rpc.make("Digest", {
    payload: {},
    success: Schema.Array(SpaceDigest),
    error: Schema.Union(Unauthorized, RemoteFailure)
  }),
  Rpc.make("Pull", {
    payload: PullRequest,
    success: PullAnswer,
    error: Schema.Union(Unauthorized, RemoteFailure)
  })
) {}
