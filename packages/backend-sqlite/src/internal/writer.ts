/**
 * Group commit for one database: every write of every namespace is queued, and the queue is run as
 * one transaction when the event loop next turns, so the writes that arrive in one tick share one
 * commit (one fsync) instead of paying one each.
 *
 * Concurrency: better-sqlite3 is synchronous, so a batch runs to completion before any other
 * JavaScript does; a write is acknowledged (its fiber resumed) only after the `COMMIT` of its
 * batch returned. Writes run in the order they were submitted. A writer interrupted before its
 * batch runs is dropped from it; one interrupted later was already committed.
 *
 * Failure: a batch is one `BEGIN IMMEDIATE … COMMIT`. When another process holds the write lock
 * (`SQLITE_BUSY`), the batch goes back to the head of the queue and is retried a few milliseconds
 * later from a timer, so the event loop keeps running (reads keep being served, new writes join the
 * batch) while it waits; only when the lock stayed taken for `busyTimeout` does it fail. When it
 * fails (busy past the timeout, disk full, a read-only file), SQLite rolls it back whole and every
 * write in it fails with a `BackendError` for its own operation: nothing that failed was
 * acknowledged, nothing acknowledged is lost (with `synchronous = FULL`, not even on power loss).
 *
 * Invariant: a write's fiber resumes with success only after its transaction committed. Follows
 * the group commit of database logs (Gawlick and Kinkade, 1985; PostgreSQL's `commit_delay`),
 * with the event loop's turn as the delay.
 */
import type { BackendError } from "@vela/core"
import type { Database } from "better-sqlite3"
import * as Effect from "effect/Effect"

interface Op {
  readonly operation: string
  readonly run: () => unknown
  resume: ((effect: Effect.Effect<unknown, BackendError>) => void) | undefined
}

export interface WriterOptions {
  /** Most writes per transaction; the rest go in the next one. */
  readonly maxBatch: number
  /** How long a batch keeps being retried while another connection holds the write lock, in ms. */
  readonly busyTimeout: number
  /** Runs first in every transaction (pending recency updates); takes what it applies, even if the batch fails. */
  readonly beforeBatch: () => void
  /** Whether `beforeBatch` has anything to do, so an idle writer does not commit for nothing. */
  readonly hasPending: () => boolean
  readonly fail: (operation: string, cause: unknown) => BackendError
  readonly onCommit: ((writes: number) => void) | undefined
}

export class Writer {
  readonly #options: WriterOptions
  readonly #transaction: (batch: ReadonlyArray<Op>, results: Array<unknown>) => void
  #queue: Array<Op> = []
  #handle: NodeJS.Immediate | undefined = undefined
  #retry: NodeJS.Timeout | undefined = undefined
  /** When the current run of `SQLITE_BUSY` began (wall clock: it is another process we wait for). */
  #busySince: number | undefined = undefined
  #closing = false

  constructor(db: Database, options: WriterOptions) {
    this.#options = options
    this.#transaction = db.transaction((batch: ReadonlyArray<Op>, results: Array<unknown>) => {
      options.beforeBatch()
      for (let i = 0; i < batch.length; i++) results[i] = batch[i].run()
    }).immediate
  }

  /** Runs `run` inside the next batch's transaction; succeeds once that transaction committed. */
  submit<A>(operation: string, run: () => A): Effect.Effect<A, BackendError> {
    return Effect.async<A, BackendError>((resume) => {
      if (this.#closing) return resume(Effect.fail(this.#options.fail(operation, new Error("the database is closed"))))
      const op: Op = { operation, run, resume: resume as Op["resume"] }
      this.#queue.push(op)
      this.#schedule()
      return Effect.sync(() => {
        op.resume = undefined
      })
    })
  }

  /** Makes sure a batch runs soon even if nothing is queued (for pending recency updates). */
  nudge(): void {
    this.#schedule()
  }

  /** Runs everything queued now, retrying a busy lock synchronously; used when the database closes. */
  drain(): void {
    this.#closing = true
    if (this.#handle !== undefined) clearImmediate(this.#handle)
    if (this.#retry !== undefined) clearTimeout(this.#retry)
    this.#handle = this.#retry = undefined
    do {
      this.#flush()
    } while (this.#queue.length > 0)
  }

  #schedule(): void {
    if (this.#handle === undefined && this.#retry === undefined && !this.#closing) {
      this.#handle = setImmediate(this.#run)
    }
  }

  readonly #run = (): void => {
    this.#handle = this.#retry = undefined
    this.#flush()
    if (this.#queue.length > 0) this.#schedule()
  }

  #flush(): void {
    const all = this.#queue
    const max = this.#options.maxBatch
    let batch: Array<Op>
    if (all.length <= max) {
      batch = all
      this.#queue = []
    } else {
      batch = all.slice(0, max)
      this.#queue = all.slice(max)
    }
    // Interrupted writers leave the batch before it runs.
    let live = 0
    for (const op of batch) if (op.resume !== undefined) batch[live++] = op
    batch.length = live
    if (live === 0 && !this.#options.hasPending()) return
    const results = new Array<unknown>(live)
    try {
      this.#transaction(batch, results)
    } catch (cause) {
      if (this.#requeue(batch, cause)) return
      this.#busySince = undefined
      for (const op of batch) op.resume!(Effect.fail(this.#options.fail(op.operation, cause)))
      return
    }
    this.#busySince = undefined
    this.#options.onCommit?.(live)
    for (let i = 0; i < live; i++) batch[i].resume!(Effect.succeed(results[i]))
  }

  /** Puts `batch` back at the head of the queue while the lock is taken; `false` once it waited long enough. */
  #requeue(batch: Array<Op>, cause: unknown): boolean {
    if (!isBusy(cause)) return false
    const now = Date.now()
    this.#busySince ??= now
    if (now - this.#busySince >= this.#options.busyTimeout) return false
    this.#queue = batch.concat(this.#queue)
    if (!this.#closing) {
      if (this.#handle !== undefined) clearImmediate(this.#handle)
      this.#handle = undefined
      // A little jitter, so two processes retrying do not collide in step.
      this.#retry ??= setTimeout(this.#run, 1 + Math.random() * 4)
    }
    return true
  }
}

const isBusy = (cause: unknown): boolean => {
  const code = (cause as { readonly code?: unknown } | null)?.code
  return typeof code === "string" && code.startsWith("SQLITE_BUSY")
}
