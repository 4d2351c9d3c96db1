import { assert, describe, it } from "@effect/vitest"
import { ClusterNode } from "@vela/cluster"
import { Effect } from "effect"
import { execFileSync } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { awaitMembers } from "./utils.js"

/** A CA and a certificate for 127.0.0.1 signed by it, made with the openssl CLI in a temporary directory. */
const authority = (dir: string, name: string) => {
  const file = (suffix: string) => Path.join(dir, `${name}-${suffix}`)
  const openssl = (...args: Array<string>) => execFileSync("openssl", args, { stdio: "ignore", timeout: 20_000 })
  openssl(
    "req",
    "-x509",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-days",
    "1",
    "-subj",
    `/CN=${name} CA`,
    "-keyout",
    file("ca.key"),
    "-out",
    file("ca.pem")
  )
  openssl(
    "req",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-subj",
    "/CN=127.0.0.1",
    "-keyout",
    file("node.key"),
    "-out",
    file("node.csr")
  )
  Fs.writeFileSync(file("ext"), "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n")
  openssl(
    "x509",
    "-req",
    "-in",
    file("node.csr"),
    "-CA",
    file("ca.pem"),
    "-CAkey",
    file("ca.key"),
    "-CAcreateserial",
    "-days",
    "1",
    "-extfile",
    file("ext"),
    "-out",
    file("node.pem")
  )
  return {
    key: Fs.readFileSync(file("node.key")),
    cert: Fs.readFileSync(file("node.pem")),
    ca: Fs.readFileSync(file("ca.pem"))
  }
}

const tempDir = Effect.acquireRelease(
  Effect.sync(() => Fs.mkdtempSync(Path.join(Os.tmpdir(), "vela-tls-"))),
  (dir) => Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true }))
)

const fast = { host: "127.0.0.1", port: 0, secret: "s3cret", heartbeatInterval: "100 millis" } as const

describe("ClusterNode over TLS", () => {
  it.live(
    "nodes with certificates of the cluster CA form a cluster; others cannot join",
    () =>
      Effect.scoped(Effect.gen(function*() {
        const dir = yield* tempDir
        const cluster = authority(dir, "cluster")
        const rogue = authority(dir, "rogue")
        const a = yield* ClusterNode.make({ ...fast, tls: cluster })
        const b = yield* ClusterNode.make({ ...fast, seeds: [a.id], tls: cluster })
        yield* Effect.all([awaitMembers(a, [a.id, b.id]), awaitMembers(b, [a.id, b.id])], { concurrency: "unbounded" })

        const plain = yield* ClusterNode.make({ ...fast, seeds: [a.id] })
        const foreign = yield* ClusterNode.make({ ...fast, seeds: [a.id], tls: rogue })
        for (const outsider of [plain, foreign]) {
          const refused = yield* Effect.either(
            outsider.call(a.id, (client) => client.Clear({ ns: "x", version: 0, origin: "outsider" }))
          )
          assert.isTrue(refused._tag === "Left" && refused.left._tag === "NodeUnavailable")
        }
        yield* Effect.sleep("500 millis")
        assert.deepStrictEqual(yield* a.members.get, [a.id, b.id].sort())
        assert.deepStrictEqual(yield* plain.members.get, [plain.id])
        assert.deepStrictEqual(yield* foreign.members.get, [foreign.id])
      })),
    30_000
  )
})
