/**
 * What the chaos rig checks, over the history it recorded: pure functions, so they are tested on
 * histories written by hand as well as run on recorded ones.
 *
 * Every operation has the times it was invoked and completed (seen from the rig, so the real ones
 * lie inside), and whether it succeeded. A write that failed or never answered may still take
 * effect at any later time; one that succeeded took effect before it completed. Every value
 * written is unique, so a value read names the write it came from.
 *
 * A key's state is a value or absent. A state is explained by its sources: the write of that value,
 * or (absent) a delete, an invalidation of the key's tag, or the start. A successful change of the
 * key invoked after every source of a state could have taken effect supersedes that state: from
 * then on, that state is out of date. The checks:
 * - a read returns a value some write of that key offered before the read completed;
 * - a read (past the near cache) never returns a state superseded by a change that completed
 *   before the read began, unless a fault was active between the change and the read; a read
 *   through the near cache is held to the same once the near cache dropped the key after the change;
 * - the state every node reads after the run is not superseded (no acknowledged write was lost).
 */

export type Kind = "put" | "putMany" | "delete" | "invalidateTag" | "getOrFetch" | "read" | "nearRead"

export interface Op {
  readonly id: number
  readonly node: string
  readonly kind: Kind
  /** The keys written or read. */
  readonly keys: ReadonlyArray<string>
  /** The values written, one per key (for `getOrFetch`, the value its fetch returns). */
  readonly values?: ReadonlyArray<string> | undefined
  readonly tag?: string | undefined
  readonly invoke: number
  complete: number
  ok: boolean
  /** A read's value (`null`: absent); `getOrFetch`'s value. */
  result?: string | null | undefined
  /** `getOrFetch`: whether its fetch ran (the cache missed). */
  fetched?: boolean | undefined
  /** Reads: when the reading node's near cache last dropped the key (0: never). */
  dropped?: number | undefined
  error?: string | undefined
}

/** A fault, from when it was injected until the cluster re-formed after it was healed. */
export interface Fault {
  readonly kind: string
  readonly nodes: ReadonlyArray<string>
  readonly start: number
  end: number
}

export interface Violation {
  readonly check: string
  readonly key: string
  readonly message: string
  readonly ops: ReadonlyArray<Op>
}

export interface Checked {
  readonly checks: number
  readonly violations: ReadonlyArray<Violation>
}

type State = string | null

/** The latest a write or delete may take effect: when it completed, or never known if it failed. */
const endOf = (op: Op) => op.ok && op.kind !== "getOrFetch" ? op.complete : Infinity

const isRead = (op: Op) => op.kind === "read" || op.kind === "nearRead" || op.kind === "getOrFetch"

interface KeyHistory {
  /** Each value written to the key, and the operation that wrote it. */
  readonly writes: Map<string, Op>
  readonly removals: Array<Op>
  /** Successful writes (of their value) and removals (`null`) of the key: what supersedes. */
  readonly changes: Array<{ readonly op: Op; readonly state: State }>
  readonly reads: Array<Op>
}

const index = (history: ReadonlyArray<Op>, keys: ReadonlyArray<string>, tagOf: (key: string) => string) => {
  const byKey = new Map<string, KeyHistory>()
  for (const key of keys) byKey.set(key, { writes: new Map(), removals: [], changes: [], reads: [] })
  const keysOfTag = new Map<string, Array<string>>()
  for (const key of keys) {
    const tagged = keysOfTag.get(tagOf(key)) ?? []
    tagged.push(key)
    keysOfTag.set(tagOf(key), tagged)
  }
  for (const op of history) {
    if (op.kind === "invalidateTag") {
      for (const key of keysOfTag.get(op.tag!) ?? []) {
        const h = byKey.get(key)!
        h.removals.push(op)
        if (op.ok) h.changes.push({ op, state: null })
      }
      continue
    }
    op.keys.forEach((key, i) => {
      const h = byKey.get(key)
      if (h === undefined) return
      if (op.kind === "delete") {
        h.removals.push(op)
        if (op.ok) h.changes.push({ op, state: null })
        return
      }
      if (isRead(op)) h.reads.push(op)
      const value = op.values?.[i]
      if (value === undefined) return
      h.writes.set(value, op)
      if (op.ok && op.kind !== "getOrFetch") h.changes.push({ op, state: value })
    })
  }
  return byKey
}

/** The latest any source of `state` invoked before `before` may take effect; `undefined`: no source. */
const latestSource = (h: KeyHistory, state: State, before: number): number | undefined => {
  if (state !== null) {
    const write = h.writes.get(state)
    return write === undefined || write.invoke >= before ? undefined : endOf(write)
  }
  let latest = -Infinity
  for (const removal of h.removals) if (removal.invoke < before) latest = Math.max(latest, endOf(removal))
  return latest
}

