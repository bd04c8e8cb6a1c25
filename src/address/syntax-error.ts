import { BbgateError } from '../errors.js';
import { redactCredentials } from './redact.js';

/**
 * A connection string that does not parse: `"DESCRIPTION": PROBLEM`, where the
 * description is quoted with its user info hidden (see ./redact.ts). Taking
 * the description apart from the problem is what keeps every message to that.
 */
export class EndpointSyntaxError extends BbgateError {
  constructor(description: string, problem: string) {
    super('ENDPOINT_SYNTAX', `"${redactCredentials(description)}": ${problem}`);
  }
}
