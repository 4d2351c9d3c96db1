/**
 * Where a cache's operations run. `Local` sends them to the `Backend`; the cluster topologies send
 * them to the nodes that own the keys; `NearCache` wraps any topology with an in-memory L1.
 */
import * as Context from "effect/Context"
import type * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import type { OpenOptions, Store } from "./Backend.js"
import type { BackendError, ConfigError } from "./Errors.js"

/**
 * Where a cache's operations run: opens one `Store` per cache namespace, closed with the scope.
 *
 * @since 0.1.0
 * @category tags
 */
export class Topology extends Context.Tag("@vela/core/Topology")<Topology, {
  readonly name: string
  readonly open: (options: OpenOptions) => Effect.Effect<Store, BackendError | ConfigError, Scope.Scope>
}>() {}
