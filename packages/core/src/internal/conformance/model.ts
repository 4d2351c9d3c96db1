/** The conformance suite's model of a cache and its helpers (`testing.ts` runs them on every implementation). */
import { assert } from "@effect/vitest"
import * as Cause from "effect/Cause"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as fc from "effect/FastCheck"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as TestClock from "effect/TestClock"
import type { EvictionPolicy } from "../../Backend.js"
import * as Vela from "../../Vela.js"

/** The bound and policy the model checks eviction against; none: no eviction. */
export type ModelEviction = { readonly maxSize: number; readonly policy: EvictionPolicy } | undefined

export class User extends Schema.Class<User>("User")({ id: Schema.String, since: Schema.Date }) {}

let counter = 0
export const uniqueName = () => `conformance-${process.pid}-${Date.now().toString(36)}-${++counter}`

export const fresh = <V, I = V>(config: Vela.Config<V, I> = {}) => Vela.make<V, I>({ ...config, name: uniqueName() })

export const failureOf = (exit: Exit.Exit<unknown, unknown>) => {
  if (Exit.isSuccess(exit)) return undefined
  const failure = Option.getOrUndefined(Cause.failureOption(exit.cause)) as Record<string, unknown> | undefined
  if (failure === undefined) return { defect: Cause.pretty(exit.cause) }
  const picked: Record<string, unknown> = { _tag: failure._tag }
  for (const field of ["field", "direction"]) if (field in failure) picked[field] = failure[field]
  return picked
}

/** Retries `self` with real 10 ms pauses, for writes that land in the background over real I/O. */
export const eventually = <A, E>(self: Effect.Effect<A, E>, attempts = 300): Effect.Effect<A, E> =>
  Effect.catchAll(
    self,
    (error) => attempts <= 1 ? Effect.fail(error) : Effect.zipRight(realSleep(10), eventually(self, attempts - 1))
  )

/** A pause on the real clock, whatever clock the test runs on. */
export const realSleep = (millis: number) =>
  Effect.async<void>((resume) => {
    const timer = setTimeout(() => resume(Effect.void), millis)
    return Effect.sync(() => clearTimeout(timer))
  })

export const failureTag = (self: Effect.Effect<unknown, unknown>) =>
  Effect.map(Effect.exit(self), (exit) => failureOf(exit)?._tag ?? "success")

/**
 * A `getOrFetch(key)` on `cache` whose fetch, once running, waits until `finish` and then yields
 * `value`: for tests of what happens while a fetch is in flight. Returns once the fetch runs.
 */
export const fetchInFlight = <V>(cache: Vela.Cache<V>, key: string, value: V) =>
  Effect.gen(function*() {
    const started = yield* Deferred.make<void>()
    const gate = yield* Deferred.make<void>()
    const fiber = yield* Effect.fork(cache.getOrFetch(key, () =>
      Deferred.succeed(started, undefined).pipe(Effect.zipRight(Deferred.await(gate)), Effect.as(value))))
    yield* Deferred.await(started)
    return { fiber, finish: Deferred.succeed(gate, undefined) }
  })

// The model

type Command =
  | {
    readonly op: "put"
    readonly key: string
    readonly value: number
    readonly ttl?: number
    readonly tags: Array<string>
  }
  | { readonly op: "get" | "getOption" | "delete" | "exists"; readonly key: string }
  | { readonly op: "invalidateTag"; readonly tag: string }
  | { readonly op: "flush" | "size" }
  | { readonly op: "adjust"; readonly millis: number }
  | { readonly op: "getMany" | "deleteMany"; readonly keys: Array<string> }
  | { readonly op: "putMany"; readonly entries: Array<[string, number]>; readonly ttl?: number }

export const keys = ["a", "b", "c", "d", "e", "f:g", "ü"]
const tagNames = ["red", "green", "blue"]
export const key = fc.constantFrom(...keys)

export const command: fc.Arbitrary<Command> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({
      op: fc.constant("put" as const),
      key,
      value: fc.integer(),
      ttl: fc.constantFrom(100, 500, 1_000, 5_000),
      tags: fc.subarray(tagNames)
    }, { requiredKeys: ["op", "key", "value", "tags"] })
  },
  { weight: 4, arbitrary: fc.record({ op: fc.constantFrom("get" as const, "getOption" as const), key }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constantFrom("delete" as const, "exists" as const), key }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("invalidateTag" as const), tag: fc.constantFrom(...tagNames) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constantFrom("flush" as const, "size" as const) }) },
  {
    weight: 2,
    arbitrary: fc.record({ op: fc.constant("adjust" as const), millis: fc.constantFrom(1, 99, 100, 400, 2_000) })
  },
  {
    weight: 1,
    arbitrary: fc.record({ op: fc.constantFrom("getMany" as const, "deleteMany" as const), keys: fc.array(key) })
  },
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant("putMany" as const),
      entries: fc.uniqueArray(fc.tuple(key, fc.integer()), { selector: ([k]) => k, maxLength: 4 }),
      ttl: fc.constantFrom(100, 1_000)
    }, { requiredKeys: ["op", "entries"] })
  }
)

