/**
 * How an `Entry` is laid out in a Redis string: a one-line header (`expiresAt`, `version`, tags as
 * JSON), a newline, then the value as the cache's `Codec` encoded it. The header comes first so
 * scripts read expiry with `GETRANGE` and never touch the value.
 */
import type { Backend } from "@vela/core"
import { CodecError } from "@vela/core"
import * as Either from "effect/Either"

const noTags: ReadonlyArray<string> = []

/** The header line of an entry (without its newline). */
export const header = (expiresAt: number | null, version: number, tags: ReadonlyArray<string>): string =>
  `${expiresAt ?? ""}\t${version}\t${tags.length === 0 ? "[]" : JSON.stringify(tags)}`

export const encode = (
  codec: Backend.OpenOptions["codec"],
  key: string,
  entry: Backend.Entry
): Either.Either<string, CodecError> =>
  Either.map(
    codec.encode(key, entry.value),
    (text) => `${header(entry.expiresAt, entry.version, entry.tags)}\n${text}`
  )

/** Whether a payload (or its first bytes) is an entry that is live at `now`. */
export const isLive = (payload: string, now: number): boolean => {
  const tab = payload.indexOf("\t")
  if (tab < 0) return false
  if (tab === 0) return true
  const expiresAt = Number(payload.slice(0, tab))
  return expiresAt > now
}

/** The live entry in `payload`, `undefined` when it expired by `now`. */
export const decode = (
  codec: Backend.OpenOptions["codec"],
  key: string,
  payload: string,
  now: number
): Either.Either<Backend.Entry | undefined, CodecError> => {
  const first = payload.indexOf("\t")
  const second = payload.indexOf("\t", first + 1)
  const newline = payload.indexOf("\n", second + 1)
  if (first < 0 || second < 0 || newline < 0) {
    return Either.left(new CodecError({ key, direction: "decode", cause: "not an entry written by Vela" }))
  }
  const expires = first === 0 ? null : Number(payload.slice(0, first))
  if (expires !== null && expires <= now) return Either.right(undefined)
  const version = Number(payload.slice(first + 1, second))
  const tagText = payload.slice(second + 1, newline)
  let tags = noTags
  if (tagText !== "[]") {
    try {
      tags = JSON.parse(tagText)
    } catch (cause) {
      return Either.left(new CodecError({ key, direction: "decode", cause }))
    }
  }
  const value = codec.decode(key, payload.slice(newline + 1))
  return Either.isLeft(value)
    ? Either.left(value.left)
    : Either.right({ value: value.right, expiresAt: expires, tags, version })
}
