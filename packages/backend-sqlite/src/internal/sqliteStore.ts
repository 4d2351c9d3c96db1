/**
 * One cache's namespace in a database file: a `Store` whose reads are synchronous prepared
 * statements (`reads`) and whose writes go through the database's `Writer` (`writes`, and the
 * read-and-write transactions of `atomic`), with the expired rows counted and swept by `sweep`.
 *
 * Sequence numbers (eviction's ranking) start above the file's highest at each write, so several
 * processes on one file rank close to their real order; within one process the order is exact.
 */
import { Backend } from "@vela/core"
import * as Atomic from "./atomic.js"
import type { Shared } from "./namespace.js"
import * as Namespace from "./namespace.js"
import * as Reads from "./reads.js"
import * as Sweep from "./sweep.js"
import * as Writes from "./writes.js"

/** Opens `options.namespace`; must run in a write transaction (it registers the namespace). */
export const makeStore = (shared: Shared, options: Backend.OpenOptions): Backend.Store => {
  const ns = Namespace.make(shared, options)
  const reads = Reads.make(ns)
  const writes = Writes.make(ns)
  return Backend.makeStore({
    get: reads.get,
    has: reads.has,
    getMany: reads.getMany,
    sync: reads.sync,
    set: writes.set,
    setMany: writes.setMany,
    delete: writes.delete,
    deleteMany: writes.deleteMany,
    invalidateTag: writes.invalidateTag,
    ...Atomic.make(ns, writes),
    clear: writes.clear,
    size: Sweep.size(ns),
    sweep: Sweep.sweep(ns)
  })
}
