export * as Backend from "./Backend.js"
export * as Codec from "./Codec.js"
export {
  BackendError,
  CacheClosed,
  type CacheError,
  CodecError,
  ConfigError,
  FetchTimeout,
  InvalidKey,
  NodeUnavailable,
  NotFound,
  Unsupported,
  WrongType
} from "./Errors.js"
export * as Local from "./Local.js"
export * as Memory from "./Memory.js"
export * as NearCache from "./NearCache.js"
export * as Stats from "./Stats.js"
export * as Telemetry from "./Telemetry.js"
export * as Topology from "./Topology.js"
export * as Vela from "./Vela.js"
