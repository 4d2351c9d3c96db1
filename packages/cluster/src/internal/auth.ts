/**
 * The shared secret, proved per connection. The client sends a nonce (`Hello`); the server answers
 * with its own nonce and an HMAC-SHA256 over both nonces and its id, which the client checks; the
 * client then sends an HMAC over the nonces and its own id (`Authenticate`). The secret never
 * crosses the wire and a proof is good for one connection only. The data lane runs the same
 * exchange in its own frames (`lane.ts`). Every other request on an RPC connection that has not
 * authenticated fails with `Unauthorized`, logged once per connection.
 */
import * as Effect from "effect/Effect"
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto"
import type { Client } from "./connections.js"
import type { MemberRecord } from "./protocol.js"
import { Unauthorized } from "./protocol.js"

/** Proves and checks the shared secret. */
export interface Secret {
  readonly prove: (role: "server" | "client", first: string, second: string, id: string) => string
  readonly check: (expected: string, given: string) => boolean
}

/** The proofs of `secret`: HMAC-SHA256 over the role, both nonces and the prover's id; compared in constant time. */
export const secretOf = (secret: string): Secret => ({
  prove: (role, first, second, id) =>
    createHmac("sha256", secret).update(`vela/${role}\n${first}\n${second}\n${id}`).digest("base64"),
  check: (expected, given) => {
    const a = Buffer.from(expected)
    const b = Buffer.from(given)
    return a.length === b.length && timingSafeEqual(a, b)
  }
})

/** A fresh nonce for one handshake. */
export const nonce = (): string => randomBytes(18).toString("base64")

/** The client's side of the handshake, on a new RPC connection to `peer`. */
export const authenticate = (client: Client, secret: Secret, self: MemberRecord, peer: string) =>
  Effect.gen(function*() {
    const mine = nonce()
    const hello = yield* client.Hello({ nonce: mine })
    if (!secret.check(secret.prove("server", mine, hello.nonce, hello.id), hello.proof)) {
      return yield* Effect.fail(new Unauthorized({ reason: `${peer} does not know the cluster secret` }))
    }
    yield* client.Authenticate({ member: self, proof: secret.prove("client", hello.nonce, mine, self.id) })
  })

interface ConnectionState {
  nonce?: string
  clientNonce?: string
  member?: MemberRecord
  warned?: boolean
}

/** The server's side: the handshake state of every RPC connection, by its client id. */
export interface Gate {
  readonly hello: (clientId: number, clientNonce: string) => { id: string; nonce: string; proof: string }
  /** Checks the client's proof; `admitted` runs once it holds. */
  readonly authenticate: (
    clientId: number,
    member: MemberRecord,
    proof: string,
    admitted: () => void
  ) => Effect.Effect<void, Unauthorized>
  /** Runs `f` with the member the connection authenticated as, or fails with `Unauthorized`. */
  readonly authenticated: <A, E>(
    clientId: number,
    rpc: string,
    f: (from: MemberRecord) => Effect.Effect<A, E>
  ) => Effect.Effect<A, E | Unauthorized>
  /** The connection closed. */
  readonly forget: (clientId: number) => void
}

export const makeGate = (id: string, secret: Secret): Gate => {
  const connections = new Map<number, ConnectionState>()
  return {
    hello: (clientId, clientNonce) => {
      const serverNonce = nonce()
      connections.set(clientId, { nonce: serverNonce, clientNonce })
      return { id, nonce: serverNonce, proof: secret.prove("server", clientNonce, serverNonce, id) }
    },
    authenticate: (clientId, member, proof, admitted) =>
      Effect.suspend(() => {
        const state = connections.get(clientId)
        if (state?.nonce === undefined || state.clientNonce === undefined) {
          return Effect.fail(new Unauthorized({ reason: "say Hello first" }))
        }
        const expected = secret.prove("client", state.nonce, state.clientNonce, member.id)
        if (!secret.check(expected, proof)) {
          connections.set(clientId, { warned: true })
          return Effect.zipRight(
            Effect.logWarning(`vela cluster ${id}: refused ${member.id}: it does not know the cluster secret`),
            Effect.fail(new Unauthorized({ reason: "wrong secret" }))
          )
        }
        connections.set(clientId, { member })
        admitted()
        return Effect.void
      }),
    authenticated: (clientId, rpc, f) => {
      const state = connections.get(clientId)
      if (state?.member !== undefined) return f(state.member)
      return Effect.zipRight(
        state?.warned === true ? Effect.void : Effect.logWarning(
          `vela cluster ${id}: refused ${rpc} from a connection that has not authenticated`
        ).pipe(Effect.tap(() => {
          connections.set(clientId, { ...state, warned: true })
        })),
        Effect.fail(new Unauthorized({ reason: "authenticate first" }))
      )
    },
    forget: (clientId) => {
      connections.delete(clientId)
    }
  }
}
