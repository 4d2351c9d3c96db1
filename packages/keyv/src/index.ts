/**
 * A Keyv store on a Vela cache.
 *
 * @since 0.1.0
 * @category models
 */
export { VelaKeyvStore } from "./VelaKeyvStore.js"
