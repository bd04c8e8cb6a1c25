export { connectThroughProxy, type AuthLeg, type Tunnel, type TunnelAuth, type TunnelOptions } from './connect.js';
export { proxyFromEnvironment } from './environment.js';
export { ProxyError } from './failures.js';
