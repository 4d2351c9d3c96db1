/**
 * Observability switched on in the Promise facade: spans and metrics through `@effect/opentelemetry`,
 * spans printed by the OpenTelemetry SDK's console exporter, metrics served for Prometheus on
 * http://127.0.0.1:9464/metrics (`PROMETHEUS_PORT` to change it), and log lines as JSON. Runs a few
 * operations, prints the cache's lines of its own scrape, and exits.
 *
 *   npm run build && node examples/dist/observability.js
 */
import { NodeSdk } from "@effect/opentelemetry"
import { PrometheusExporter } from "@opentelemetry/exporter-prometheus"
import { ConsoleSpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base"
import { createCache } from "@vela/core/promise"
import { Logger } from "effect"

const port = Number(process.env.PROMETHEUS_PORT ?? 9464)
const prometheus = new PrometheusExporter({ host: "127.0.0.1", port })

const cache = createCache<{ readonly name: string }>({
  name: "users",
  defaultTtl: 60_000,
  spans: true, // a span per call, with the outcome (hit, miss, stale) and the key or tag
  metrics: true, // latency histograms per operation and a size gauge
  logger: Logger.jsonLogger,
  observability: NodeSdk.layer(() => ({
    resource: { serviceName: "vela-example" },
    spanProcessor: new SimpleSpanProcessor(new ConsoleSpanExporter()),
    metricReader: prometheus
  }))
})

await cache.put("user_1", { name: "Alice" }, { tags: ["team"] })
await cache.get("user_1")
await cache.get("user_2")
await cache.getOrFetch("user_2", async () => ({ name: "Bob" }))
await cache.invalidateTag("team")

const scraped = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text()
console.log(scraped.split("\n").filter((line) => line.startsWith("vela_") && !line.includes("_bucket")).join("\n"))
await cache.close()
await prometheus.shutdown()
