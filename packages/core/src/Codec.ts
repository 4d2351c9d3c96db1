/**
 * How values leave the process. Backends that store bytes (Redis, SQLite) and the cluster wire
 * encode values to text with a `Codec`: the cache's value `Schema` when it has one, otherwise
 * `Codec.json`, a JSON dialect that also round-trips `Date`, `Uint8Array`, `bigint`, `Map` and `Set`.
 */
import * as Either from "effect/Either"
import * as ParseResult from "effect/ParseResult"
import type * as Schema from "effect/Schema"
import { CodecError } from "./Errors.js"

/**
 * Turns values into text and back; `key` only names the entry in errors.
 *
 * @since 0.1.0
 * @category models
 */
export interface Codec<V = unknown> {
  readonly encode: (key: string, value: V) => Either.Either<string, CodecError>
  readonly decode: (key: string, text: string) => Either.Either<V, CodecError>
}

/**
 * The default codec: JSON with tagged wrappers for what JSON lacks. A value it cannot represent
 * faithfully (`undefined`, a function, a symbol, a class instance other than those listed, a
 * non-finite number) is a `CodecError` naming what was found, never a silent loss.
 *
 * @since 0.1.0
 * @category codecs
 */
export const json: Codec<unknown> = {
  encode: (key, value) => {
    try {
      // Most values are JSON as they stand: one check instead of a copy, the same bytes.
      return Either.right(JSON.stringify(isPlain(value) ? value : toJson(value, "value")))
    } catch (cause) {
      return Either.left(new CodecError({ key, direction: "encode", cause }))
    }
  },
  decode: (key, text) => {
    try {
      // Text without the tag key holds no wrappers: the parsed value is the value.
      const parsed = JSON.parse(text)
      return Either.right(text.includes(TAG_KEY) ? fromJson(parsed) : parsed)
    } catch (cause) {
      return Either.left(new CodecError({ key, direction: "decode", cause }))
    }
  }
}

/**
 * A codec that encodes with `schema` (then `json`) and validates what comes back.
 *
 * @since 0.1.0
 * @category constructors
 */
export const fromSchema = <V, I>(schema: Schema.Schema<V, I>): Codec<V> => {
  // Through `ParseResult`, not `Schema`: a cache without a value Schema does not load all of Schema.
  const encode = ParseResult.encodeUnknownEither(schema)
  const decode = ParseResult.decodeUnknownEither(schema)
  const failure = (key: string, direction: "encode" | "decode") => (issue: ParseResult.ParseIssue) =>
    new CodecError({ key, direction, cause: ParseResult.parseError(issue) })
  return {
    encode: (key, value) =>
      Either.flatMap(Either.mapLeft(encode(value), failure(key, "encode")), (encoded) => json.encode(key, encoded)),
    decode: (key, text) =>
      Either.flatMap(json.decode(key, text), (raw) => Either.mapLeft(decode(raw), failure(key, "decode")))
  }
}

// internal

const TAG = "$vela"
const TAG_KEY = JSON.stringify(TAG)

/**
 * Whether `JSON.stringify(value)` alone writes what `JSON.stringify(toJson(value))` would: finite
 * numbers, strings, booleans, null, arrays and plain objects of them (`undefined` fields, which
 * both drop, allowed), no object carrying the tag key. Anything else takes `toJson`, which tags it
 * or names why it cannot be stored.
 */
const isPlain = (value: unknown): boolean => {
  switch (typeof value) {
    case "string":
    case "boolean":
      return true
    case "number":
      return Number.isFinite(value)
    case "object":
      break
    default:
      return false
  }
  if (value === null) return true
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) if (!isPlain(value[i])) return false
    return true
  }
  const proto = Object.getPrototypeOf(value)
  if ((proto !== Object.prototype && proto !== null) || Object.hasOwn(value, TAG)) return false
  for (const k of Object.keys(value)) {
    const v = (value as Record<string, unknown>)[k]
    if (v !== undefined && !isPlain(v)) return false
  }
  return true
}

