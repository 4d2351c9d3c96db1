/**
 * `memoize`: a function whose results are cached, each distinct call going through `getOrFetch`
 * under a key made of its arguments (by default their `Codec.json` encoding), so that concurrent
 * calls with the same arguments run the function once. Its keys share the cache with other keys.
 */
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Codec from "../../Codec.js"
import type { CacheError, FetchTimeout } from "../../Errors.js"
import { ConfigError, InvalidKey } from "../../Errors.js"
import type { FetchOptions } from "./config.js"

export type MemoizeOptions<V, A extends ReadonlyArray<unknown>> = FetchOptions<V> & {
  /** The key of a call (default: the arguments encoded by `Codec.json`). */
  readonly key?: ((...args: A) => string) | undefined
}

/** The key of a call with `args`: `InvalidKey` when the arguments do not encode or `key` throws. */
export const keyOf = <V, A extends ReadonlyArray<unknown>>(
  options: MemoizeOptions<V, A> | undefined,
  args: A
): Either.Either<string, CacheError> => {
  const key = options?.key
  if (key === undefined) {
    return Either.mapLeft(
      Codec.json.encode("memoize", args),
      (error) => new InvalidKey({ key: args, reason: `the arguments do not encode as a key: ${error.message}` })
    )
  }
  if (typeof key !== "function") {
    return Either.left(new ConfigError({ field: "key", reason: "expected a function of the arguments" }))
  }
  try {
    return Either.right(key(...args))
  } catch (cause) {
    const reason = `the key function threw: ${cause instanceof Error ? cause.message : String(cause)}`
    return Either.left(new InvalidKey({ key: args, reason }))
  }
}

/** The options `getOrFetch` is given: memoize's own without `key`. */
export const fetchOptions = <V, A extends ReadonlyArray<unknown>>(
  options: MemoizeOptions<V, A> | undefined
): FetchOptions<V> | undefined => {
  if (typeof options !== "object" || options === null || !("key" in options)) return options
  const { key: _, ...rest } = options
  return rest
}

type GetOrFetch<V> = <E, R>(
  key: string,
  fetch: (key: string) => Effect.Effect<V, E, R>,
  options?: FetchOptions<V>
) => Effect.Effect<V, E | FetchTimeout | CacheError, R>

/** `memoize` over a cache's `getOrFetch`. */
export const make = <V>(getOrFetch: GetOrFetch<V>) =>
<A extends ReadonlyArray<unknown>, E, R>(
  fn: (...args: A) => Effect.Effect<V, E, R>,
  options?: MemoizeOptions<V, A>
): (...args: A) => Effect.Effect<V, E | FetchTimeout | CacheError, R> => {
  const fetched = fetchOptions(options)
  return (...args) =>
    Effect.suspend(() => {
      if (typeof fn !== "function") {
        return Effect.fail(new ConfigError({ field: "fn", reason: "expected a function of the arguments" }))
      }
      const key = keyOf(options, args)
      return Either.isLeft(key) ? Effect.fail(key.left) : getOrFetch(key.right, () => fn(...args), fetched)
    })
}
