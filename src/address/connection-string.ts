import { formatClientString, parseClientString } from './client-string.js';
import type { Endpoint } from './endpoint.js';
import { formatWebSocketUrl, isWebSocketUrl, parseWebSocketUrl } from './websocket-url.js';

/** Parses a client connection string (tcp:, tls:, ssl:, ws://, wss://) into an endpoint, or throws EndpointSyntaxError naming what is wrong. */
export function parseEndpoint(description: string): Endpoint {
  return isWebSocketUrl(description) ? parseWebSocketUrl(description) : parseClientString(description);
}

/** The endpoint as a connection string, escaped so that parseEndpoint gives it back. */
export function formatEndpoint(e: Endpoint): string {
  return e.type === 'ws' ? formatWebSocketUrl(e) : formatClientString(e);
}
