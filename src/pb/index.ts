export * from './values.js';
export * from './failure.js';
export * from './references.js';
export { Broker, PB_VERSION, MAX_BROKER_REFS, type BrokerOptions, type BrokerLogger } from './broker.js';
export { login, respond, PortalRoot, type Portal, type Avatar } from './login.js';
export { BananaParser, decodeSexps, type ParserLimits } from './banana/parser.js';
export { BananaWriter, encodeSexp, type Sexp } from './banana/writer.js';
export { jelly, type JellyContext } from './jelly/encode.js';
export { unjelly, type UnjellyContext } from './jelly/decode.js';
