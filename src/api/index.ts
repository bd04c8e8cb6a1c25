// bbgate as a library: `import { … } from 'bbgate'`. What README's "Using bbgate as a library"
// documents, and nothing else: the modules below it are the implementation and may change.

/** Connection strings and proxy settings, parsed once into the values the dialer takes. */
export { parseEndpoint, formatEndpoint } from '../address/connection-string.js';
export type { Endpoint, TcpEndpoint, TlsEndpoint, WsEndpoint } from '../address/endpoint.js';
export { parseProxySetting, describeProxySetting, type ProxySetting } from '../address/proxy-setting.js';
export { readProxyCredentials, type ProxyCredentials } from '../address/proxy-credentials.js';

/** The dialer: a verified byte stream to the master, through proxies, TLS and WebSocket as the endpoint says. */
export { dial, type DialStep, type StepOutcome, type StepRunner } from '../route/dial.js';
export { routeTo, type Destination, type RouteOptions, type TransportLogger } from '../route/route.js';

/** Perspective Broker: the broker, login, and a logged-in session over any byte stream. */
export {
  Broker,
  login,
  openPbSession,
  Referenceable,
  RemoteReference,
  PbFailure,
  type BrokerOptions,
  type PbLoginOptions,
  type PbSession,
} from '../pb/index.js';

/** The probe as a function: the steps `bbgate probe` prints, and the exit status it would give. */
export { probe, type ProbeOptions, type ProbeReport, type ProbeStep, type StepName } from '../probe/probe.js';
export { formatReport } from '../probe/report.js';
export { exitStatusFor, hintFor } from '../probe/diagnosis.js';

/** Every failure bbgate reports is a BbgateError with one code of a closed set. */
export { BbgateError, isBbgateError, type ErrorCode } from '../errors.js';
export { VERSION } from '../version.js';