interface ModelEntry {
  value: number
  expiresAt: number
  tags: Array<string>
  /** Last write, for ttl-only ties; last use, for lru and lfu ties. */
  written: number
  used: number
  uses: number
}

/** The reference: a `Map` of live entries, with the eviction rules of the README written plainly. */
class Model {
  readonly entries = new Map<string, ModelEntry>()
  now = 0
  tick = 0

  constructor(readonly eviction: ModelEviction) {}

  live(key: string): ModelEntry | undefined {
    const entry = this.entries.get(key)
    if (entry !== undefined && entry.expiresAt <= this.now) this.entries.delete(key)
    return this.entries.get(key)
  }

  prune(): void {
    for (const key of Array.from(this.entries.keys())) this.live(key)
  }

  read(key: string): number | undefined {
    const entry = this.live(key)
    if (entry === undefined) return undefined
    entry.used = ++this.tick
    entry.uses++
    return entry.value
  }

  put(key: string, value: number, ttl: number | undefined, tags: Array<string>): void {
    this.prune()
    const existing = this.entries.get(key)
    const tick = ++this.tick
    const expiresAt = ttl === undefined ? Infinity : this.now + ttl
    if (existing !== undefined) {
      Object.assign(existing, { value, expiresAt, tags, written: tick, used: tick, uses: existing.uses + 1 })
      return
    }
    if (this.eviction !== undefined && this.entries.size >= this.eviction.maxSize) this.evict(this.eviction.policy)
    this.entries.set(key, { value, expiresAt, tags, written: tick, used: tick, uses: 1 })
  }

  evict(policy: EvictionPolicy): void {
    const all = Array.from(this.entries)
    const rank = ([, e]: [string, ModelEntry]): [number, number] =>
      policy === "lru" ? [e.used, 0] : policy === "lfu" ? [e.uses, e.used] : [e.expiresAt, e.written]
    all.sort((x, y) => rank(x)[0] - rank(y)[0] || rank(x)[1] - rank(y)[1])
    this.entries.delete(all[0][0])
  }

  invalidateTag(tag: string): number {
    this.prune()
    let removed = 0
    for (const [key, entry] of Array.from(this.entries)) {
      if (entry.tags.includes(tag)) {
        this.entries.delete(key)
        removed++
      }
    }
    return removed
  }
}

export const runModel = (commands: ReadonlyArray<Command>, eviction: ModelEviction) =>
  Effect.gen(function*() {
    const cache = yield* fresh<number>(
      eviction === undefined ? {} : { maxSize: eviction.maxSize, evictionPolicy: eviction.policy }
    )
    const model = new Model(eviction)
    for (const [step, cmd] of commands.entries()) {
      const where = `step ${step}: ${JSON.stringify(cmd)}`
      switch (cmd.op) {
        case "put":
          yield* cache.put(cmd.key, cmd.value, { tags: cmd.tags, ...(cmd.ttl === undefined ? {} : { ttl: cmd.ttl }) })
          model.put(cmd.key, cmd.value, cmd.ttl, cmd.tags)
          break
        case "get": {
          const got = yield* Effect.option(cache.get(cmd.key))
          assert.deepStrictEqual(Option.getOrUndefined(got), model.read(cmd.key), where)
          break
        }
        case "getOption": {
          const got = yield* cache.getOption(cmd.key)
          assert.deepStrictEqual(Option.getOrUndefined(got), model.read(cmd.key), where)
          break
        }
        case "exists":
          assert.strictEqual(yield* cache.exists(cmd.key), model.live(cmd.key) !== undefined, where)
          break
        case "delete":
          yield* cache.delete(cmd.key)
          model.live(cmd.key)
          model.entries.delete(cmd.key)
          break
        case "invalidateTag":
          assert.strictEqual(yield* cache.invalidateTag(cmd.tag), model.invalidateTag(cmd.tag), where)
          break
        case "flush":
          yield* cache.flush()
          model.entries.clear()
          break
        case "size":
          model.prune()
          assert.strictEqual(yield* cache.size(), model.entries.size, where)
          break
        case "adjust":
          yield* TestClock.adjust(cmd.millis)
          model.now += cmd.millis
          break
        case "getMany": {
          const got = (yield* cache.getMany(cmd.keys)).map(Option.getOrUndefined)
          assert.deepStrictEqual(got, cmd.keys.map((k) => model.read(k)), where)
          break
        }
        case "putMany":
          yield* cache.putMany(cmd.entries, cmd.ttl === undefined ? {} : { ttl: cmd.ttl })
          for (const [k, value] of cmd.entries) model.put(k, value, cmd.ttl, [])
          break
        case "deleteMany": {
          const live = new Set(cmd.keys.filter((k) => model.live(k) !== undefined))
          assert.strictEqual(yield* cache.deleteMany(cmd.keys), live.size, where)
          for (const k of cmd.keys) model.entries.delete(k)
          break
        }
      }
    }
    model.prune()
    assert.strictEqual(yield* cache.size(), model.entries.size, "final size")
    for (const k of keys) {
      assert.strictEqual(Option.getOrUndefined(yield* cache.getOption(k)), model.read(k), `final ${k}`)
    }
  })
