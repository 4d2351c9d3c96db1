import { assert, describe, it, layer } from "@effect/vitest"
import type { NearCache } from "@vela/core"
import { Codec } from "@vela/core"
import { Chunk, Effect, Either, Fiber, Option, Stream } from "effect"
import type { BusMessage } from "../src/internal/bus.js"
import { Inbox, Mailbox, Sequences } from "../src/internal/bus.js"
import * as Entry from "../src/internal/entry.js"
import { Keyspace } from "../src/internal/keys.js"
import { cacheOn, eventually, failureTag, promise, rawClient, uniqueName } from "./utils/caches.js"
import * as RedisServer from "./utils/RedisServer.js"

// The near caches keep entries for an hour: the only way B stops serving a value is the bus.
const near: NearCache.NearCacheOptions = { ttl: "1 hour" }

const pair = (url: string, label: string) =>
  Effect.gen(function*() {
    const name = uniqueName(label)
    const a = yield* cacheOn<string>({ url }, { name }, near)
    const b = yield* cacheOn<string>({ url }, { name }, near)
    const raw = yield* rawClient(url)
    const keys = new Keyspace("vela:", name, 1)
    /** Removes `key` from Redis behind every cache's back (no bus message): only an L1 still has it. */
    const dropBehind = (key: string) => promise(() => raw.del(keys.entry(key)))
    /**
     * Writes `key` straight into Redis (no bus message), then has B read it into its L1 and removes
     * it again: from then on only B's L1 holds it, and only a bus message can take it away.
     */
    const intoL1 = (key: string, value: string, tags: ReadonlyArray<string> = []) =>
      Effect.gen(function*() {
        const payload = Either.getOrThrow(Entry.encode(Codec.json, key, { value, expiresAt: null, tags, version: 0 }))
        yield* promise(() => raw.set(keys.entry(key), payload))
        for (const tag of tags) yield* promise(() => raw.sadd(keys.tagSet(tag, 0), keys.entry(key)))
        const first = yield* Effect.option(b.get(key))
        yield* dropBehind(key)
        const second = yield* Effect.option(b.get(key))
        if (tags.length > 0) yield* promise(() => raw.set(keys.entry(key), payload))
        return Option.getOrUndefined(first) === value && Option.getOrUndefined(second) === value
      })
    const onlyInL1 = (key: string, value: string, tags: ReadonlyArray<string> = []) =>
      Effect.map(intoL1(key, value, tags), (held) => assert.isTrue(held, `B serves ${key} from its L1`))
    return { a, b, raw, keys, dropBehind, intoL1, onlyInL1 }
  })

describe("invalidation bus", () => {
  layer(RedisServer.layer, { excludeTestServices: true })((it) => {
    it.scoped("a write, delete, tag invalidation or flush in A drops B's near-cache entry", () =>
      Effect.gen(function*() {
        const server = yield* RedisServer.RedisServer
        const { a, b, onlyInL1 } = yield* pair(server.url, "coherent")
        const read = (key: string) => Effect.map(b.getOption(key), Option.getOrUndefined)

        yield* onlyInL1("k", "v1")
        yield* a.put("k", "v2")
        assert.strictEqual(yield* eventually(read("k"), (v) => v === "v2"), "v2")

        yield* onlyInL1("gone", "v3")
        yield* a.delete("gone")
        assert.isUndefined(yield* eventually(read("gone"), (v) => v === undefined))

        // Tagged entries are put back in Redis too, so invalidateTag finds and counts them.
        yield* onlyInL1("t1", "tagged", ["group"])
        yield* onlyInL1("t2", "other")
        assert.strictEqual(yield* a.invalidateTag("group"), 1)
        assert.isUndefined(yield* eventually(read("t1"), (v) => v === undefined))
        assert.strictEqual(yield* b.get("t2"), "other", "an untagged entry stays in B's L1")

        yield* a.flush()
        assert.isUndefined(yield* eventually(read("t2"), (v) => v === undefined))

        // Puts issued together travel as one script and one message naming every key.
        const many = ["m1", "m2", "m3"]
        for (const key of many) yield* onlyInL1(key, "old")
        yield* Effect.forEach(many, (key) => a.put(key, "new"), { concurrency: "unbounded" })
        for (const key of many) assert.strictEqual(yield* eventually(read(key), (v) => v === "new"), "new")
      }))

    it.scoped("B's own writes do not echo back; a lost message (a sequence gap) flushes B's L1", () =>
      Effect.gen(function*() {
        const server = yield* RedisServer.RedisServer
        const { b, keys, onlyInL1, raw } = yield* pair(server.url, "gap")
        yield* onlyInL1("x", "1")
        yield* onlyInL1("y", "2")
        yield* b.put("z", "3")
        assert.strictEqual(yield* b.get("z"), "3")
        yield* promise(() => raw.del(keys.entry("z")))
        assert.strictEqual(yield* b.get("z"), "3", "B's own write stays in its L1")
        const publish = (seq: number, key: string) =>
          promise(() => raw.publish(keys.channel, JSON.stringify({ p: "elsewhere", b: 0, s: seq, k: [key] })))
        yield* publish(1, "unrelated")
        yield* publish(2, "y")
        assert.isUndefined(
          yield* eventually(Effect.map(b.getOption("y"), Option.getOrUndefined), (v) => v === undefined)
        )
        assert.strictEqual(yield* b.get("x"), "1", "in order: only y was dropped")
        yield* publish(4, "unrelated")
        assert.isUndefined(
          yield* eventually(Effect.map(b.getOption("x"), Option.getOrUndefined), (v) => v === undefined)
        )
      }))

    it.scoped("a put heard by no other connection is not published; once one listens, every put is, in sequence", () =>
      Effect.gen(function*() {
        const server = yield* RedisServer.RedisServer
        const name = uniqueName("unheard")
        const a = yield* cacheOn<string>({ url: server.url }, { name })
        const raw = yield* rawClient(server.url)
        const keys = new Keyspace("vela:", name, 1)
        const published = Effect.map(
          promise(() => raw.info("commandstats")),
          (text) => Number(/cmdstat_publish:calls=(\d+)/.exec(text)?.[1] ?? 0)
        )
        const before = yield* published
        yield* a.put("alone", "1")
        yield* a.put("tagged", "2", { tags: ["group"] })
        yield* a.putMany([["x", "3"], ["y", "4"]])
        assert.strictEqual(yield* published, before, "only A's own bus connection listens: nothing published")

        const listener = yield* rawClient(server.url)
        const heard: Array<BusMessage> = []
        listener.on("message", (_channel: string, text: string) => heard.push(JSON.parse(text)))
        yield* promise(() => listener.subscribe(keys.channel))
        yield* a.put("heard", "5")
        yield* a.put("tagged", "6", { tags: ["group"] })
        yield* a.putMany([["x", "7"], ["y", "8"]])
        const messages = yield* eventually(Effect.sync(() => heard.slice()), (found) => found.length >= 3)
        assert.deepStrictEqual(messages.map((message) => message.k), [["heard"], ["tagged"], ["x", "y"]])
        assert.deepStrictEqual(messages.map((message) => message.s! - messages[0].s!), [0, 1, 2])
      }))

    it.scoped("a dropped bus connection clears and bypasses L1 until it is back", () =>
      Effect.gen(function*() {
        const server = yield* RedisServer.RedisServer
        const { a, b, intoL1, onlyInL1 } = yield* pair(server.url, "outage")
        yield* onlyInL1("k", "v")
        yield* server.stop
        // With Redis gone, B must not answer from L1: it reports the outage.
        assert.strictEqual(yield* eventually(failureTag(b.get("k")), (tag) => tag === "BackendError"), "BackendError")
        yield* server.start
        // Back (empty, as the server keeps nothing): B sees that, not its old L1 entry.
        assert.strictEqual(yield* eventually(failureTag(b.get("k")), (tag) => tag !== "BackendError"), "NotFound")
        // L1 serves again once the bus is back.
        yield* eventually(intoL1("k", "after"), (held) => held)
        yield* a.put("k", "again")
        assert.strictEqual(
          yield* eventually(Effect.map(b.getOption("k"), Option.getOrUndefined), (v) => v === "again"),
          "again"
        )
      }))
  })
})

