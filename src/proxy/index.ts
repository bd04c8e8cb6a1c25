export { connectThroughProxy, type Tunnel, type TunnelOptions } from './connect.js';
export { proxyFromEnvironment } from './environment.js';
export { ProxyError } from './failures.js';
