export * from './admin-server.js';
export * from './ssh-keys.js';
export { sendJson } from './http-util.js';
