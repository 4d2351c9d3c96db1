/**
 * Several real `node` processes on one database file: restarts, SIGKILL, concurrent writers and
 * files that cannot be opened. The children run the built packages (`npm run build` first).
 */
import { assert, describe, it } from "@effect/vitest"
import { Sqlite } from "@vela/backend-sqlite"
import { Local, Vela } from "@vela/core"
import { Effect, Fiber, Layer, Option } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import type { Line } from "./utils/child.js"
import { runChild, spawnChild, tempDir, unprivileged } from "./utils/child.js"

const last = (lines: ReadonlyArray<Line>) => lines[lines.length - 1]

/** A cache on `filename`, living as long as the current scope. */
const cacheOn = (filename: string, name: string) =>
  Effect.flatMap(
    Layer.build(Local.layer.pipe(Layer.provide(Sqlite.layer({ filename })))),
    (context) => Effect.provide(Vela.make<number>({ name }), context)
  )

describe("Sqlite across processes", () => {
  it.scopedLive(
    "a restart keeps entries, tags and TTLs; what expired while down is gone",
    () =>
      Effect.gen(function*() {
        const file = path.join(yield* tempDir, "restart.db")
        yield* runChild(["write", file, "users", "0", "20", "infinity", "5"])
        const short = last(yield* runChild(["write", file, "users", "20", "10", "300", "5"]))
        yield* runChild(["write", file, "users", "30", "10", "3600000", "5"])
        // Wait (outside any assertion) until the short TTLs have passed on the wall clock.
        const wait = short.now + 300 - Date.now()
        if (wait > 0) yield* Effect.sleep(wait + 20)

        const read = last(yield* runChild(["read", file, "users", "40"]))
        assert.strictEqual(read.size, 30)
        for (let i = 0; i < 40; i++) {
          const entry = read.entries[`k${i}`]
          if (i >= 20 && i < 30) {
            assert.isUndefined(entry, `k${i} expired while no process was running`)
            continue
          }
          assert.deepStrictEqual(entry.value, {
            i,
            namespace: "users",
            at: new Date(1_700_000_000_000 + i).toISOString(),
            tag: i % 2 ? "odd" : "even"
          })
          assert.deepStrictEqual(entry.tags, [i % 2 ? "odd" : "even", "all"])
          if (i < 20) assert.isNull(entry.expiresAt)
          else assert.isAbove(entry.expiresAt, Date.now() + 3_000_000)
        }
        // Tags survived too: 15 live "even" entries (10 of the first 20, 5 of the last 10).
        const invalidated = last(yield* runChild(["invalidate", file, "users", "even"]))
        assert.deepStrictEqual(invalidated, { removed: 15, size: 15 })
        assert.strictEqual(last(yield* runChild(["read", file, "other-cache", "40"])).size, 0)
      }),
    60_000
  )

  it.scopedLive("SIGKILL after acknowledged puts loses none of them", () =>
    Effect.gen(function*() {
      const file = path.join(yield* tempDir, "kill.db")
      const writer = yield* spawnChild(["forever", file, "crash", "32"])
      yield* Effect.promise(() => writer.until((line) => line.ack !== undefined && line.ack >= 1_500))
      writer.process.kill("SIGKILL")
      const { signal } = yield* Effect.promise(() => writer.exited)
      assert.strictEqual(signal, "SIGKILL")
      const acked = writer.lines.filter((line) => line.ack !== undefined).map((line) => line.ack as number)
      assert.isAtLeast(acked.length, 1_500)
      const highest = Math.max(...acked)

      const read = last(yield* runChild(["read", file, "crash", String(highest + 1)]))
      for (const i of acked) assert.strictEqual(read.entries[`k${i}`]?.value.i, i, `acknowledged k${i}`)
      assert.isAtLeast(read.size, acked.length)
    }), 60_000)

  it.scopedLive(
    "two processes write one file at once; every acknowledged write of both lands",
    () =>
      Effect.gen(function*() {
        const file = path.join(yield* tempDir, "shared.db")
        // Each writes until killed, so each is still writing while the other is.
        const a = yield* spawnChild(["forever", file, "shared", "16", "0"])
        const b = yield* spawnChild(["forever", file, "shared", "16", "100000"])
        yield* Effect.promise(() =>
          Promise.all([
            a.until((line) => line.ack >= 1_000),
            b.until((line) => line.ack >= 101_000)
          ])
        )
        for (const child of [a, b]) child.process.kill("SIGKILL")
        yield* Effect.promise(() => Promise.all([a.exited, b.exited]))
        const acked = (lines: ReadonlyArray<Line>) => lines.filter((line) => line.ack !== undefined).map((l) => l.ack)
        for (const [child, from] of [[a, 0], [b, 100_000]] as const) {
          const acks = acked(child.lines)
          const read = last(
            yield* runChild(["read", file, "shared", String(Math.max(...acks) - from + 1), String(from)])
          )
          for (const i of acks) assert.strictEqual(read.entries[`k${i}`]?.value.i, i, `acknowledged k${i}`)
        }
        const size = last(yield* runChild(["read", file, "shared", "0"])).size
        assert.isAtLeast(size, acked(a.lines).length + acked(b.lines).length)
      }),
    60_000
  )

  it.scopedLive(
    "three processes incrementing one key at once lose no increment",
    () =>
      Effect.gen(function*() {
        const file = path.join(yield* tempDir, "increment.db")
        const each = 200
        const at = String(Date.now() + 3_000)
        const lines = yield* Effect.all(
          [1, 2, 3].map(() => runChild(["increment", file, "counter", String(each), at])),
          {
            concurrency: "unbounded"
          }
        )
        // Every increment saw its own sum: 1 to 600, each once.
        const sums = lines.flatMap((child) => last(child).sums as Array<number>).sort((a, b) => a - b)
        assert.deepStrictEqual(sums, Array.from({ length: 3 * each }, (_, i) => i + 1))
        const cache = yield* cacheOn(file, "counter")
        assert.strictEqual(yield* cache.get("n"), 3 * each)
      }),
    60_000
  )

  it.scopedLive(
    "three processes taking the same keys at once: each key goes to exactly one",
    () =>
      Effect.gen(function*() {
        const file = path.join(yield* tempDir, "take.db")
        const keys = Array.from({ length: 100 }, (_, i) => `k${i}`)
        const cache = yield* cacheOn(file, "queue")
        yield* cache.putMany(keys.map((key, i) => [key, i] as const), { tags: ["all"] })
        const at = String(Date.now() + 3_000)
        const lines = yield* Effect.all(
          [1, 2, 3].map(() => runChild(["take", file, "queue", String(keys.length), at])),
          { concurrency: "unbounded" }
        )
        const won = lines.flatMap((child) => last(child).won as Array<string>).sort()
        assert.deepStrictEqual(won, [...keys].sort())
        assert.strictEqual(yield* cache.size(), 0)
        assert.strictEqual(yield* cache.invalidateTag("all"), 0)
      }),
    60_000
  )

  it.scopedLive(
    "a write waits for another process's lock, then fails with BackendError past busyTimeout",
    () =>
      Effect.gen(function*() {
        const file = path.join(yield* tempDir, "busy.db")
        const context = yield* Layer.build(
          Local.layer.pipe(Layer.provide(Sqlite.layer({ filename: file, busyTimeout: "1 second" })))
        )
        const cache = yield* Effect.provide(Vela.make<string>({ name: "busy" }), context)
        yield* cache.put("before", "v")
        const locker = yield* spawnChild(["lock", file])
        yield* Effect.promise(() => locker.until((line) => line.locked === true))

        const during = yield* Effect.fork(cache.put("during", "v"))
        // While the put waits for the lock, the event loop runs: timers fire, reads are served.
        yield* Effect.sleep("50 millis")
        assert.strictEqual(yield* cache.get("before"), "v")
        assert.isTrue(Option.isNone(yield* Fiber.poll(during)))
        const error = yield* Effect.flip(Fiber.join(during))
        assert.strictEqual(error._tag, "BackendError")
        assert.strictEqual(error._tag === "BackendError" && error.operation, "put")
        assert.include(error.message, file)
        assert.include(error.message, "locked")

        locker.process.kill("SIGKILL")
        yield* Effect.promise(() => locker.exited)
        yield* cache.put("after", "v")
        assert.isFalse(yield* cache.exists("during"))
        assert.strictEqual(yield* cache.size(), 2)
      }),
    60_000
  )

  it.scopedLive(
    "a corrupt file is a BackendError naming the file, in a fresh process too",
    () =>
      Effect.gen(function*() {
        const dir = yield* tempDir
        const garbage = path.join(dir, "garbage.db")
        fs.writeFileSync(garbage, "this is not a database, ".repeat(400))
        const opened = last(yield* runChild(["open", garbage], {}, 2))
        assert.strictEqual(opened.error, "BackendError")
        assert.strictEqual(opened.operation, "configure")
        assert.include(opened.message, garbage)
        assert.include(opened.message, "not a database")
        // The file is left as it was: nothing was written over it.
        assert.strictEqual(fs.readFileSync(garbage, "utf8"), "this is not a database, ".repeat(400))
      }),
    60_000
  )

  it.scopedLive.skipIf(unprivileged === undefined)(
    "read-only and unreadable files are a BackendError at open, not at the first put",
    () =>
      Effect.gen(function*() {
        const dir = yield* tempDir
        const file = path.join(dir, "readonly.db")
        yield* runChild(["write", file, "ro", "0", "3", "infinity", "1"])
        fs.chmodSync(file, 0o444)
        fs.chmodSync(dir, 0o755)
        const as = unprivileged!
        const opened = last(yield* runChild(["open", file], as, 2))
        assert.strictEqual(opened.error, "BackendError")
        assert.include(["configure", "migrate"], opened.operation)
        assert.include(opened.message, file)
        assert.include(opened.message, "readonly")

        // A file the process may not read at all fails at the first step.
        const unreadable = path.join(dir, "unreadable.db")
        fs.copyFileSync(file, unreadable)
        fs.chmodSync(unreadable, 0o000)
        const refused = last(yield* runChild(["open", unreadable], as, 2))
        assert.strictEqual(refused.error, "BackendError")
        assert.strictEqual(refused.operation, "open")
        assert.include(refused.message, unreadable)
      }),
    60_000
  )
})
