/**
 * stampede_bench: 10,000 concurrent getOrFetch calls on one cold key whose fetch takes 20 ms, started
 * in one synchronous burst. Per contender: how many times the fetch ran, how many callers got a
 * wrong answer or an error, and how long callers waited (p50, p99, max, from each caller's own
 * call). In one process for every contender (in-process and over Redis), then across 3 processes
 * (children running `packages/bench/scripts/stampede_child.mjs`, 3,334 callers each) over one Redis:
 * Vela's distributed single flight (the Redis store's lease) beside bentocache and raw ioredis.
 * In process, a floor row parks each caller's fiber with `Effect.async` and nothing else: the
 * runtime's own cost, under which no Effect API that gives each caller a fiber can wait.
 * Each run uses a key nobody has read. Run: `npm run bench -- stampede`.
 */
import { Effect } from "effect"
import { fileURLToPath } from "node:url"
import { forkAll } from "./internal/children.js"
import type { Contender, Factory, Value } from "./internal/contenders.js"
import * as Drive from "./internal/drive.js"
import type { Env } from "./internal/env.js"
import * as InProcessContenders from "./internal/inProcessContenders.js"
import { collect, full, percentile } from "./internal/measure.js"
import * as RemoteContenders from "./internal/remoteContenders.js"
import type { Chart, SuiteResult, Table } from "./internal/report.js"
import { fmtMs, message, progress } from "./internal/report.js"

/** The floor's one fetch of a key, and the callers parked until it answers. */
interface Flight {
  value: Value | undefined
  readonly parked: Array<(answer: Effect.Effect<Value>) => void>
}

/**
 * The lower bound of any Effect API here: one fetch, and each caller's fiber parked by `Effect.async`
 * until it answers, with nothing else (no store, no timeout, no counting). What it waits is what the
 * runtime costs to start and resume 10,000 fibers.
 */
const fiberFloor: Factory = {
  name: "Effect fibers (floor)",
  group: "in-process",
  make: async () => {
    const flights = new Map<string, Flight>()
    return {
      name: "Effect fibers (floor)",
      group: "in-process",
      floor: true,
      usage: "one fetch per key, callers parked with Effect.async: no cache, the runtime's own cost",
      api: {
        _tag: "effect",
        ops: {
          get: () => Effect.succeedNone,
          set: () => Effect.void,
          getOrFetch: (key, fetch) =>
            Effect.suspend(() => {
              let flight = flights.get(key)
              if (flight?.value !== undefined) return Effect.succeed(flight.value)
              if (flight === undefined) {
                const started: Flight = { value: undefined, parked: [] }
                flights.set(key, flight = started)
                void Effect.runPromise(fetch(key)).then((value) => {
                  started.value = value
                  for (const resume of started.parked) resume(Effect.succeed(value))
                })
              }
              const parked = flight.parked
              return Effect.async<Value>((resume) => {
                parked.push(resume)
              })
            })
        }
      },
      close: async () => flights.clear()
    }
  }
}

const CALLERS = 10_000
const FETCH_MILLIS = 20
const PROCESSES = 3
const RUNS = full ? 3 : 1

/** Contenders run across processes; cache-manager needs a Keyv Redis store, which is not installed. */
export const CROSS_PROCESS = [
  "Vela Redis (facade)",
  "Vela Redis (Effect)",
  "Vela near+Redis (facade)",
  "bentocache (redis)",
  "bentocache (memory+redis)",
  "ioredis (raw)"
] as const

interface Row {
  readonly setting: string
  readonly contender: string
  /** Fetch runs of each run. */
  readonly fetches: ReadonlyArray<number>
  readonly wrong: number
  readonly errors: ReadonlyArray<string>
  readonly p50: number
  readonly p99: number
  readonly max: number
  readonly failed?: string | undefined
}

