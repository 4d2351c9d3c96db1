/** The live clock the cluster runs on, whatever `Clock` the caller's context holds. */
import { Clock } from "effect"

export const live: Clock.Clock = Clock.make()
