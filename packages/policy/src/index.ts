export * from './policy.js';
export * from './gate.js';
export { normalizeImageRef, normalizeCapability, globToRegExp } from './matchers.js';
