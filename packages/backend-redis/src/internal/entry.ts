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

/**
 * The live entry in `payload`, `undefined` when it expired by `now`, a `CodecError` when it is no
 * entry or its value does not decode. Not an `Either`: `getMany` decodes a hundred of these per
 * call, and the header is read in place, without a string per field.
 */
export const decode = (
  codec: Backend.OpenOptions["codec"],
  key: string,
  payload: string,
  now: number
): Backend.Entry | undefined | CodecError => {
  const first = payload.indexOf("\t")
  const second = first < 0 ? -1 : payload.indexOf("\t", first + 1)
  const newline = second < 0 ? -1 : payload.indexOf("\n", second + 1)
  if (newline < 0) return new CodecError({ key, direction: "decode", cause: "not an entry written by Vela" })
  const expires = first === 0 ? null : integer(payload, 0, first)
  if (expires !== null && expires <= now) return undefined
  let tags = noTags
  if (newline - second !== 3 || payload.charCodeAt(second + 1) !== 91 || payload.charCodeAt(second + 2) !== 93) {
    try {
      tags = JSON.parse(payload.slice(second + 1, newline))
    } catch (cause) {
      return new CodecError({ key, direction: "decode", cause })
    }
  }
  const value = codec.decode(key, payload.slice(newline + 1))
  return Either.isLeft(value)
    ? value.left
    : { value: value.right, expiresAt: expires, tags, version: integer(payload, first + 1, second) }
}

/** Whether `decode` failed (a `CodecError` from any copy of core, not only this one's class). */
export const isFailure = (decoded: Backend.Entry | undefined | CodecError): decoded is CodecError =>
  decoded !== undefined && "_tag" in decoded

/** The number written in `text` from `start` to `end`: digits read in place, anything else by `Number`. */
const integer = (text: string, start: number, end: number): number => {
  if (end - start > 15) return Number(text.slice(start, end))
  let n = 0
  for (let i = start; i < end; i++) {
    const digit = text.charCodeAt(i) - 48
    if (digit < 0 || digit > 9) return Number(text.slice(start, end))
    n = n * 10 + digit
  }
  return start === end ? Number("") : n
}
