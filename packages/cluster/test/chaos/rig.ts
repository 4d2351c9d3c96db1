/**
 * The chaos rig: `nodes` real node processes (test/fixtures/node.mjs, each with a near cache), each
 * behind a proxy that can partition it from another (./proxy.ts); client loops on every node doing a
 * seeded random mix of reads, puts, putMany, deletes, getOrFetch and tag invalidations; one fault at
 * a time (SIGKILL and restart, SIGSTOP past `failureTimeout` and SIGCONT, graceful leave and join,
 * a partition between two nodes or around one), each healed before the next. After the run, with
 * every fault healed and the cluster re-formed, it reads every key on every node (past and through
 * the near cache) and every node's own holdings, and checks the history (./history.ts) and the
 * holders.
 *
 * The seed fixes every choice: each client's operations, and the faults, their targets and their
 * lengths. Timing is not fixed, so a replay of a seed is the same workload and fault schedule, not
 * the same interleaving.
 */
import { HashRing } from "@vela/cluster"
import { Effect, Exit, Fiber, Schedule, Scope } from "effect"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import type { NodeProcess } from "../processes.js"
import { freePort, poll, spawnNode } from "../processes.js"
import * as History from "./history.js"
import * as Network from "./proxy.js"

export interface ChaosOptions {
  readonly seed: number
  /** How long clients run and faults are injected. */
  readonly millis: number
  readonly nodes: number
  readonly topology: "partitioned" | "replicated"
  /** Client loops per node (default 2). */
  readonly clients?: number | undefined
  /** Progress lines (default: none). */
  readonly log?: ((line: string) => void) | undefined
}

export interface Report {
  readonly options: ChaosOptions
  readonly operations: number
  readonly failed: number
  readonly faults: Readonly<Record<string, number>>
  readonly faultList: ReadonlyArray<History.Fault>
  readonly checks: number
  readonly violations: ReadonlyArray<History.Violation>
  /** Connections the proxies could not attribute to a node (never partitioned). */
  readonly unidentified: number
  /** The nodes' logs. */
  readonly logFile: string
  /** Every operation, one JSON object a line. */
  readonly historyFile: string
  /** The time operations are shown relative to. */
  readonly origin: number
}

const KEYS = Array.from({ length: 24 }, (_, i) => `k${i}`)
const tagOf = (key: string) => `g${Number(key.slice(1)) % 4}`
const FAULTS = ["kill", "stall", "leave", "partition", "isolate"] as const
/**
 * Wall-clock ms with sub-ms precision for the history: at whole ms a write invoked in the ms its read
 * completed looked no earlier than the read (a "value no one wrote" that was written).
 */
const now = () => performance.timeOrigin + performance.now()

