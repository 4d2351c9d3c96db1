/**
 * The atomic operations, each one script (one bucket, so a cluster runs it on one node): the write,
 * its tag sets, its lease and its bus message change together, so of concurrent callers in any
 * number of processes exactly one `take` gets an entry and no `increment` is lost.
 *
 * A snapshot's token is the payload as stored: `compareAndSet` writes only while Redis holds those
 * very bytes. `increment` is native only under a codec that keeps numbers as JSON numbers (as
 * `Codec.json` does, and the cache's wrapping of it), whose text Lua can read and write back; under
 * another codec `Backend.makeStore` derives it from the other two.
 */
import type { Backend, BackendError, CodecError } from "@vela/core"
import { Codec, WrongType } from "@vela/core"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as Entry from "./entry.js"
import type { Namespace } from "./namespace.js"
import { attempt, pxOf } from "./namespace.js"
import * as Scripts from "./scripts.js"

export type Atomic = Pick<
  Backend.StorePrimitives,
  "readForUpdate" | "compareAndSet" | "take" | "touch" | "increment"
>

export const make = (ns: Namespace): Atomic => {
  const { announce, channel, client, codec, keys, now } = ns

  /** The entry key, lease and tag-set prefix of `key`, and the bus message naming it. */
  const locate = (key: string) => {
    const bucket = keys.bucketOf(key)
    return {
      entry: keys.entry(key, bucket),
      lease: keys.lease(key, bucket),
      tagPrefix: keys.tagSet("", bucket),
      tagSet: (tag: string) => keys.tagSet(tag, bucket),
      message: () => announce(bucket, `"k":[${JSON.stringify(key)}]`)
    }
  }

  /** The entry in `payload`, none when it expired by `at`. */
  const decode = (
    key: string,
    payload: string,
    at: number
  ): Effect.Effect<Option.Option<Backend.Entry>, CodecError> => {
    const decoded = Entry.decode(codec, key, payload, at)
    return Entry.isFailure(decoded) ? Effect.fail(decoded) : Effect.succeed(Option.fromNullable(decoded))
  }

  const readForUpdate = (key: string): Effect.Effect<Option.Option<Backend.Snapshot>, BackendError | CodecError> =>
    Effect.suspend(() => {
      const { entry } = locate(key)
      return Effect.flatMap(attempt(ns, "readForUpdate", () => client.get(entry)), (payload) =>
        payload === null
          ? Effect.succeed(Option.none())
          : Effect.map(
            decode(key, payload, now()),
            Option.map((found): Backend.Snapshot => ({ entry: found, token: payload }))
          ))
    })

  const compareAndSet = (
    key: string,
    expected: Backend.Snapshot | undefined,
    next: Backend.Entry | undefined
  ): Effect.Effect<boolean, BackendError | CodecError> =>
    Effect.suspend((): Effect.Effect<boolean, BackendError | CodecError> => {
      let payload = ""
      if (next !== undefined) {
        const encoded = Entry.encode(codec, key, next)
        if (Either.isLeft(encoded)) return Effect.fail(encoded.left)
        payload = encoded.right
      }
      const at = locate(key)
      const scriptKeys = [at.entry, at.lease]
      if (next !== undefined) { for (const tag of next.tags) scriptKeys.push(at.tagSet(tag)) }
      return Effect.map(
        attempt(ns, "compareAndSet", () =>
          Scripts.run(client, Scripts.compareAndSet, scriptKeys, [
            expected === undefined ? "" : expected.token as string,
            now(),
            payload,
            next === undefined ? "" : pxOf(ns, next.expiresAt),
            at.tagPrefix,
            channel,
            at.message()
          ])),
        (written) => written === 1
      )
    })

  /**
   * Lua cannot decode, so data that does not decode (another program's key, an old deploy's shape)
   * is removed before its `CodecError` is known: `take` fails with it, and the key is empty.
   */
  const take = (key: string): Effect.Effect<Option.Option<Backend.Entry>, BackendError | CodecError> =>
    Effect.suspend(() => {
      const at = locate(key)
      const asOf = now()
      return Effect.flatMap(
        attempt(
          ns,
          "take",
          () => Scripts.run(client, Scripts.take, [at.entry, at.lease], [asOf, at.tagPrefix, channel, at.message()])
        ),
        (payload) => typeof payload === "string" ? decode(key, payload, asOf) : Effect.succeed(Option.none())
      )
    })

  const touch = (key: string, expiresAt: number | null): Effect.Effect<boolean, BackendError> =>
    Effect.suspend(() => {
      const at = locate(key)
      return Effect.map(
        attempt(ns, "touch", () =>
          Scripts.run(client, Scripts.touch, [at.entry], [
            now(),
            expiresAt ?? "",
            pxOf(ns, expiresAt),
            at.tagPrefix,
            channel,
            at.message()
          ])),
        (touched) => touched === 1
      )
    })

  const increment = (
    key: string,
    by: number,
    created: Backend.Created
  ): Effect.Effect<number, BackendError | WrongType> =>
    Effect.suspend((): Effect.Effect<number, BackendError | WrongType> => {
      const wrongType = () => new WrongType({ key, operation: "increment", expected: "a finite number" })
      if (!Number.isFinite(by)) return Effect.fail(wrongType())
      const at = locate(key)
      const scriptKeys = [at.entry, at.lease, ...created.tags.map(at.tagSet)]
      return Effect.flatMap(
        attempt(ns, "increment", () =>
          Scripts.run(client, Scripts.increment, scriptKeys, [
            String(by),
            now(),
            Entry.header(created.expiresAt, 0, created.tags),
            pxOf(ns, created.expiresAt),
            channel,
            at.message()
          ]) as Promise<[0] | [1, string]>),
        (reply) => reply[0] === 1 ? Effect.succeed(Number(reply[1])) : Effect.fail(wrongType())
      )
    })

  return {
    readForUpdate,
    compareAndSet,
    take,
    touch,
    increment: Codec.numbersAsJson(codec) ? increment : undefined
  }
}