const toJson = (value: unknown, path: string): unknown => {
  switch (typeof value) {
    case "string":
    case "boolean":
      return value
    case "number":
      if (!Number.isFinite(value)) return { [TAG]: "number", v: String(value) }
      return value
    case "bigint":
      return { [TAG]: "bigint", v: value.toString() }
    case "undefined":
      throw new TypeError(`${path} is undefined, which cannot be stored`)
    case "function":
    case "symbol":
      throw new TypeError(`${path} is a ${typeof value}, which cannot be stored`)
  }
  if (value === null) return null
  if (Array.isArray(value)) return value.map((item, i) => toJson(item, `${path}[${i}]`))
  if (value instanceof Date) return { [TAG]: "Date", v: value.toISOString() }
  if (value instanceof Uint8Array) return { [TAG]: "Uint8Array", v: Buffer.from(value).toString("base64") }
  if (value instanceof Map) {
    return {
      [TAG]: "Map",
      v: Array.from(value, ([k, v], i) => [toJson(k, `${path}.key${i}`), toJson(v, `${path}.get(${i})`)])
    }
  }
  if (value instanceof Set) return { [TAG]: "Set", v: Array.from(value, (item, i) => toJson(item, `${path}[${i}]`)) }
  const proto = Object.getPrototypeOf(value)
  if (proto !== Object.prototype && proto !== null) {
    throw new TypeError(
      `${path} is an instance of ${proto?.constructor?.name ?? "a class"}; give the cache a value Schema to store it`
    )
  }
  const out: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(value as object)) {
    if (v !== undefined) setOwn(out, k, toJson(v, `${path}.${k}`))
  }
  // A plain object that happens to carry our tag key is wrapped so decoding leaves it alone.
  return TAG in out ? { [TAG]: "Object", v: out } : out
}

const fromJson = (value: unknown): unknown => {
  if (value === null || typeof value !== "object") return value
  if (Array.isArray(value)) return value.map(fromJson)
  const record = value as Record<string, unknown>
  if (!(TAG in record)) {
    const out: Record<string, unknown> = {}
    for (const [k, v] of Object.entries(record)) setOwn(out, k, fromJson(v))
    return out
  }
  const v = record.v
  switch (record[TAG]) {
    case "number":
      return Number(v)
    case "bigint":
      return BigInt(v as string)
    case "Date":
      return new Date(v as string)
    case "Uint8Array":
      return new Uint8Array(Buffer.from(v as string, "base64"))
    case "Map":
      return new Map((v as Array<[unknown, unknown]>).map(([k, item]) => [fromJson(k), fromJson(item)]))
    case "Set":
      return new Set((v as Array<unknown>).map(fromJson))
    case "Object": {
      const out: Record<string, unknown> = {}
      for (const [k, item] of Object.entries(v as Record<string, unknown>)) setOwn(out, k, fromJson(item))
      return out
    }
    default:
      throw new TypeError(`unknown encoded type ${JSON.stringify(record[TAG])}`)
  }
}

/** `out[k] = v` as an own property even for `"__proto__"`, which assignment would take as the prototype. */
const setOwn = (out: Record<string, unknown>, k: string, v: unknown): void => {
  if (k === "__proto__") {
    Object.defineProperty(out, k, { value: v, enumerable: true, writable: true, configurable: true })
  } else out[k] = v
}

/**
 * Whether `codec` writes a number as its JSON text and reads any JSON text of a number (`%.17g`
 * included) back as that number: then a store may add to a number's text where it keeps it (a
 * Redis script, a cluster owner) instead of decoding it. `Codec.json` and `Schema.Number` do;
 * `Schema.NumberFromString` and `Schema.Int` (a sum may not decode) do not.
 *
 * @since 0.2.0
 * @category utils
 */
export const numbersAsJson = (codec: Codec): boolean =>
  probes.every((n) => {
    const encoded = codec.encode("", n)
    if (Either.isLeft(encoded) || !/^-?\d/.test(encoded.right) || JSON.parse(encoded.right) !== n) return false
    return [String(n), n.toPrecision(17)].every((text) => {
      const decoded = codec.decode("", text)
      return Either.isRight(decoded) && decoded.right === n
    })
  })

/** Doubles whose texts differ in form: integer, fraction, exponent, negative, beyond 2^53. */
const probes = [0, 42, -1.5, 0.1, 1e-7, 1.7976931348623157e308, 2 ** 53 + 2]
