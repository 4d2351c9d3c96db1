/** A store's batch operations: its native ones where it has them, single-key calls otherwise. */
import { Effect } from "effect"
import type { Entry, Store } from "../Backend.js"

const concurrency = 16

export const getMany = (store: Store, keys: ReadonlyArray<string>) =>
  store.getMany !== undefined ? store.getMany(keys) : Effect.forEach(keys, store.get, { concurrency })

export const setMany = (store: Store, entries: ReadonlyArray<readonly [string, Entry]>) =>
  store.setMany !== undefined
    ? store.setMany(entries)
    : Effect.forEach(entries, ([key, entry]) => store.set(key, entry), { concurrency, discard: true })

export const deleteMany = (store: Store, keys: ReadonlyArray<string>) =>
  store.deleteMany !== undefined
    ? store.deleteMany(keys)
    : Effect.map(
      Effect.forEach(keys, store.delete, { concurrency }),
      (removed) => removed.filter(Boolean).length
    )