/**
 * A successful change to another state, invoked after `after` and before `before`, that `counts`;
 * the latest completed. Changes are in the order they were invoked.
 */
const supersededBy = (h: KeyHistory, state: State, after: number, before: number, counts: (op: Op) => boolean) => {
  let low = 0
  let high = h.changes.length
  while (low < high) {
    const mid = (low + high) >>> 1
    if (h.changes[mid].op.invoke <= after) low = mid + 1
    else high = mid
  }
  let found: Op | undefined
  for (let i = low; i < h.changes.length && h.changes[i].op.invoke < before; i++) {
    const change = h.changes[i]
    if (change.state === state || !counts(change.op)) continue
    if (found === undefined || change.op.complete > found.complete) found = change.op
  }
  return found
}

const show = (state: State) => state === null ? "absent" : JSON.stringify(state)

/**
 * Checks `history` (and the state `finals` each node read of each key after the run) against the
 * rules above; `faults` excuse stale reads across them.
 */
export const check = (options: {
  readonly history: ReadonlyArray<Op>
  readonly faults: ReadonlyArray<Fault>
  readonly keys: ReadonlyArray<string>
  readonly tagOf: (key: string) => string
  readonly finals: ReadonlyMap<string, ReadonlyArray<{ readonly node: string; readonly state: State }>>
}): Checked => {
  const { faults, finals, history, keys, tagOf } = options
  const violations: Array<Violation> = []
  let checks = 0
  const faultFree = (from: number, to: number) => !faults.some((fault) => fault.start <= to && fault.end >= from)
  for (const [key, h] of index(history, keys, tagOf)) {
    for (const read of h.reads) {
      if (!read.ok) continue
      const state: State = read.fetched === true ? null : read.result ?? null
      checks++
      const latest = latestSource(h, state, read.complete)
      if (latest === undefined) {
        const other = read.result === undefined || read.result === null ? undefined : h.writes.get(read.result)
        violations.push({
          check: "read a value no one wrote",
          key,
          message: `${show(state)} was never written to ${key} before the read completed`,
          ops: other === undefined ? [read] : [other, read]
        })
        continue
      }
      checks++
      const newer = supersededBy(
        h,
        state,
        latest,
        read.invoke,
        (change) =>
          change.complete < read.invoke && faultFree(change.invoke, read.complete) &&
          (read.kind === "read" || (read.dropped ?? 0) >= change.complete)
      )
      if (newer !== undefined) {
        violations.push({
          check: "stale read",
          key,
          message: `read ${show(state)} after a change of ${key} completed, with no fault in between`,
          ops: [...(state === null ? [] : [h.writes.get(state)!]), newer, read]
        })
      }
    }
    const seen = finals.get(key) ?? []
    if (new Set(seen.map((final) => final.state)).size > 1) {
      violations.push({
        check: "nodes disagree",
        key,
        message: `after the run: ${seen.map((final) => `${final.node} reads ${show(final.state)}`).join(", ")}`,
        ops: []
      })
    }
    for (const state of new Set(seen.map((final) => final.state))) {
      checks++
      const latest = latestSource(h, state, Infinity)
      if (latest === undefined) {
        violations.push({
          check: "read a value no one wrote",
          key,
          message: `after the run ${key} reads ${show(state)}, never written to it`,
          ops: []
        })
        continue
      }
      const lost = supersededBy(h, state, latest, Infinity, () => true)
      if (lost !== undefined) {
        violations.push({
          check: "lost write",
          key,
          message: `after the run ${key} reads ${show(state)}, though a later change was acknowledged`,
          ops: [...(state === null ? [] : [h.writes.get(state)!]), lost]
        })
      }
    }
  }
  return { checks, violations }
}

/** One line per operation, times in seconds since `origin`. */
export const describeOp = (op: Op, origin: number): string => {
  const at = (t: number) => Number.isFinite(t) ? `${((t - origin) / 1000).toFixed(3)}s` : "never"
  const what = op.kind === "invalidateTag"
    ? `invalidateTag ${op.tag}`
    : `${op.kind} ${op.keys.map((key, i) => op.values?.[i] === undefined ? key : `${key}=${op.values[i]}`).join(" ")}`
  const outcome = !op.ok
    ? `failed: ${op.error}`
    : isRead(op)
    ? `-> ${show(op.result ?? null)}${op.fetched === true ? " (fetched)" : ""}`
    : "ok"
  return `#${op.id} ${op.node} ${what} [${at(op.invoke)} .. ${at(op.complete)}] ${outcome}`
}
