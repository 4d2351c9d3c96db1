import { assert, describe, it } from "@effect/vitest"
import { ClusterNode } from "@vela/cluster"
import type { Backend } from "@vela/core"
import { Codec, NearCache, NodeUnavailable, Topology } from "@vela/core"
import { openOptions } from "@vela/core/testing"
import { Context, Data, Effect, Equal, Layer, Option, Schema } from "effect"
import { pack } from "msgpackr"
import * as HashRing from "../src/HashRing.js"
import type { Op } from "../src/internal/protocol.js"
import type { Started } from "./utils.js"
import { cacheOn, cluster, connected, eventually, heldText, sendRaw, startPartitioned } from "./utils.js"

const ns = "atomic"
const open = (started: Started) => started.topology.open(openOptions(ns))
const created = { expiresAt: null, tags: [] } as const
const entry = (value: unknown, tags: ReadonlyArray<string> = []): Backend.Entry => ({
  value,
  expiresAt: null,
  tags,
  version: 0
})

/** What every node holds of `key`: its holders' copies, the same text on each. */
const copies = (nodes: ReadonlyArray<Started>, key: string) =>
  Effect.map(Effect.forEach(nodes, (n) => heldText(n, ns, key)), (held) => held.filter((t) => t !== null))

/** Keys each owned by a different node of `nodes`, `perNode` of each. */
const keysOwnedBy = (nodes: ReadonlyArray<Started>, perNode: number) => {
  const ring = HashRing.make(nodes.map((n) => n.node.id), { virtualNodes: 128 })
  const keys: Array<string> = []
  for (const n of nodes) {
    let found = 0
    for (let i = 0; found < perNode; i++) {
      const key = `k${i}:${n.node.id}`
      if (HashRing.owner(ring, key) === n.node.id) {
        keys.push(key)
        found++
      }
    }
  }
  return keys
}

/** The data lane's opening bytes, then `frames` as length-prefixed MessagePack. */
const lane = (...frames: ReadonlyArray<Uint8Array>) =>
  Buffer.concat([
    Buffer.from([0xc1, 0x56, 0x4c, 0x31]),
    ...frames.map((body) => Buffer.concat([Buffer.from(new Uint32Array([body.length]).buffer).reverse(), body]))
  ])

/** One batch of `ops` from `node` to `peer` on the data lane: the results, or why there are none. */
const laneBatch = (node: ClusterNode.ClusterNode["Type"], peer: string, ops: ReadonlyArray<unknown>) =>
  Effect.async<unknown>((resume) => node.batch(peer, 0, ops as ReadonlyArray<Op>, (a) => resume(Effect.succeed(a))))

