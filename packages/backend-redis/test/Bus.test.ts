import { assert, describe, it, layer } from "@effect/vitest"
import { Redis } from "@vela/backend-redis"
import type { NearCache } from "@vela/core"
import { Codec } from "@vela/core"
import { openOptions } from "@vela/core/testing"
import { Chunk, Effect, Either, Exit, Fiber, Option, Scope, Stream } from "effect"
import { Redis as IORedis } from "ioredis"
import type { BusListener, BusMessage } from "../src/internal/bus.js"
import { Inbox, Mailbox, Sequences, Subscriber } from "../src/internal/bus.js"
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

        // A restart drops every subscription: A's bus comes back with the channel and its marker.
        listener.disconnect()
        yield* server.stop
        yield* server.start
        const fresh = yield* rawClient(server.url)
        const publishedNow = Effect.map(
          promise(() => fresh.info("commandstats")),
          (text) => Number(/cmdstat_publish:calls=(\d+)/.exec(text)?.[1] ?? 0)
        )
        const putPublishes = Effect.flatMap(
          publishedNow,
          (before) => Effect.zipRight(a.put("after", "9"), Effect.map(publishedNow, (after) => after - before))
        )
        yield* eventually(putPublishes, (added) => added === 0)
        const again = yield* rawClient(server.url)
        const heardAgain: Array<BusMessage> = []
        again.on("message", (_channel: string, text: string) => heardAgain.push(JSON.parse(text)))
        yield* promise(() => again.subscribe(keys.channel))
        yield* a.put("heard again", "11")
        const after = yield* eventually(Effect.sync(() => heardAgain.slice()), (found) => found.length >= 1)
        assert.deepStrictEqual(after.map((message) => message.k), [["heard again"]])
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

/** A listener that records the first key of every message it hears. */
const recorder = (id: string) => {
  const heard: Array<string> = []
  const listener: BusListener = {
    id,
    onMessage: (message) => heard.push(message.k?.[0] ?? ""),
    onConnected: () => {},
    onDisconnected: () => {}
  }
  return { heard, listener }
}

const message = (key: string) => JSON.stringify({ p: "elsewhere", b: 0, k: [key] })

/**
 * A bare bus subscriber on `url`, closed with the scope; `onReady` runs once its connection is
 * ready, on the next tick: after the subscriber sent its SUBSCRIBE, before the reply can arrive.
 */
const subscriberOn = (url: string, onReady: () => void = () => {}) =>
  Effect.acquireRelease(
    Effect.sync(() =>
      new Subscriber([() => {
        const redis = new IORedis(url, {
          lazyConnect: true,
          retryStrategy: null,
          autoResubscribe: false,
          enableOfflineQueue: false,
          maxRetriesPerRequest: 0
        })
        redis.once("ready", () => process.nextTick(onReady))
        return redis
      }], true)
    ),
    (subscriber) => Effect.sync(() => subscriber.close())
  )

describe("bus subscriptions", () => {
  layer(RedisServer.layer, { excludeTestServices: true })((it) => {
    /**
     * Publishes `key` on `channel`, then a fence on `fence` from the same connection: once the
     * fence is heard, the first message has been delivered too, if the channel was subscribed.
     */
    const publishFenced = (raw: IORedis, channel: string, key: string, fence: string, fenced: () => boolean) =>
      Effect.gen(function*() {
        yield* promise(() => raw.publish(channel, message(key)))
        yield* promise(() => raw.publish(fence, message("fence")))
        yield* eventually(Effect.sync(fenced), (done) => done)
      })

    it.scoped("a channel left and joined again before its SUBSCRIBE is confirmed stays subscribed", () =>
      Effect.gen(function*() {
        const server = yield* RedisServer.RedisServer
        const raw = yield* rawClient(server.url)
        const subscriber = yield* subscriberOn(server.url)
        assert.isTrue(yield* promise(() => subscriber.start()))
        const channel = uniqueName("rejoin")
        const fence = recorder("fence")
        yield* promise(() => subscriber.add(`${channel}:fence`, fence.listener))
        const a = recorder("a")
        const b = recorder("b")
        const first = subscriber.add(channel, a.listener)
        subscriber.remove(channel, a.listener)
        yield* promise(() => subscriber.add(channel, b.listener))
        yield* promise(() => first)
        yield* publishFenced(raw, channel, "x", `${channel}:fence`, () => fence.heard.length > 0)
        assert.deepStrictEqual(b.heard, ["x"], "B hears the other connection's message")
        assert.deepStrictEqual(a.heard, [])
      }))

    it.scoped("a channel joined while the connection's own SUBSCRIBE is unconfirmed is subscribed too", () =>
      Effect.gen(function*() {
        const server = yield* RedisServer.RedisServer
        const raw = yield* rawClient(server.url)
        const channel = uniqueName("early")
        const late = recorder("late")
        let joined: Promise<void> | undefined
        const subscriber = yield* subscriberOn(server.url, () => {
          joined = subscriber.add(channel, late.listener)
        })
        const fence = recorder("fence")
        yield* promise(() => subscriber.add(`${channel}:fence`, fence.listener))
        assert.isTrue(yield* promise(() => subscriber.start()))
        assert.isDefined(joined)
        yield* promise(() => joined!)
        yield* publishFenced(raw, channel, "x", `${channel}:fence`, () => fence.heard.length > 0)
        assert.deepStrictEqual(late.heard, ["x"])
      }))

    it.scoped("a put still in flight when its store closes is published if another connection listens", () =>
      Effect.gen(function*() {
        const server = yield* RedisServer.RedisServer
        const name = uniqueName("closing")
        const keys = new Keyspace("vela:", name, 1)
        const raw = yield* rawClient(server.url)
        const listener = yield* rawClient(server.url)
        const heard: Array<string> = []
        listener.on("message", (_channel: string, text: string) => heard.push(JSON.parse(text).k[0]))
        yield* promise(() => listener.subscribe(keys.channel))
        const backend = yield* Redis.make({ url: server.url })
        const scope = yield* Scope.make()
        const store = yield* Scope.extend(backend.open(openOptions(name)), scope)
        // The put reaches Redis, which holds it (a script is a write) while the store closes.
        yield* promise(() => raw.client("PAUSE", 10_000, "WRITE"))
        const put = yield* Effect.fork(store.set("k", { value: "v", expiresAt: null, tags: [], version: 0 }))
        yield* eventually(promise(() => raw.info("clients")), (text) => /blocked_clients:1\b/.test(text))
        yield* Scope.close(scope, Exit.void)
        // The store's own subscription is gone: only the listener is left on the channel.
        yield* eventually(
          promise(() => raw.pubsub("NUMSUB", keys.channel)),
          (counts) => Number(counts[1]) === 1
        )
        yield* promise(() => raw.client("UNPAUSE"))
        yield* Fiber.join(put)
        yield* promise(() => raw.publish(keys.channel, message("fence")))
        yield* eventually(Effect.sync(() => heard.includes("fence")), (done) => done)
        assert.deepStrictEqual(heard, ["k", "fence"])
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
