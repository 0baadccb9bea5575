export { parseConfig, loadConfig, type ParseConfigOptions } from './parse-config.js';
export {
  loadStoreLocation,
  loadFleetLocation,
  type StoreLocation,
  type FleetLocation,
} from './store-section.js';
export { ConfigError, type ConfigIssue } from './config-error.js';
export { KNOWN_DETECTORS } from './detectors.js';
export { didYouMean, editDistance } from './did-you-mean.js';
export { matchKeysOf } from './rules-section.js';