describe("Partitioned atomic operations", () => {
  // With the JSON codec the owner adds; with any other, compare-and-set rounds from the requester.
  const codecs = [["Codec.json", Codec.json], ["another codec", Codec.fromSchema(Schema.Unknown)]] as const
  for (const [replicas, [codecName, codec]] of [0, 1].flatMap((r) => codecs.map((c) => [r, c] as const))) {
    it.live(
      `replicas ${replicas}, ${codecName}: increments from every node add up exactly; copies agree`,
      () =>
        Effect.scoped(Effect.gen(function*() {
          const nodes = yield* cluster((seeds) => startPartitioned(seeds, { replicas }), 3)
          const stores = yield* Effect.forEach(nodes, (n) => n.topology.open({ ...openOptions(ns), codec }))
          // Owned by each node in turn: every store increments keys it owns and keys of its peers.
          const keys = keysOwnedBy(nodes, 2)
          yield* Effect.forEach(
            stores.flatMap((store) => keys.flatMap((key) => Array.from({ length: 20 }, () => ({ store, key })))),
            ({ key, store }) => store.increment(key, 1, created),
            { concurrency: 64, discard: true }
          )
          for (const key of keys) {
            for (const store of stores) {
              assert.strictEqual(Option.getOrThrow(yield* store.get(key)).value, 60, key)
            }
            const held = yield* copies(nodes, key)
            assert.deepStrictEqual(held, Array(1 + replicas).fill("60"), key)
          }
          // The sums each increment saw are distinct: each applied once, in some order.
          const sums = yield* Effect.forEach(
            Array.from({ length: 30 }, (_, i) => stores[i % 3]),
            (store) => store.increment("sums", 2, created),
            { concurrency: "unbounded" }
          )
          assert.deepStrictEqual([...sums].sort((a, b) => a - b), Array.from({ length: 30 }, (_, i) => 2 * (i + 1)))
          // A value that is not a number is refused, and left as it is.
          yield* stores[0].set("text", entry("abc"))
          const wrong = yield* Effect.flip(stores[1].increment("text", 1, created))
          assert.strictEqual(wrong._tag, "WrongType")
          assert.strictEqual(Option.getOrThrow(yield* stores[2].get("text")).value, "abc")
          // A counter keeps its expiry and tags; an absent one starts with those given.
          const at = Date.now() + 60_000
          assert.strictEqual(yield* stores[0].increment("fresh", 5, { expiresAt: at, tags: ["t"] }), 5)
          assert.strictEqual(yield* stores[1].increment("fresh", -2, created), 3)
          const counter = Option.getOrThrow(yield* stores[2].get("fresh"))
          assert.deepStrictEqual([counter.value, counter.expiresAt, counter.tags], [3, at, ["t"]])
          assert.strictEqual((yield* Effect.flip(stores[2].increment("fresh", Infinity, created)))._tag, "WrongType")
        })),
      60_000
    )
  }

  for (const replicas of [0, 1]) {
    it.live(
      `replicas ${replicas}: of racing takes of a key, exactly one wins; every copy is gone`,
      () =>
        Effect.scoped(Effect.gen(function*() {
          const nodes = yield* cluster((seeds) => startPartitioned(seeds, { replicas }), 3)
          const stores = yield* Effect.forEach(nodes, open)
          const keys = keysOwnedBy(nodes, 3)
          yield* Effect.forEach(keys, (key) => stores[0].set(key, entry(key)), { discard: true })
          const taken = yield* Effect.forEach(
            stores.flatMap((store) => keys.flatMap((key) => Array.from({ length: 5 }, () => ({ store, key })))),
            ({ key, store }) => Effect.map(store.take(key), (got) => [key, got] as const),
            { concurrency: "unbounded" }
          )
          for (const key of keys) {
            const winners = taken.filter(([k, got]) => k === key && Option.isSome(got))
            assert.strictEqual(winners.length, 1, key)
            assert.strictEqual(Option.getOrThrow(winners[0][1]).value, key)
            assert.deepStrictEqual(yield* copies(nodes, key), [], key)
            assert.isTrue(Option.isNone(yield* stores[2].get(key)))
          }
        })),
      60_000
    )

    it.live(
      `replicas ${replicas}: readForUpdate and compareAndSet by the owner's stamp; touch`,
      () =>
        Effect.scoped(Effect.gen(function*() {
          const nodes = yield* cluster((seeds) => startPartitioned(seeds, { replicas }), 3)
          const [a, b, c] = yield* Effect.forEach(nodes, open)
          for (const key of keysOwnedBy(nodes, 1)) {
            // Absent: only the compare-and-set expecting nothing lands.
            assert.isTrue(Option.isNone(yield* a.readForUpdate(key)))
            assert.isTrue(yield* a.compareAndSet(key, undefined, entry(1, ["t"])))
            assert.isFalse(yield* b.compareAndSet(key, undefined, entry(9)))
            const seen = Option.getOrThrow(yield* b.readForUpdate(key))
            assert.deepStrictEqual(seen.entry.value, 1)
            assert.deepStrictEqual(seen.entry.tags, ["t"])
            // Any write since the read, even of the same value, makes the snapshot stale.
            yield* c.set(key, entry(1, ["t"]))
            assert.isFalse(yield* b.compareAndSet(key, seen, entry(2)))
            const fresh = Option.getOrThrow(yield* c.readForUpdate(key))
            assert.isTrue(yield* b.compareAndSet(key, fresh, entry(2)))
            assert.isFalse(yield* a.compareAndSet(key, fresh, entry(3)))
            assert.deepStrictEqual(yield* copies(nodes, key), Array(1 + replicas).fill("2"))
            // Touch keeps the value and tags, changes the expiry on every copy.
            const later = Date.now() + 60_000
            assert.isTrue(yield* c.touch(key, later))
            const touched = Option.getOrThrow(yield* a.get(key))
            assert.deepStrictEqual([touched.value, touched.tags, touched.expiresAt], [2, [], later])
            for (const n of nodes) {
              const held = (yield* n.backend.open(openOptions(ns))).sync!.get(key)
              if (held !== undefined) assert.strictEqual(held.expiresAt, later)
            }
            assert.isFalse(yield* a.touch(`${key}:absent`, later))
            // A compare-and-set to nothing deletes.
            const last = Option.getOrThrow(yield* a.readForUpdate(key))
            assert.isTrue(yield* b.compareAndSet(key, last, undefined))
            assert.deepStrictEqual(yield* copies(nodes, key), [])
          }
        })),
      60_000
    )
  }

  it.live(
    "a touch does not win over a write made before it but delivered after: the write's value stays, on every copy",
    () =>
      Effect.scoped(Effect.gen(function*() {
        const nodes = yield* cluster((seeds) => startPartitioned(seeds, { replicas: 1 }), 3)
        const [a] = yield* Effect.forEach(nodes, open)
        for (const key of keysOwnedBy(nodes, 1)) {
          yield* a.set(key, entry(1))
          const { token } = Option.getOrThrow(yield* a.readForUpdate(key))
          const { version } = token as { readonly version: number }
          // A put stamped just after the value it replaces, still on its way while the touch lands.
          const late = { value: JSON.stringify(2), expiresAt: null, tags: [], version: version + 10 }
          const later = Date.now() + 60_000
          assert.isTrue(yield* a.touch(key, later))
          const holders = HashRing.holders(HashRing.make(nodes.map((n) => n.node.id), { virtualNodes: 128 }), key, 2)
          for (const holder of holders) {
            const from = nodes.find((n) => n.node.id !== holder)!
            yield* laneBatch(from.node, holder, [{ _tag: "Set", ns, key, entry: late, origin: "n9", watch: false }])
          }
          assert.deepStrictEqual(yield* copies(nodes, key), ["2", "2"], key)
          assert.strictEqual(Option.getOrThrow(yield* a.get(key)).value, 2)
        }
      })),
    30_000
  )

  it.live(
    "near caches on other nodes drop what increment, take and update change",
    () =>
      Effect.scoped(Effect.gen(function*() {
        const nodes = yield* cluster((seeds) => startPartitioned(seeds, { replicas: 1 }), 3)
        const near = (topology: Topology.Topology["Type"]) =>
          Layer.build(
            NearCache.layer({ ttl: "1 minute" }).pipe(Layer.provide(Layer.succeed(Topology.Topology, topology)))
          )
            .pipe(Effect.map((context) => Context.get(context, Topology.Topology)))
        const [ca, cb] = yield* Effect.forEach(
          nodes.slice(0, 2),
          (n) => Effect.flatMap(near(n.topology), (t) => cacheOn<number>(t, "counters"))
        )
        const cc = yield* cacheOn<number>(nodes[2].topology, "counters")
        const keys = Array.from({ length: 15 }, (_, i) => `n${i}`)
        yield* Effect.forEach(keys, (key) => ca.put(key, 1))
        // Both near caches hold every key.
        yield* Effect.forEach(keys, (key) => Effect.zip(ca.get(key), cb.get(key)))
        yield* Effect.forEach(keys.slice(0, 5), (key) => cc.increment(key, 1))
        yield* Effect.forEach(keys.slice(5, 10), (key) => cc.take(key))
        yield* Effect.forEach(keys.slice(10), (key) => cc.update(key, (n) => n + 10))
        const expected = keys.map((_, i) => i < 5 ? Option.some(2) : i < 10 ? Option.none() : Option.some(11))
        for (const cache of [ca, cb]) {
          yield* eventually(Effect.flatMap(
            Effect.forEach(keys, (key) => cache.getOption(key)),
            (seen) => Equal.equals(Data.array(seen), Data.array(expected)) ? Effect.void : Effect.fail(seen)
          ))
        }
      })),
    30_000
  )

  it.live(
    "a node joins while keys are incremented: the new owner continues from the handed-over counts",
    () =>
      Effect.scoped(Effect.gen(function*() {
        // replicas 0: a key that moves to the newcomer is held by its old owner alone until handed over.
        const [a, b] = yield* cluster((seeds) => startPartitioned(seeds, { replicas: 0 }), 2)
        const keys = Array.from({ length: 40 }, (_, i) => `moving:${i}`)
        const [sa, sb] = yield* Effect.forEach([a, b], open)
        yield* Effect.forEach(keys, (key) => sa.increment(key, 10, created), { concurrency: 64, discard: true })
        const c = yield* startPartitioned([a.node.id], { replicas: 0 })
        const sc = yield* open(c)
        // Every node sees every other (a node that sees only some members routes by a ring that
        // is not the cluster's: see internal/partitioned/atomic.ts), the handoff to c just started.
        yield* connected([a, b, c])
        // At once, while the handoff to c runs: an increment either lands once or fails unapplied
        // (NodeUnavailable while the nodes' rings disagree), never twice, never over a lost count.
        const outcomes = yield* Effect.forEach(
          [sa, sb, sc].flatMap((store) => keys.map((key) => ({ store, key }))),
          ({ key, store }) => Effect.either(store.increment(key, 1, created)),
          { concurrency: "unbounded" }
        )
        for (const outcome of outcomes) {
          if (outcome._tag === "Left") assert.strictEqual(outcome.left._tag, "NodeUnavailable")
        }
        const landed = (i: number) => [0, 1, 2].filter((s) => outcomes[s * keys.length + i]._tag === "Right").length
        const ring = HashRing.make([a, b, c].map((n) => n.node.id), { virtualNodes: 128 })
        assert.isTrue(keys.some((key) => HashRing.owner(ring, key) === c.node.id), "some key moved to c")
        // Once every node sees the others, every node's increments land.
        yield* Effect.forEach(
          [sa, sb, sc].flatMap((store) => keys.map((key) => store.increment(key, 100, created))),
          (e) => e,
          {
            concurrency: "unbounded",
            discard: true
          }
        )
        for (const [i, key] of keys.entries()) {
          assert.strictEqual(Option.getOrThrow(yield* sb.get(key)).value, 310 + landed(i), key)
        }
      })),
    60_000
  )

  it.live(
    "new operations from a stranger, or malformed from a member, are refused; the key stays",
    () =>
      Effect.scoped(Effect.gen(function*() {
        const nodes = yield* cluster((seeds) => startPartitioned(seeds, { replicas: 0 }), 2)
        const [a] = nodes
        const store = yield* open(a)
        const key = keysOwnedBy(nodes, 1)[0]
        yield* store.set(key, entry("kept"))
        const take = { _tag: "Take", ns, key, view: 0 }
        const cas = { _tag: "CompareAndSet", ns, key, expected: null, next: null, watch: false, view: 0 }
        // A node that does not know the secret: its lane is refused before any operation runs.
        const intruder = yield* ClusterNode.make({
          host: "127.0.0.1",
          port: 0,
          seeds: [],
          secret: "guess",
          heartbeatInterval: "100 millis",
          failureTimeout: "1 second"
        })
        assert.instanceOf(yield* laneBatch(intruder, a.node.id, [take]), NodeUnavailable)
        // A raw frame with the new operations, before (or instead of) the handshake: closed.
        const port = Number(a.node.id.split(":")[1])
        const increment = { _tag: "Increment", ns, key, by: 1, expiresAt: null, tags: [], view: 0 }
        for (
          const op of [take, cas, increment, { _tag: "Touch", ns, key, expiresAt: 1, view: 0 }, {
            _tag: "ReadForUpdate",
            ns,
            key
          }]
        ) {
          assert.isTrue((yield* sendRaw(port, lane(pack([0, 0, [op]])), 5_000)).closed)
        }
        // A member's frame whose new operation does not match its Schema closes the lane.
        const b = nodes[1].node
        for (
          const bad of [{ _tag: "Take", ns }, { ...cas, expected: 1 }, {
            _tag: "Touch",
            ns,
            key,
            expiresAt: "x",
            view: 0
          }, {
            ...increment,
            by: "1"
          }]
        ) {
          assert.instanceOf(yield* laneBatch(b, a.node.id, [bad]), NodeUnavailable)
        }
        assert.strictEqual(Option.getOrThrow(yield* store.get(key)).value, "kept")
        // A well-formed one from a member to a node that does not own the key applies nothing.
        const notOwner = yield* laneBatch(a.node, b.id, [take])
        assert.deepStrictEqual((notOwner as ReadonlyArray<{ _tag: string }>)[0]._tag, "Unavailable")
        assert.strictEqual(Option.getOrThrow(yield* store.get(key)).value, "kept")
      })),
    30_000
  )
})
