/** The single-process topology: every operation goes straight to the `Backend`. */
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { Backend } from "./Backend.js"
import { Topology } from "./Topology.js"

/**
 * The `Local` topology: every operation of every cache goes straight to the `Backend` in context.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<Topology, never, Backend> = Layer.effect(
  Topology,
  Effect.map(Backend, (backend) => Topology.of({ name: "local", open: backend.open }))
)
