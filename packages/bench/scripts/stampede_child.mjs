// One process of the cross-process stampede (stampede_bench): builds one contender over the parent's
// redis-server, says "ready", waits for "go", runs its share of the getOrFetch callers on the cold
// key and sends back how many fetches it ran and each caller's wait. Started by stampede_bench with
// `fork`; not meant to be run by hand.
// Arguments: <contender name> <redis url> <key> <callers> <fetch millis>
import { stampede } from "../dist/internal/drive.js"
import { onRedis } from "../dist/internal/remoteContenders.js"

const [name, url, key, callers, fetchMillis] = process.argv.slice(2)
const factory = onRedis(url, 1_000).find((f) => f.name === name)

const fail = (error) => {
  process.send?.({ type: "error", message: error instanceof Error ? error.message : String(error) })
  process.exit(1)
}

if (factory === undefined) fail(`unknown contender ${name}`)
let contender
try {
  contender = await factory.make()
} catch (error) {
  fail(error)
}
const orphaned = () => process.exit(1)
process.once("disconnect", orphaned)
process.on("message", async (message) => {
  if (message?.type !== "go") return
  try {
    const run = await stampede(contender, key, Number(callers), Number(fetchMillis))
    const result = {
      type: "result",
      fetches: run.fetches,
      wrong: run.wrong,
      errors: run.errors,
      waits: Array.from(run.waits)
    }
    process.send(result, async () => {
      process.off("disconnect", orphaned)
      await contender.close().catch(() => {})
      process.exit(0)
    })
  } catch (error) {
    fail(error)
  }
})
process.send({ type: "ready" })
