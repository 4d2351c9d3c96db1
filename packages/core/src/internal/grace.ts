/**
 * Entries kept past their TTL for stale-while-revalidate. Such an entry's `expiresAt` is the end of
 * its grace, when the store drops it; its value is wrapped in `Graced`, which says until when it is
 * fresh. Wrapping the value (not the `Entry`) lets every backend keep grace without knowing of it:
 * in memory the wrapper is stored as it is, and `codec` carries it through backends that store text.
 */
import type * as Clock from "effect/Clock"
import * as Either from "effect/Either"
import type { Codec } from "../Codec.js"
import { CodecError } from "../Errors.js"

export class Graced {
  constructor(readonly value: unknown, readonly freshUntil: number) {}
}

/**
 * What a read sees of a stored value at the clock's time: the value itself (unwrapped from its
 * `Graced`), or `stale` once its freshness ran out.
 */
export const fresh = <S>(stored: unknown, clock: Clock.Clock, stale: S): unknown => {
  if (!(stored instanceof Graced)) return stored
  return stored.freshUntil > clock.unsafeCurrentTimeMillis() ? stored.value : stale
}

/** No JSON text starts with a NUL, so the marker cannot be mistaken for a plain value's encoding. */
const MARK = "\u0000graced:"

/** `inner`, plus `Graced` values as `MARK + freshUntil + ":" + inner encoding`. */
export const codec = (inner: Codec): Codec => ({
  encode: (key, value) =>
    value instanceof Graced
      ? Either.map(inner.encode(key, value.value), (text) => `${MARK}${value.freshUntil}:${text}`)
      : inner.encode(key, value),
  decode: (key, text) => {
    if (!text.startsWith(MARK)) return inner.decode(key, text)
    const colon = text.indexOf(":", MARK.length)
    const freshUntil = Number(text.slice(MARK.length, colon))
    if (colon < 0 || !Number.isFinite(freshUntil)) {
      return Either.left(
        new CodecError({ key, direction: "decode", cause: "a malformed stale-while-revalidate entry" })
      )
    }
    return Either.map(inner.decode(key, text.slice(colon + 1)), (value) => new Graced(value, freshUntil))
  }
})
