// The front door of src/pb: what the rest of bbgate (the relay first of all) uses of PB.
export * from './values/values.js';
export * from './values/failure.js';
export * from './values/references.js';
export { Broker, MAX_BROKER_REFS, type BrokerOptions, type BrokerLogger } from './broker.js';
export { login, respond, PortalRoot, type Portal, type Avatar } from './login.js';
export { openPbSession, type PbSession, type PbLoginOptions } from './session.js';
export * from './messages.js';
export { BananaParser, decodeSexps } from './banana/parser.js';
export { BananaScanner, DEFAULT_MAX_DEPTH, DEFAULT_MAX_EXPRESSION_BYTES, MIN_ELEMENT_COST, type BananaEvents, type ParserLimits } from './banana/scanner.js';
export { DIALECTS, PB_VOCABULARY } from './banana/constants.js';
export { BananaWriter, encodeSexp, MAX_TEXT_UNITS, type Sexp } from './banana/writer.js';
export { jelly, type JellyContext } from './jelly/encode.js';
export { unjelly, type UnjellyContext } from './jelly/decode.js';
