// The Vela cluster demo: three processes on loopback with the Replicated topology. It shows a write
// on one node read on the others, a tag invalidation, a node killed (SIGKILL) with nothing lost,
// and a node joining, then stops every process and exits. Run after `npm run build`:
//   node examples/cluster/demo.mjs
import * as ChildProcess from "node:child_process"
import * as Readline from "node:readline"
import { fileURLToPath } from "node:url"

const script = fileURLToPath(new URL("./node.mjs", import.meta.url))
const children = new Set()
const started = Date.now()
const log = (text) => console.log(`[${((Date.now() - started) / 1000).toFixed(1).padStart(5)} s] ${text}`)

/** Starts a node process; resolves once it listens, with a way to send it commands. */
const spawn = (name, env) =>
  new Promise((resolve, reject) => {
    const child = ChildProcess.spawn(process.execPath, [script], {
      env: { ...process.env, PORT: "0", ...env },
      stdio: ["pipe", "pipe", "inherit"]
    })
    children.add(child)
    const pending = new Map()
    let next = 0
    child.on("exit", () => {
      children.delete(child)
      for (const answer of pending.values()) answer({ error: `${name} exited` })
      reject(new Error(`${name} exited before it was ready`))
    })
    Readline.createInterface({ input: child.stdout }).on("line", (line) => {
      const message = JSON.parse(line)
      if ("ready" in message) {
        const request = (op, args = {}) =>
          new Promise((ok, fail) => {
            const id = next++
            pending.set(id, (reply) => reply.error === undefined ? ok(reply.ok) : fail(new Error(reply.error)))
            child.stdin.write(JSON.stringify({ id, op, args }) + "\n")
          })
        resolve({ name, id: message.ready, child, request })
        return
      }
      const answer = pending.get(message.id)
      pending.delete(message.id)
      answer?.(message)
    })
  })

/** Asks a node to leave gracefully (stdin closes), and kills it if it has not left after 3 s. */
const stop = (node) =>
  new Promise((resolve) => {
    if (node.child.exitCode !== null || node.child.signalCode !== null) return resolve()
    const timer = setTimeout(() => node.child.kill("SIGKILL"), 3_000)
    node.child.once("exit", () => {
      clearTimeout(timer)
      resolve()
    })
    node.child.stdin.end()
  })

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

/** Waits until `node` sees exactly `expected` as live members (at most 15 s). */
const members = async (node, expected) => {
  const want = expected.map((n) => n.id).sort().join(",")
  for (let i = 0; i < 300; i++) {
    if ((await node.request("members")).join(",") === want) return
    await sleep(50)
  }
  throw new Error(`${node.name} did not see ${want}`)
}

const main = async () => {
  log("starting node A")
  const a = await spawn("A", {})
  log(`A listens at ${a.id}; starting B and C with A as their seed`)
  const [b, c] = await Promise.all([spawn("B", { SEEDS: a.id }), spawn("C", { SEEDS: a.id })])
  await Promise.all([a, b, c].map((n) => members(n, [a, b, c])))
  log(`cluster of three: A ${a.id}, B ${b.id}, C ${c.id}`)

  await a.request("putUsers", { from: 0, count: 1000 })
  log("A wrote user:0 … user:999 (tags even/odd); each put returns once B and C applied it")
  log(`B reads user:42 from its own memory: ${JSON.stringify(await b.request("get", { key: "user:42" }))}`)
  log(`C reads user:999 from its own memory: ${JSON.stringify(await c.request("get", { key: "user:999" }))}`)
  for (const node of [a, b, c]) log(`${node.name} holds ${await node.request("size")} entries`)

  const removed = await c.request("invalidateTag", { tag: "odd" })
  log(`C invalidated tag "odd": ${removed} entries removed`)
  for (const node of [a, b, c]) {
    log(`${node.name}: size ${await node.request("size")}, user:43 is ${await node.request("get", { key: "user:43" })}`)
  }

  log(`killing B with SIGKILL (no goodbye)`)
  b.child.kill("SIGKILL")
  await Promise.all([members(a, [a, c]), members(c, [a, c])])
  log("A and C noticed B is gone")
  await c.request("putUsers", { from: 1000, count: 500 })
  log("C wrote user:1000 … user:1499 while B is down")
  for (const node of [a, c]) {
    log(
      `${node.name} reads ${await node.request("countUsers", {
        from: 0,
        count: 1500
      })} of 1500 users (odd ones below 1000 were invalidated)`
    )
  }

  log("starting node D with C as its seed: it copies the state before it serves")
  const d = await spawn("D", { SEEDS: c.id })
  log(
    `D is up at ${d.id} and reads ${await d.request("countUsers", {
      from: 0,
      count: 1500
    })} of 1500 users, size ${await d.request("size")}`
  )
  log(`D reads user:1234: ${JSON.stringify(await d.request("get", { key: "user:1234" }))}`)
  await Promise.all([a, c, d].map((n) => members(n, [a, c, d])))
  log("A, C and D see each other; stopping them gracefully")
  await Promise.all([a, c, d].map(stop))
  log("done: every write was read on every live node, and the kill lost nothing")
}

// The demo never runs longer than this, whatever happens.
const deadline = setTimeout(() => {
  console.error("demo: took longer than 50 s, stopping")
  for (const child of children) child.kill("SIGKILL")
  process.exit(1)
}, 50_000)
process.on("exit", () => {
  for (const child of children) child.kill("SIGKILL")
})

main().then(
  () => {
    clearTimeout(deadline)
    process.exit(0)
  },
  (error) => {
    console.error("demo failed:", error)
    for (const child of children) child.kill("SIGKILL")
    process.exit(1)
  }
)