const summarize = (
  setting: string,
  contender: string,
  runs: ReadonlyArray<{ fetches: number; wrong: number; errors: ReadonlyArray<string>; waits: Float64Array }>
): Row => {
  const waits = new Float64Array(runs.reduce((n, run) => n + run.waits.length, 0))
  let offset = 0
  for (const run of runs) {
    waits.set(run.waits, offset)
    offset += run.waits.length
  }
  const wrong = runs.reduce((n, run) => n + run.wrong, 0)
  return {
    setting,
    contender,
    fetches: runs.map((run) => run.fetches),
    wrong,
    errors: [...new Set(runs.flatMap((run) => run.errors))],
    p50: percentile(waits, 50),
    p99: percentile(waits, 99),
    max: waits.length === 0 ? NaN : waits[waits.length - 1],
    failed: wrong > 0 ? `${wrong} wrong answers or errors` : undefined
  }
}

const inOneProcess = async (setting: string, factory: Factory, rows: Array<Row>) => {
  const runs = []
  for (let run = 0; run < RUNS; run++) {
    progress(`stampede: ${setting} · ${factory.name} · run ${run + 1}/${RUNS}`)
    let contender: Contender
    try {
      contender = await factory.make()
    } catch (error) {
      rows.push({ ...failedRow(setting, factory.name), failed: `left out: ${message(error)}` })
      return
    }
    try {
      runs.push(await Drive.stampede(contender, `stampede:${Date.now()}:${run}`, CALLERS, FETCH_MILLIS))
    } catch (error) {
      rows.push({ ...failedRow(setting, factory.name), failed: `threw ${message(error)}` })
      return
    } finally {
      await contender.close().catch(() => {})
      collect()
    }
  }
  rows.push(summarize(setting, factory.name, runs))
}

const failedRow = (setting: string, contender: string): Row => ({
  setting,
  contender,
  fetches: [],
  wrong: 0,
  errors: [],
  p50: NaN,
  p99: NaN,
  max: NaN
})

interface ChildResult {
  readonly fetches: number
  readonly wrong: number
  readonly errors: ReadonlyArray<string>
  readonly waits: ReadonlyArray<number>
}

/** One run across `PROCESSES` children: all build their contender, then all start at one signal. */
const acrossProcesses = async (url: string, contender: string, key: string): Promise<ReadonlyArray<ChildResult>> => {
  const script = fileURLToPath(new URL("../scripts/stampede_child.mjs", import.meta.url))
  const callers = Math.ceil(CALLERS / PROCESSES)
  const children = forkAll(
    script,
    Array.from({ length: PROCESSES }, () => [contender, url, key, String(callers), String(FETCH_MILLIS)])
  )
  const timer = setTimeout(children.kill, 60_000)
  try {
    await children.all("ready")
    const results = children.all("result")
    children.send({ type: "go" })
    return (await results) as Array<ChildResult>
  } finally {
    clearTimeout(timer)
    await children.stopped(5_000)
  }
}

const table = (title: string, rows: ReadonlyArray<Row>): Table => ({
  title,
  columns: ["contender", "fetches", "wrong", "wait p50", "wait p99", "wait max"],
  rows: rows.map((row) =>
    row.failed !== undefined && row.fetches.length === 0
      ? [row.contender, `FAILED: ${row.failed}`, "", "", "", ""]
      : [
        row.contender,
        row.fetches.join(", "),
        row.failed === undefined ? "0" : `FAILED: ${row.wrong}${row.errors.length > 0 ? ` (${row.errors[0]})` : ""}`,
        fmtMs(row.p50),
        fmtMs(row.p99),
        fmtMs(row.max)
      ]
  )
})

