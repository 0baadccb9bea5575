export { startGateway, type RunningGateway } from './gateway.js';
export { main } from './main.js';
export type { ListenerAddress } from './listener-server.js';
