import type { AuthExchange } from './scheme.js';

/** Basic: one leg, the user name and password in base64, so anything after it is a refusal. */
export class BasicExchange implements AuthExchange {
  readonly scheme = 'Basic' as const;
  done = false;

  constructor(private readonly token: string) {}

  async step(): Promise<string> {
    this.done = true;
    return `Basic ${this.token}`;
  }
}
