/**
 * coldstart_bench: what a program pays before its first cache call. Import time: a fresh `node`
 * process imports one entry point and prints how long the `import()` took (module loading and
 * evaluation, without Node's own start-up), several rounds, the median quoted. Size: esbuild bundles
 * a one-line program that uses the entry point (minified, Node platform, ESM), gzipped as well; this
 * is what a serverless function or a CLI ships. lru-cache and effect alone are the yardsticks.
 * Run: `node packages/bench/dist/coldstart_bench.js`.
 */
import { build } from "esbuild"
import { execFileSync } from "node:child_process"
import { fileURLToPath } from "node:url"
import { gzipSync } from "node:zlib"
import { full, median } from "./internal/measure.js"
import type { SuiteResult, Table } from "./internal/report.js"
import { progress, renderText } from "./internal/report.js"

interface Entry {
  readonly label: string
  /** The module specifier imported. */
  readonly module: string
  /** A program that uses it, for the bundle. */
  readonly program: string
}

const entries: ReadonlyArray<Entry> = [
  {
    label: "Vela facade (@vela/core/promise)",
    module: "@vela/core/promise",
    program: `import { createCache } from "@vela/core/promise"\nglobalThis.cache = createCache()`
  },
  {
    label: "Vela Effect API (@vela/core)",
    module: "@vela/core",
    program: `import { Vela } from "@vela/core"\nglobalThis.cache = Vela.layerMemory`
  },
  {
    label: "effect (the whole index)",
    module: "effect",
    program: `import { Effect } from "effect"\nglobalThis.effect = Effect.runSync`
  },
  {
    label: "effect/Effect alone (the floor of any Effect program)",
    module: "effect/Effect",
    program: `import * as Effect from "effect/Effect"\nglobalThis.effect = Effect.runSync`
  },
  {
    label: "lru-cache",
    module: "lru-cache",
    program: `import { LRUCache } from "lru-cache"\nglobalThis.cache = new LRUCache({ max: 10 })`
  }
]

const here = fileURLToPath(new URL(".", import.meta.url))

/** Milliseconds one `import()` of `module` takes in a fresh process. */
const importMillis = (module: string): number => {
  const script = `const t = performance.now(); await import(${JSON.stringify(module)}); ` +
    `console.log(performance.now() - t)`
  return Number(execFileSync(process.execPath, ["--input-type=module", "-e", script], { cwd: here }).toString())
}

const bundleBytes = async (program: string) => {
  const result = await build({
    stdin: { contents: program, resolveDir: here, loader: "js" },
    bundle: true,
    minify: true,
    platform: "node",
    format: "esm",
    write: false,
    logLevel: "silent"
  })
  const code = result.outputFiles[0].contents
  return { minified: code.byteLength, gzipped: gzipSync(code).byteLength }
}

export const run = async (): Promise<SuiteResult> => {
  const rounds = full ? 15 : 5
  // Rounds interleave the entry points, so that a busy stretch of the machine falls on all of them.
  const times = entries.map(() => [] as Array<number>)
  for (let round = 0; round < rounds; round++) {
    progress(`coldstart: round ${round + 1} of ${rounds}`)
    entries.forEach((entry, i) => times[i].push(importMillis(entry.module)))
  }
  const measured = []
  for (const [i, entry] of entries.entries()) {
    measured.push({
      ...entry,
      importMs: median(times[i]),
      min: Math.min(...times[i]),
      max: Math.max(...times[i]),
      ...(await bundleBytes(entry.program))
    })
  }
  const kb = (bytes: number) => (bytes / 1024).toFixed(0)
  const table: Table = {
    title: `coldstart_bench: import time (median of ${rounds} fresh processes) and bundle size`,
    columns: ["entry point", "import ms", "spread ms", "bundle KB (min)", "gzipped KB"],
    rows: measured.map((m) => [
      m.label,
      m.importMs.toFixed(0),
      `${m.min.toFixed(0)}–${m.max.toFixed(0)}`,
      kb(m.minified),
      kb(m.gzipped)
    ])
  }
  return {
    name: "coldstart",
    title: "coldstart_bench: import time and bundle size",
    description: "A fresh node process per round imports the entry point and reports how long the import() took " +
      "(loading and evaluating its modules), the entry points in turn in each round; esbuild bundles a one-line program using it (minified, Node " +
      "platform, ESM), and the bundle is gzipped. lru-cache and effect alone are the yardsticks.",
    tables: [table],
    charts: [{
      file: "coldstart.svg",
      title: "coldstart_bench: import time (ms, lower is better)",
      panels: [{
        title: "import()",
        unit: "ms",
        bars: measured.map((m) => ({ label: m.label, value: m.importMs, lo: m.min, hi: m.max }))
      }]
    }],
    notes: [],
    data: measured
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  for (const table of (await run()).tables) console.log(renderText(table))
}
