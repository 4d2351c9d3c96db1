/** The in-process contenders of the peer comparison: Vela's two APIs beside the caches users pick in one process. */
import TTLCache from "@isaacs/ttlcache"
import { Local, Memory } from "@vela/core"
import { Cache, Duration, Effect, Layer } from "effect"
import { LRUCache } from "lru-cache"
import NodeCache from "node-cache"
import type { Factory, Fetch, Value } from "./contenders.js"
import { HOUR, naive, promiseContender, valueOf, velaEffect, velaFacade } from "./contenders.js"

/** Vela bounded as lru-cache and ttlcache are (`max`), with the policy users pick for it. */
const bounded = (capacity: number) => ({ maxSize: capacity, evictionPolicy: "lru" as const })

/** The in-process contenders, in the order of the tables. `capacity` bounds the caches that need a bound. */
export const inProcess = (capacity: number): ReadonlyArray<Factory> => [
  {
    name: "Vela (facade)",
    group: "in-process",
    make: async () =>
      velaFacade(
        "Vela (facade)",
        "in-process",
        "createCache({ maxSize, evictionPolicy: \"lru\" }) (Memory, Local): get / put / getOrFetch",
        bounded(capacity)
      )
  },
  {
    name: "Vela (Effect)",
    group: "in-process",
    make: () =>
      velaEffect(
        "Vela (Effect)",
        "in-process",
        "Vela.make({ maxSize, evictionPolicy: \"lru\" }) on Local + Memory, run in fibers: getOption / put / getOrFetch",
        Local.layer.pipe(Layer.provide(Memory.layer())),
        bounded(capacity)
      )
  },
  {
    name: "lru-cache",
    group: "in-process",
    make: async () => {
      const lru = new LRUCache<string, Value, Fetch>({
        max: capacity,
        ttl: HOUR,
        fetchMethod: (key, _stale, { context }) => context(key)
      })
      return promiseContender("lru-cache", "in-process", "new LRUCache({ max, ttl, fetchMethod }): get / set / fetch", {
        get: (key) => lru.get(key),
        set: (key, value, ttl) => lru.set(key, value, { ttl }),
        getOrFetch: (key, fetch) => lru.fetch(key, { context: fetch }) as Promise<Value>
      }, () => lru.clear())
    }
  },
  {
    name: "@isaacs/ttlcache",
    group: "in-process",
    make: async () => {
      const cache = new TTLCache<string, Value>({ max: capacity, ttl: HOUR })
      const get = (key: string) => cache.get(key)
      const set = (key: string, value: Value, ttl: number) => cache.set(key, value, { ttl })
      return promiseContender(
        "@isaacs/ttlcache",
        "in-process",
        "new TTLCache({ max, ttl }): get / set (no read-through)",
        {
          get,
          set,
          getOrFetch: naive(get, set)
        },
        () => cache.clear()
      )
    }
  },
  {
    name: "node-cache",
    group: "in-process",
    make: async () => {
      const cache = new NodeCache({ stdTTL: HOUR / 1000 })
      const get = (key: string) => cache.get<Value>(key)
      const set = (key: string, value: Value, ttl: number) => cache.set(key, value, ttl / 1000)
      return promiseContender(
        "node-cache",
        "in-process",
        "new NodeCache({ stdTTL }) (default useClones: values are copied): get / set (no async read-through)",
        { get, set, getOrFetch: naive(get, set) },
        () => cache.close()
      )
    }
  },
  {
    name: "cache-manager",
    group: "in-process",
    make: async () => {
      const { createCache: createManager } = await import("cache-manager")
      const cache = createManager({ ttl: HOUR })
      return promiseContender(
        "cache-manager",
        "in-process",
        "createCache({ ttl }) (default Keyv memory store): get / set / wrap",
        {
          get: (key) => cache.get<Value>(key),
          set: (key, value, ttl) => cache.set(key, value, ttl),
          getOrFetch: (key, fetch, ttl) => cache.wrap(key, () => fetch(key), ttl)
        },
        () => cache.disconnect()
      )
    }
  },
  {
    name: "cacheable",
    group: "in-process",
    make: async () => {
      const { Cacheable } = await import("cacheable")
      const cache = new Cacheable({ ttl: HOUR })
      return promiseContender(
        "cacheable",
        "in-process",
        "new Cacheable({ ttl }) (default memory primary): get / set / getOrSet",
        {
          get: (key) => cache.get<Value>(key),
          set: (key, value, ttl) => cache.set(key, value, ttl),
          getOrFetch: (key, fetch, ttl) => cache.getOrSet(key, () => fetch(key), { ttl }) as Promise<Value>
        },
        () => cache.disconnect()
      )
    }
  },
  {
    name: "bentocache (memory)",
    group: "in-process",
    make: async () => {
      const { BentoCache, bentostore } = await import("bentocache")
      const { memoryDriver } = await import("bentocache/drivers/memory")
      const bento = new BentoCache({
        default: "cache",
        stores: { cache: bentostore().useL1Layer(memoryDriver({ maxItems: capacity })) }
      })
      return promiseContender(
        "bentocache (memory)",
        "in-process",
        "bentostore().useL1Layer(memoryDriver({ maxItems })) (default serialize): get / set / getOrSet",
        {
          get: (key) => bento.get<Value | undefined>({ key }),
          set: (key, value, ttl) => bento.set({ key, value, ttl }),
          getOrFetch: (key, fetch, ttl) => bento.getOrSet({ key, factory: () => fetch(key), ttl })
        },
        () => bento.disconnectAll()
      )
    }
  },
  {
    name: "Effect Cache",
    group: "in-process",
    make: async () => {
      // `lookup` is fixed when the cache is made; getOrFetch hands it the caller's fetch.
      let current: (key: string) => Effect.Effect<Value> = (key) => Effect.succeed(valueOf(key, -1))
      const cache = Effect.runSync(Cache.make({
        capacity,
        timeToLive: Duration.hours(1),
        lookup: (key: string) => current(key)
      }))
      return {
        name: "Effect Cache",
        group: "in-process",
        usage: "Cache.make({ capacity, timeToLive, lookup }), in fibers: getOption / set / get (lookup)",
        api: {
          _tag: "effect",
          ops: {
            get: (key) => cache.getOption(key),
            set: (key, value) => cache.set(key, value),
            getOrFetch: (key, fetch) => {
              current = fetch
              return cache.get(key)
            }
          }
        },
        close: () => Effect.runPromise(cache.invalidateAll)
      }
    }
  },
  {
    name: "Map (floor)",
    group: "in-process",
    make: async () => {
      const map = new Map<string, Value>()
      const get = (key: string) => map.get(key)
      const set = (key: string, value: Value) => map.set(key, value)
      return promiseContender(
        "Map (floor)",
        "in-process",
        "a bare Map, no TTL, no bound: the floor",
        {
          get,
          set,
          getOrFetch: naive(get, set)
        },
        () => map.clear(),
        true
      )
    }
  }
]
