export * from './admin-server.js';
export * from './ssh-keys.js';
export { readJson, sendJson, bearerToken } from './http-util.js';
