/**
 * Stampede protection's first layer (see `internal/cache/stampede.ts`): the Promise of each key's
 * `getOrFetch` running in this facade, shared by its concurrent callers. A write or removal of a key
 * wins over its fetch in flight: `forget` it, and later misses do not join that fetch.
 */
export const makeShared = <V>() => {
  const inflight = new Map<string, Promise<V>>()
  return {
    get: (key: string) => inflight.get(key),
    share: (key: string, fetched: Promise<V>): Promise<V> => {
      const shared = fetched.finally(() => {
        if (inflight.get(key) === shared) inflight.delete(key)
      })
      inflight.set(key, shared)
      return shared
    },
    forget: (keys: Iterable<unknown>) => {
      for (const key of keys) inflight.delete(key as string)
    },
    forgetKey: (key: string) => {
      // Every put forgets its key: with no fetch in flight (the usual case) it looks nothing up.
      if (inflight.size > 0) inflight.delete(key)
    },
    clear: () => inflight.clear()
  }
}