/** A seeded generator of numbers in [0, 1) (mulberry32), one stream per `label`. */
const random = (seed: number, label: string) => {
  let state = seed >>> 0
  for (let i = 0; i < label.length; i++) state = Math.imul(state ^ label.charCodeAt(i), 0x9e3779b1) >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

interface Member {
  readonly name: string
  /** The proxy's address: the node's id, and what peers dial. */
  readonly address: string
  /** The node's own port, behind the proxy. */
  readonly port: number
  process: NodeProcess | undefined
  scope: Scope.CloseableScope | undefined
  stalled: boolean
}

interface Planned {
  readonly kind: History.Kind
  readonly command: string
  readonly args: Record<string, unknown>
  readonly keys: ReadonlyArray<string>
  readonly values?: ReadonlyArray<string>
  readonly tag?: string
}

/** The next operation of a client, from its generator; `value` names what it writes. */
const plan = (next: () => number, value: string): Planned => {
  const key = KEYS[Math.floor(next() * KEYS.length)]
  const tag = tagOf(key)
  const r = next()
  if (r < 0.25) return { kind: "nearRead", command: "read", args: { key, tag }, keys: [key] }
  if (r < 0.4) return { kind: "read", command: "read", args: { key, tag, l2: true }, keys: [key] }
  if (r < 0.6) return { kind: "put", command: "put", args: { key, value, tags: [tag] }, keys: [key], values: [value] }
  if (r < 0.68) {
    const keys = Array.from(
      new Set(Array.from({ length: 2 + Math.floor(next() * 3) }, () => KEYS[Math.floor(next() * KEYS.length)]))
    )
    const values = keys.map((_, i) => `${value}.${i}`)
    return {
      kind: "putMany",
      command: "putEntries",
      args: { entries: keys.map((k, i) => [k, values[i], [tagOf(k)]]) },
      keys,
      values
    }
  }
  if (r < 0.8) {
    return {
      kind: "getOrFetch",
      command: "getOrFetch",
      args: { key, value, tags: [tag] },
      keys: [key],
      values: [value]
    }
  }
  if (r < 0.97) return { kind: "delete", command: "delete", args: { key }, keys: [key] }
  return { kind: "invalidateTag", command: "invalidateTag", args: { tag }, keys: [], tag }
}

/** Runs the rig once and checks what happened; fails only when the rig itself cannot run. */
export const run = (options: ChaosOptions): Effect.Effect<Report, Error> =>
  Effect.scoped(Effect.gen(function*() {
    const { nodes, seed, topology } = options
    const log = options.log ?? (() => {})
    const clients = options.clients ?? 2
    const logFile = Path.join(Os.tmpdir(), `vela-chaos-${topology}-${seed}.log`)
    const logFd = yield* Effect.acquireRelease(
      Effect.try(() => Fs.openSync(logFile, "w")),
      (fd) => Effect.sync(() => Fs.closeSync(fd))
    )
    const network = yield* Effect.acquireRelease(Effect.sync(() => Network.make()), (n) => Effect.promise(n.close))
    const members: Array<Member> = []
    for (let i = 0; i < nodes; i++) {
      const port = yield* freePort
      const proxyPort = yield* Effect.tryPromise(() => network.proxy(`n${i}`, port))
      members.push({
        name: `n${i}`,
        address: `127.0.0.1:${proxyPort}`,
        port,
        process: undefined,
        scope: undefined,
        stalled: false
      })
    }

    const start = (member: Member, seeds: ReadonlyArray<string>) =>
      Effect.gen(function*() {
        const scope = yield* Scope.make()
        const started = yield* spawnNode(
          {
            PORT: String(member.port),
            ADVERTISE: member.address,
            SEEDS: seeds.join(","),
            TOPOLOGY: topology,
            REPLICAS: "1",
            NEAR: "1"
          },
          "node.mjs",
          { stderr: logFd, startTimeout: 60_000 }
        ).pipe(Scope.extend(scope), Effect.tapError(() => Scope.close(scope, Exit.void)))
        member.process = started
        member.scope = scope
      }).pipe(
        Effect.tapError((error) => Effect.sync(() => log(`chaos: ${member.name} did not start: ${error.message}`))),
        // The port may still be held for a moment after a kill.
        Effect.retry({ times: 3, schedule: Schedule.spaced("200 millis") }),
        Effect.tap(() => Effect.sync(() => log(`chaos: ${member.name} started`)))
      )
    const stop = (member: Member, graceful: boolean) =>
      Effect.gen(function*() {
        const { process, scope } = member
        member.process = undefined
        member.scope = undefined
        if (process === undefined || scope === undefined) return
        if (member.stalled) process.child.kill("SIGCONT")
        member.stalled = false
        if (!graceful) process.child.kill("SIGKILL")
        yield* Scope.close(scope, Exit.void)
      })
    const nameOf = new Map(members.map((m) => [m.address, m.name]))
    const others = (member: Member) => members.filter((m) => m !== member).map((m) => m.address)
    yield* Effect.addFinalizer(() => Effect.forEach(members, (m) => stop(m, false), { discard: true }))

    /** Waits until every node sees every node (bounded); whether it did. */
    const reformed = Effect.gen(function*() {
      const want = members.map((m) => m.address).sort().join(",")
      return yield* poll(
        Effect.forEach(members, (m) =>
          m.process === undefined
            ? Effect.fail(new Error(`${m.name} is down`))
            : Effect.flatMap(
              m.process.request<Array<string>>("members"),
              (seen) => seen.join(",") === want ? Effect.void : Effect.fail(new Error(`${m.name} sees ${seen}`))
            )),
        "30 seconds"
      ).pipe(Effect.as(true), Effect.orElseSucceed(() => false))
    })

    yield* start(members[0], [])
    yield* Effect.forEach(members.slice(1), (m) => start(m, [members[0].address]), {
      concurrency: "unbounded",
      discard: true
    })
    if (!(yield* reformed)) return yield* Effect.fail(new Error("the cluster did not form"))
    log(`chaos: seed ${seed}, ${topology}, ${nodes} nodes, ${options.millis / 1000} s; node logs in ${logFile}`)

    const origin = now()
    const until = origin + options.millis
    const history: Array<History.Op> = []
    const faults: Array<History.Fault> = []
    const rigViolations: Array<History.Violation> = []

    const client = (member: Member, c: number) =>
      Effect.gen(function*() {
        const next = random(seed, `client ${member.name} ${c}`)
        let n = 0
        while (Date.now() < until) {
          const node = member.process
          if (node === undefined) {
            yield* Effect.sleep("50 millis")
            continue
          }
          const planned = plan(next, `${member.name}c${c}-${n++}`)
          const op: History.Op = {
            id: history.length,
            node: member.name,
            kind: planned.kind,
            keys: planned.keys,
            values: planned.values,
            tag: planned.tag,
            invoke: now(),
            complete: Infinity,
            ok: false
          }
          history.push(op)
          const exit = yield* Effect.exit(node.request<any>(planned.command, planned.args))
          op.complete = now()
          if (Exit.isFailure(exit)) {
            op.error = exit.cause._tag === "Fail" ? exit.cause.error.message : "interrupted"
          } else {
            op.ok = true
            const answer = exit.value
            if (op.kind === "read" || op.kind === "nearRead") {
              op.result = answer.value
              op.dropped = answer.dropped
            } else if (op.kind === "getOrFetch") {
              op.result = answer.value
              op.fetched = answer.fetched
              op.dropped = answer.dropped
            }
          }
          yield* Effect.sleep(5 + next() * 20)
        }
      })

    const inject = Effect.gen(function*() {
      const next = random(seed, "faults")
      while (true) {
        yield* Effect.sleep(1000 + next() * 2000)
        const kind = FAULTS[Math.floor(next() * FAULTS.length)]
        const target = members[Math.floor(next() * members.length)]
        const peer = members.filter((m) => m !== target)[Math.floor(next() * (members.length - 1))]
        const hold = 1500 + next() * 2500
        if (Date.now() + hold + 2000 > until) return
        const fault: History.Fault = {
          kind,
          nodes: kind === "partition" ? [target.name, peer.name] : [target.name],
          start: now(),
          end: Infinity
        }
        faults.push(fault)
        log(`chaos: ${((fault.start - origin) / 1000).toFixed(1)} s: ${kind} ${fault.nodes.join(" ")}`)
        switch (kind) {
          case "kill":
          case "leave":
            yield* stop(target, kind === "leave")
            yield* Effect.sleep(hold)
            yield* start(target, others(target))
            break
          case "stall":
            target.stalled = true
            target.process?.child.kill("SIGSTOP")
            yield* Effect.sleep(hold)
            target.process?.child.kill("SIGCONT")
            target.stalled = false
            break
          case "partition":
          case "isolate": {
            const cut = kind === "partition" ? [peer] : members.filter((m) => m !== target)
            for (const m of cut) network.partition(target.name, m.name)
            yield* Effect.sleep(hold)
            for (const m of cut) network.heal(target.name, m.name)
            break
          }
        }
        if (!(yield* reformed)) {
          rigViolations.push({
            check: "cluster did not re-form",
            key: "",
            message: `30 s after the ${kind} of ${fault.nodes.join(" ")} was healed, not every node saw every node`,
            ops: []
          })
          return
        }
        fault.end = now()
      }
    })

    const running = yield* Effect.forkScoped(
      Effect.all(members.flatMap((m) => Array.from({ length: clients }, (_, c) => client(m, c))), {
        concurrency: "unbounded",
        discard: true
      })
    )
    yield* inject
    yield* Fiber.join(running)

    // Quiescence: every node back, every node sees every node, then time for handoffs and repair.
    for (const member of members) if (member.process === undefined) yield* start(member, others(member))
    const settled = yield* reformed
    yield* Effect.sleep("3 seconds")
    log(`chaos: ${history.length} operations, ${faults.length} faults; checking`)

    const request = <A>(member: Member, command: string, args: Record<string, unknown>) =>
      member.process === undefined
        ? Effect.fail(new Error(`${member.name} is down`))
        : member.process.request<A>(command, args)
    const finals = new Map<string, Array<{ readonly node: string; readonly state: string | null }>>()
    /** Each node's own copy of each key: the text its writer encoded. */
    const held = new Map<string, Array<{ readonly node: string; readonly held: string | null }>>()
    let checks = 0
    if (settled) {
      const seen = yield* Effect.forEach(members, (member) =>
        Effect.all({
          holdings: request<Array<string | null>>(member, "held", { keys: KEYS }),
          reads: Effect.forEach(KEYS, (key) =>
            Effect.all({
              past: request<{ value: string | null }>(member, "read", { key, tag: tagOf(key), l2: true }),
              near: request<{ value: string | null }>(member, "read", { key, tag: tagOf(key) })
            }), { concurrency: 8 })
        }), { concurrency: "unbounded" })
      for (const [m, member] of members.entries()) {
        const { holdings, reads } = seen[m]
        for (const [i, key] of KEYS.entries()) {
          const { near, past } = reads[i]
          checks++
          if (near.value !== past.value) {
            rigViolations.push({
              check: "near cache disagrees with L2",
              key,
              message: `${member.name}'s near cache has ${JSON.stringify(near.value)}, its L2 ${
                JSON.stringify(past.value)
              }`,
              ops: []
            })
          }
          finals.set(key, [...(finals.get(key) ?? []), { node: member.name, state: past.value }])
          held.set(key, [...(held.get(key) ?? []), { node: member.name, held: holdings[i] }])
        }
      }
      // Partitioned: the holders of each key by the ring of every member, as the nodes route.
      const ring = HashRing.make(members.map((m) => m.address))
      const holderNames = (key: string) => HashRing.holders(ring, key, 2).map((address) => nameOf.get(address)!)
      for (const key of KEYS) {
        checks++
        const all = held.get(key)!
        const shown = all.map((h) => `${h.node}: ${h.held ?? "-"}`).join(", ")
        const holders = topology === "replicated" ? all : all.filter((h) => holderNames(key).includes(h.node))
        const distinct = new Set(holders.map((h) => h.held))
        if (distinct.size > 1) {
          rigViolations.push({
            check: "holders disagree",
            key,
            message: topology === "replicated" ? shown : `holders ${holderNames(key).join(" ")}; ${shown}`,
            ops: []
          })
        }
        const strays = all.filter((h) => h.held !== null && !holders.includes(h))
        if (strays.length > 0) {
          rigViolations.push({
            check: "stray copy",
            key,
            message: `held by ${strays.map((h) => h.node).join(" ")}, not holders of it (${
              holderNames(key).join(" ")
            }): ${shown}`,
            ops: []
          })
        }
        const read = finals.get(key)![0].state
        const kept = holders[0].held === null ? null : JSON.parse(holders[0].held)
        if (distinct.size === 1 && kept !== read) {
          rigViolations.push({
            check: "reads disagree with holders",
            key,
            message: `reads ${JSON.stringify(read)}; ${shown}`,
            ops: []
          })
        }
      }
    } else {
      rigViolations.push({
        check: "cluster did not re-form",
        key: "",
        message: "after every fault was healed, not every node saw every node within 30 s",
        ops: []
      })
    }
    const checked = History.check({ history, faults, keys: KEYS, tagOf, finals })
    const historyFile = Path.join(Os.tmpdir(), `vela-chaos-${topology}-${seed}.history.jsonl`)
    yield* Effect.try(() => Fs.writeFileSync(historyFile, history.map((op) => JSON.stringify(op) + "\n").join("")))
    const counts: Record<string, number> = {}
    for (const fault of faults) counts[fault.kind] = (counts[fault.kind] ?? 0) + 1
    return {
      options,
      operations: history.length,
      failed: history.filter((op) => !op.ok).length,
      faults: counts,
      faultList: faults,
      checks: checks + checked.checks,
      violations: [...rigViolations, ...checked.violations],
      unidentified: network.unidentified(),
      logFile,
      historyFile,
      origin
    }
  }))

/** The report as lines: the seed, the counts, then every violation with the operations involved. */
export const format = (report: Report): Array<string> => {
  const { options } = report
  const seconds = (t: number) => Number.isFinite(t) ? `${((t - report.origin) / 1000).toFixed(3)}s` : "never"
  const faults = Object.entries(report.faults).map(([kind, n]) => `${kind} ${n}`).join(", ") || "none"
  return [
    `chaos seed ${options.seed}: ${options.topology}, ${options.nodes} nodes, ${options.millis / 1000} s`,
    `  operations ${report.operations} (${report.failed} failed), faults ${faults}, checks ${report.checks}, ` +
    `violations ${report.violations.length}`,
    ...report.faultList.map((fault) =>
      `  fault ${fault.kind} ${fault.nodes.join(" ")}: ${seconds(fault.start)} .. ${seconds(fault.end)}`
    ),
    ...(report.unidentified > 0 ? [`  ${report.unidentified} proxied connections not attributed to a node`] : []),
    ...report.violations.flatMap((v) => [
      `  VIOLATION ${v.check}${v.key === "" ? "" : ` (${v.key})`}: ${v.message}`,
      ...v.ops.map((op) => `    ${History.describeOp(op, report.origin)}`)
    ]),
    ...(report.violations.length > 0
      ? [
        `  history in ${report.historyFile}, node logs in ${report.logFile}`,
        `  replay: npm run chaos -- --seed ${options.seed} --topology ${options.topology} --nodes ${options.nodes}`
      ]
      : [])
  ]
}