export const run = async (env: Env): Promise<SuiteResult> => {
  const rows: Array<Row> = []
  const notes: Array<string> = []
  for (const factory of [...InProcessContenders.inProcess(1_000), fiberFloor]) {
    await inOneProcess("in process", factory, rows)
  }
  const redis = await env.redis()
  if ("url" in redis) {
    for (const factory of RemoteContenders.onRedis(redis.url, 1_000)) {
      await inOneProcess("over Redis, 1 process", factory, rows)
    }
    for (const name of CROSS_PROCESS) {
      const runs = []
      let failed: string | undefined
      for (let run = 0; run < RUNS && failed === undefined; run++) {
        progress(`stampede: ${PROCESSES} processes · ${name} · run ${run + 1}/${RUNS}`)
        try {
          const results = await acrossProcesses(redis.url, name, `stampede:x:${Date.now()}:${run}`)
          runs.push({
            fetches: results.reduce((n, r) => n + r.fetches, 0),
            wrong: results.reduce((n, r) => n + r.wrong, 0),
            errors: results.flatMap((r) => r.errors),
            waits: Float64Array.from(results.flatMap((r) => r.waits))
          })
        } catch (error) {
          failed = message(error)
        }
      }
      const setting = `over Redis, ${PROCESSES} processes`
      rows.push(
        failed === undefined
          ? summarize(setting, name, runs)
          : { ...failedRow(setting, name), failed: `threw ${failed}` }
      )
    }
    notes.push(
      "cache-manager across processes: not measured — its Redis store is a Keyv adapter (@keyv/redis), which is not " +
        "installed; in process it is measured with its default memory store."
    )
  } else {
    notes.push(`Redis rows not measured: ${redis.error}.`)
  }
  const vela = rows.filter((row) => row.contender.startsWith("Vela"))
  const notOne = vela.filter((row) => row.fetches.length === 0 || row.fetches.some((n) => n !== 1))
  notes.push(
    `Goal: 1 fetch for Vela in every row — ${
      notOne.length === 0
        ? "met"
        : `MISSED: ${
          notOne.map((row) => `${row.contender} ${row.setting}: ${row.fetches.join(", ") || row.failed}`).join("; ")
        }`
    }.`
  )
  // Issue 18: the Effect API's p50 at most half Effect Cache's; the floor shows how low any fiber-per-caller API goes.
  const p50Of = (contender: string) =>
    rows.find((row) => row.setting === "in process" && row.contender === contender)?.p50
  const [velaP50, effectCacheP50, floorP50] = ["Vela (Effect)", "Effect Cache", fiberFloor.name].map(p50Of)
  if (velaP50 !== undefined && effectCacheP50 !== undefined && floorP50 !== undefined) {
    const ratio = velaP50 / effectCacheP50
    notes.push(
      `Goal: Vela (Effect) wait p50 at most half Effect Cache's in process — ${ratio <= 0.5 ? "met" : "MISSED"}: ` +
        `${fmtMs(velaP50)} vs ${fmtMs(effectCacheP50)} (${ratio.toFixed(2)}×); fibers parked with nothing else ` +
        `(the floor) wait ${fmtMs(floorP50)} (${(floorP50 / effectCacheP50).toFixed(2)}×).`
    )
  }
  const settings = [...new Set(rows.map((row) => row.setting))]
  const chart: Chart = {
    file: "stampede.svg",
    title: `stampede_bench: ${CALLERS.toLocaleString("en-US")} concurrent getOrFetch of one cold key, 20 ms fetch`,
    panels: settings.flatMap((setting) => {
      const of = rows.filter((row) => row.setting === setting)
      const bar = (row: Row, value: number) =>
        row.fetches.length === 0 ? { label: row.contender, value: 0, note: `FAILED: ${row.failed}` } : {
          label: row.contender,
          value
        }
      return [
        {
          title: `${setting}: fetches run (lower is better)`,
          unit: "fetches",
          bars: of.map((row) => bar(row, Math.max(...row.fetches)))
        },
        { title: `${setting}: caller wait p99 (lower is better)`, unit: "ms", bars: of.map((row) => bar(row, row.p99)) }
      ]
    })
  }
  return {
    name: "stampede",
    title: "stampede_bench: one cold key, 10,000 callers",
    description: `${CALLERS.toLocaleString("en-US")} concurrent getOrFetch calls of one cold key; the fetch sleeps ` +
      `${FETCH_MILLIS} ms. fetches: how many times the fetch ran (one figure per run; ${RUNS} run${
        RUNS > 1 ? "s" : ""
      }); waits are from each caller's own call to its answer, over all runs. Across processes: ${PROCESSES} ` +
      `child processes of ${Math.ceil(CALLERS / PROCESSES).toLocaleString("en-US")} callers each, started by one ` +
      "signal, sharing one redis-server. Contenders without a read-through of their own use get → fetch → set.",
    tables: settings.map((setting) =>
      table(`stampede_bench · ${setting}`, rows.filter((row) => row.setting === setting))
    ),
    charts: [chart],
    notes,
    data: { rows, callers: CALLERS, fetchMillis: FETCH_MILLIS, processes: PROCESSES, runs: RUNS }
  }
}
