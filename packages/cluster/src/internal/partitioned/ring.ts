/**
 * The ring a Partitioned topology routes by, following the node's membership synchronously: every
 * operation routes by the members the node sees at that moment. `settled` is the ring the
 * rebalancer last handled; the difference between the two is what is still moving.
 */
import * as HashRing from "../../HashRing.js"
import { murmur3 } from "../hash.js"
import { live } from "../live.js"

export class Ring {
  #source: ReadonlyArray<string>
  #ring: HashRing.HashRing
  readonly #joined = new Map<string, number>()
  readonly #views = new Map<string, HashRing.HashRing>()
  /** The ring the rebalancer last handled. */
  settled: HashRing.HashRing
  /** When the ring last changed, on the live clock. */
  changedAt = 0
  /** A key may be held here that the ring gives to others only: a handoff failed, or a write came by an old ring. */
  strays = false

  constructor(
    readonly self: string,
    readonly members: () => ReadonlyArray<string>,
    readonly copies: number,
    readonly virtualNodes: number,
    readonly grace: number
  ) {
    this.#source = members()
    this.met = this.#source.length > 1
    this.#view = viewOf(this.#source)
    this.#ring = HashRing.make(this.#source, { virtualNodes })
    this.settled = this.#ring
  }

  /** Whether this node has seen another member since it started: until then it has not joined its cluster. */
  met: boolean

  #view = 0

  /** The members this node sees now, hashed: requester and owner of an atomic operation must agree on them. */
  view(): number {
    this.current()
    return this.#view
  }

  /** The ring of the members this node sees now. */
  current(): HashRing.HashRing {
    const members = this.members()
    if (members !== this.#source) {
      this.#source = members
      this.#view = viewOf(members)
      if (members.length > 1) this.met = true
      const next = HashRing.withMembers(this.#ring, members)
      if (next !== this.#ring) {
        this.#ring = next
        this.changedAt = live.unsafeCurrentTimeMillis()
      }
    }
    return this.#ring
  }

  ownerOf(key: string): string {
    return HashRing.owner(this.current(), key) ?? this.self
  }

  holdersOf(key: string): ReadonlyArray<string> {
    return HashRing.holders(this.current(), key, this.copies)
  }

  /** Whether the ring changed within `handoffGrace`: entries may still be on their way. */
  moving(): boolean {
    return live.unsafeCurrentTimeMillis() - this.changedAt < this.grace
  }

  /** The ring of `members` (a requester's view), kept for the next request of the same view. */
  of(members: ReadonlyArray<string>): HashRing.HashRing {
    const key = members.join("\n")
    let found = this.#views.get(key)
    if (found === undefined) {
      if (this.#views.size > 16) this.#views.clear()
      this.#views.set(key, found = HashRing.make(members, { virtualNodes: this.virtualNodes }))
    }
    return found
  }

  /** Takes `members` as the settled ring; the ring before, or `undefined` when nothing changed. */
  settle(members: ReadonlyArray<string>): HashRing.HashRing | undefined {
    const next = HashRing.withMembers(this.settled, members)
    if (next === this.settled) return undefined
    const before = this.settled
    this.settled = next
    this.changedAt = live.unsafeCurrentTimeMillis()
    // When members joined, as this node saw it: their keys may still be on their way for `handoffGrace`.
    // A node that was alone joined the others, not they it.
    const wasAlone = before.members.length === 1 && before.members[0] === this.self
    const added = wasAlone ? [this.self] : next.members.filter((m) => !before.members.includes(m))
    for (const member of added) this.#joined.set(member, this.changedAt)
    for (const [member, at] of this.#joined) if (this.changedAt - at >= this.grace) this.#joined.delete(member)
    return before
  }

  /**
   * The members of `view` that joined within `handoffGrace`, or that this node sees but has not yet
   * rebalanced for (the ring follows membership at once; the handoff to a newcomer starts later).
   */
  freshIn(view: HashRing.HashRing): ReadonlyArray<string> {
    return view.members.filter((m) => {
      if (!this.settled.members.includes(m)) return true
      const at = this.#joined.get(m)
      return at !== undefined && live.unsafeCurrentTimeMillis() - at < this.grace
    })
  }
}

const viewOf = (members: ReadonlyArray<string>): number => murmur3([...members].sort().join("\n"))
