/** The live clock the cluster runs on, whatever `Clock` the caller's context holds. */
import * as Clock from "effect/Clock"

export const live: Clock.Clock = Clock.make()
