/**
 * Observability a facade user switches on: spans exported through the OpenTelemetry SDK (read back
 * from its in-memory exporter), metrics scraped from its Prometheus exporter on loopback, a logger
 * of the user's with structured annotations, and the events of every operation.
 */
import { NodeSdk } from "@effect/opentelemetry"
import { assert, describe, it } from "@effect/vitest"
import { PrometheusExporter } from "@opentelemetry/exporter-prometheus"
import { InMemorySpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base"
import { Backend, BackendError, Memory } from "@vela/core"
import type { TelemetryEvent } from "@vela/core/promise"
import { createCache } from "@vela/core/promise"
import { Effect, HashMap, Layer, List, Logger } from "effect"
import { createServer } from "node:net"

const freePort = () =>
  new Promise<number>((resolve) => {
    const server = createServer().listen(0, "127.0.0.1", () => {
      const address = server.address()
      server.close(() => resolve(typeof address === "object" && address !== null ? address.port : 0))
    })
  })

describe("observability", () => {
  it("spans carry the outcome and the tag; metrics reach Prometheus; every operation has its event", async () => {
    const spans = new InMemorySpanExporter()
    const port = await freePort()
    const prometheus = new PrometheusExporter({ host: "127.0.0.1", port })
    const cache = createCache<string>({
      name: "observed",
      spans: true,
      metrics: true,
      maxSize: 2,
      sweepInterval: 20,
      evictionPolicy: "lru",
      observability: NodeSdk.layer(() => ({
        resource: { serviceName: "vela-test" },
        spanProcessor: new SimpleSpanProcessor(spans),
        metricReader: prometheus
      }))
    })
    const events: Array<TelemetryEvent> = []
    cache.subscribe((event) => events.push(event))
    try {
      await cache.put("a", "1", { tags: ["t"] })
      await cache.get("a")
      await cache.get("missing")
      await cache.getOrFetch("b", async () => "2")
      await cache.put("c", "3") // evicts the least recently used entry
      await new Promise((resolve) => setTimeout(resolve, 150)) // a few sweeps, which set the size gauge
      const sized = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text()
      assert.match(sized, /\nvela_cache_size\{cache="observed"[^}]*\} 2\n/)
      await cache.invalidateTag("t")
      await cache.delete("c")
      await cache.flush()

      const finished = spans.getFinishedSpans().map((span) => ({ name: span.name, attributes: span.attributes }))
      assert.deepInclude(finished, {
        name: "vela.cache.get",
        attributes: { cache: "observed", key: "a", "vela.outcome": "hit" }
      })
      assert.deepInclude(finished, {
        name: "vela.cache.get",
        attributes: { cache: "observed", key: "missing", "vela.outcome": "miss" }
      })
      assert.deepInclude(finished, {
        name: "vela.cache.get_or_fetch",
        attributes: { cache: "observed", key: "b", "vela.outcome": "miss", "vela.fetch": "ok" }
      })
      assert.deepInclude(finished, { name: "vela.cache.invalidate_tag", attributes: { cache: "observed", tag: "t" } })

      const names = events.map((event) => event.event.slice(2, 3)[0])
      for (const op of ["put", "get", "fetch", "evict", "invalidate_tag", "delete", "flush"]) assert.include(names, op)

      const scraped = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text()
      // Reads: get a, get missing, and the read that starts getOrFetch.
      assert.match(scraped, /\nvela_cache_hits\{cache="observed"[^}]*\} 1\n/)
      assert.match(scraped, /\nvela_cache_duration_ms_count\{cache="observed",operation="get"[^}]*\} 3\n/)
      assert.match(scraped, /\nvela_cache_evictions\{cache="observed"[^}]*\} 1\n/)
    } finally {
      await cache.close()
    }
  }, 30_000)

  it("a logger of yours gets the cache's log lines, annotated with cache and operation", async () => {
    const lines: Array<{ message: unknown; annotations: Record<string, unknown> }> = []
    const logger = Logger.make(({ annotations, message }) => {
      lines.push({
        message: List.isList(message) ? List.toArray(message) : message,
        annotations: Object.fromEntries(HashMap.toEntries(annotations))
      })
    })
    // A store whose sweep fails, as a disk that went away would.
    const failingSweep = Layer.effect(
      Backend.Backend,
      Effect.map(Backend.Backend, (memory) =>
        Backend.Backend.of({
          ...memory,
          open: (options) =>
            Effect.map(memory.open(options), (store) => ({
              ...store,
              sweep: Effect.fail(new BackendError({ backend: "memory", operation: "sweep", cause: "disk gone" }))
            }))
        }))
    ).pipe(Layer.provide(Memory.layer()))
    const cache = createCache<string>({ name: "logged", backend: failingSweep, sweepInterval: 10, logger })
    try {
      await new Promise((resolve) => setTimeout(resolve, 200))
      const line = lines.find((l) => JSON.stringify(l.message).includes("sweep failed"))
      assert.deepStrictEqual(line?.annotations, { cache: "logged", operation: "sweep" })
    } finally {
      await cache.close()
    }
  })
})