describe("bus bookkeeping", () => {
  it("sequences: in order, a gap, a late message, per publisher and bucket", () => {
    const sequences = new Sequences()
    const at = (p: string, b: number, s: number) => sequences.next({ p, b, s })
    assert.isTrue(at("x", 0, 7), "the first number heard is a start")
    assert.isTrue(at("x", 0, 8))
    assert.isTrue(at("x", 1, 1), "buckets count apart")
    assert.isTrue(at("y", 0, 1), "publishers count apart")
    assert.isFalse(at("x", 0, 10), "9 is missing")
    assert.isFalse(at("x", 0, 9), "9 came late")
    assert.isTrue(at("x", 0, 11), "the mark stayed at 10")
    assert.isTrue(sequences.next({ p: "x", b: 0, r: "k" }), "hints carry no number")
    sequences.reset()
    assert.isTrue(at("x", 0, 40), "after a reconnection, a fresh start")
  })

  it.effect("a mailbox that overflows collapses into one Flush (Disconnected while disconnected)", () =>
    Effect.gen(function*() {
      const mailbox = new Mailbox(3)
      for (const key of ["a", "b", "c", "d"]) mailbox.offer({ _tag: "Keys", keys: [key] })
      assert.deepStrictEqual(Chunk.toReadonlyArray(yield* mailbox.take), [{ _tag: "Flush" }])
      mailbox.offer({ _tag: "Disconnected" })
      for (const key of ["a", "b", "c"]) mailbox.offer({ _tag: "Keys", keys: [key] })
      assert.deepStrictEqual(Chunk.toReadonlyArray(yield* mailbox.take), [{ _tag: "Disconnected" }])
      mailbox.offer({ _tag: "Connected" })
      assert.deepStrictEqual(Chunk.toReadonlyArray(yield* mailbox.take), [{ _tag: "Connected" }])
    }))

  it.effect("an inbox keeps what came before its first consumer, and feeds every consumer", () =>
    Effect.gen(function*() {
      const inbox = new Inbox()
      inbox.offer({ _tag: "Keys", keys: ["early"] })
      const reading = (n: number) => Effect.repeat(Effect.yieldNow(), { until: () => inbox.consumers === n })
      inbox.offer({ _tag: "Disconnected" })
      const first = yield* Effect.fork(Stream.runCollect(Stream.take(inbox.stream, 3)))
      yield* reading(1)
      const second = yield* Effect.fork(Stream.runCollect(Stream.take(inbox.stream, 2)))
      yield* reading(2)
      inbox.offer({ _tag: "Connected" })
      assert.deepStrictEqual(Chunk.toReadonlyArray(yield* Fiber.join(first)), [
        { _tag: "Keys", keys: ["early"] },
        { _tag: "Disconnected" },
        { _tag: "Connected" }
      ])
      assert.deepStrictEqual(Chunk.toReadonlyArray(yield* Fiber.join(second)), [
        { _tag: "Disconnected" },
        { _tag: "Connected" }
      ])
    }))
})
