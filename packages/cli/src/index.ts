export { startGateway, type GatewayOptions, type RunningGateway } from './gateway.js';
export { main, buildProgram } from './main.js';
export type { ListenerAddress } from './listener-server.js';
