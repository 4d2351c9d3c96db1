/**
 * A clock that reads the time a request carries. A namespace a node holds for others decides
 * expiry by the requester's clock, so every holder of a key agrees with the cache that wrote it
 * (and a `TestClock` suite stays valid across nodes). Sleeping uses the live clock.
 */
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"

export class RequestClock implements Clock.Clock {
  readonly [Clock.ClockTypeId]: Clock.ClockTypeId = Clock.ClockTypeId
  /** The time of the latest request, in epoch milliseconds. */
  now: number

  constructor(now: number, readonly live: Clock.Clock) {
    this.now = now
  }

  unsafeCurrentTimeMillis(): number {
    return this.now
  }

  get currentTimeMillis(): Effect.Effect<number> {
    return Effect.sync(() => this.now)
  }

  unsafeCurrentTimeNanos(): bigint {
    return BigInt(Math.round(this.now)) * BigInt(1_000_000)
  }

  get currentTimeNanos(): Effect.Effect<bigint> {
    return Effect.sync(() => this.unsafeCurrentTimeNanos())
  }

  sleep(duration: Duration.Duration): Effect.Effect<void> {
    return this.live.sleep(Duration.decode(duration))
  }
}
