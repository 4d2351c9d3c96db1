// One Vela node of the cluster demo: a ClusterNode on 127.0.0.1, the Replicated topology over a
// Memory backend, and a `users` cache. The demo (demo.mjs) drives it with JSON lines on stdin and
// reads one JSON answer per line on stdout. Env: PORT (0 = any free port), SEEDS, VELA_SECRET.
// It leaves the cluster gracefully when stdin closes.
import { ClusterNode, Replicated } from "@vela/cluster"
import { Memory, Vela } from "@vela/core"
import { Context, Effect, Exit, Layer, Option, Redacted } from "effect"
import * as Readline from "node:readline"

class Users extends Context.Tag("Users")() {}

const NodeLive = ClusterNode.layer({
  host: "127.0.0.1",
  port: Number(process.env.PORT ?? 0),
  seeds: process.env.SEEDS ? process.env.SEEDS.split(",") : [],
  secret: Redacted.make(process.env.VELA_SECRET ?? "demo-secret"),
  heartbeatInterval: "200 millis",
  failureTimeout: "1 second"
})

// A node with seeds copies the cluster's state while this layer is built, before any read.
const UsersLive = Vela.layer(Users, { name: "users", defaultTtl: "10 minutes" }).pipe(
  Layer.provide(Replicated.layer({ antiEntropyInterval: "1 second" })),
  Layer.provideMerge(NodeLive),
  Layer.provide(Memory.layer())
)

const write = (message) => process.stdout.write(JSON.stringify(message) + "\n")
const range = (from, count) => Array.from({ length: count }, (_, i) => from + i)

const program = Effect.gen(function*() {
  const users = yield* Users
  const node = yield* ClusterNode.ClusterNode
  const commands = {
    members: () => node.members.get,
    putUsers: ({ from, count }) =>
      Effect.forEach(
        range(from, count),
        (i) => users.put(`user:${i}`, { id: i, name: `user ${i}` }, { tags: [i % 2 === 0 ? "even" : "odd"] }),
        { concurrency: 32, discard: true }
      ),
    get: ({ key }) => Effect.map(users.getOption(key), Option.getOrNull),
    // How many of user:from … user:(from + count - 1) this node reads, from its own memory.
    countUsers: ({ from, count }) =>
      Effect.map(
        Effect.forEach(range(from, count), (i) => users.getOption(`user:${i}`)),
        (found) => found.filter(Option.isSome).length
      ),
    invalidateTag: ({ tag }) => users.invalidateTag(tag),
    size: () => users.size()
  }
  const lines = Readline.createInterface({ input: process.stdin })
  write({ ready: node.id })
  yield* Effect.async((resume) => {
    lines.on("line", (line) => {
      const { args, id, op } = JSON.parse(line)
      Effect.runPromiseExit(commands[op](args ?? {})).then((exit) =>
        write(Exit.isSuccess(exit) ? { id, ok: exit.value ?? null } : { id, error: String(exit.cause) })
      )
    })
    lines.on("close", () => resume(Effect.void))
  })
})

Effect.runPromise(Effect.scoped(Effect.provide(program, UsersLive))).then(
  () => process.exit(0),
  (error) => {
    console.error(error)
    process.exit(1)
  }
)
