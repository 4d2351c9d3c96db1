/** A namespace held on this node by the Replicated topology: its store, its replica of the merge rule, its near caches. */
import type { Backend } from "@vela/core"
import * as Clock from "effect/Clock"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as PubSub from "effect/PubSub"
import type * as Scope from "effect/Scope"
import { live } from "../live.js"
import { Replica } from "../replica.js"
import * as Spaces from "../spaces.js"

export interface Space {
  readonly name: string
  /** Holds the values as text encoded with the writer's codec. */
  readonly store: Backend.Store
  readonly clock: DelegateClock
  readonly replica: Replica
  readonly changes: PubSub.PubSub<Backend.Invalidation>
  /** A near cache on this node reads this namespace's invalidations. */
  watched: boolean
}

/** The namespaces held on this node, each opened on `backend` on first use. */
export const makeSpaces = (backend: Backend.Backend["Type"], scope: Scope.Scope) =>
  Spaces.make({
    backend,
    scope,
    clock: (open) => new DelegateClock(open?.clock ?? live),
    build: (name, store, clock, changes): Space => ({
      name,
      store,
      clock,
      replica: new Replica(),
      changes,
      watched: false
    }),
    // A peer's request opened it on the live clock: the cache's clock governs from now on.
    reopen: (space, open) => {
      space.clock.target = open.clock
    }
  })

/** The clock of the cache that opened a namespace, or the live clock until one does. */
export class DelegateClock implements Clock.Clock {
  readonly [Clock.ClockTypeId]: Clock.ClockTypeId = Clock.ClockTypeId
  constructor(public target: Clock.Clock) {}
  unsafeCurrentTimeMillis(): number {
    return this.target.unsafeCurrentTimeMillis()
  }
  get currentTimeMillis(): Effect.Effect<number> {
    return Effect.sync(() => this.target.unsafeCurrentTimeMillis())
  }
  unsafeCurrentTimeNanos(): bigint {
    return this.target.unsafeCurrentTimeNanos()
  }
  get currentTimeNanos(): Effect.Effect<bigint> {
    return Effect.sync(() => this.target.unsafeCurrentTimeNanos())
  }
  sleep(duration: Duration.Duration): Effect.Effect<void> {
    return live.sleep(duration)
  }
}
