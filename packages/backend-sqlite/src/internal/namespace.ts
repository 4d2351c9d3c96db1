/**
 * What the reads, writes and sweep of one cache's namespace in a database file share: the
 * database's statements, writer and pending uses, the cache's clock and codec, and the sequence
 * numbers eviction ranks by.
 */
import type { Backend, BackendError, Codec } from "@vela/core"
import type { Statements } from "./database.js"
import type { Touches } from "./touches.js"
import type { Writer } from "./writer.js"

/** What every namespace of one database file shares. */
export interface Shared {
  readonly statements: Statements
  readonly writer: Writer
  readonly touches: Touches
  readonly sweepBatchSize: number
  readonly fail: (operation: string, cause: unknown) => BackendError
}

export interface Namespace extends Shared {
  readonly namespace: string
  readonly options: Backend.OpenOptions
  readonly codec: Codec.Codec<unknown>
  /** The cache's clock, in epoch milliseconds. */
  readonly now: () => number
  /** Whether `maxSize` is finite. */
  readonly bounded: boolean
  /** Whether reads count for eviction (a bounded namespace ranking by use). */
  readonly tracksReads: boolean
  /** The next sequence number for a read. */
  readonly nextRead: () => number
  /** The next sequence number for a write, above anything another process wrote when it matters. */
  readonly nextWrite: () => number
}

/** Opens `options.namespace`'s view; reads the file's highest sequence number. */
export const make = (shared: Shared, options: Backend.OpenOptions): Namespace => {
  const { statements: s } = shared
  const { clock, maxSize, namespace } = options
  const bounded = maxSize !== Infinity
  let seq = s.maxUsed.get(namespace) ?? 0
  return {
    ...shared,
    namespace,
    options,
    codec: options.codec,
    now: () => clock.unsafeCurrentTimeMillis(),
    bounded,
    tracksReads: bounded && options.evictionPolicy !== "ttl-only",
    nextRead: () => ++seq,
    nextWrite: () => {
      if (bounded) {
        const highest = s.maxUsed.get(namespace) ?? 0
        if (highest > seq) seq = highest
      }
      return ++seq
    }
  }
}

export const isLive = (expiresAt: number | null, at: number): boolean => expiresAt === null || expiresAt > at
