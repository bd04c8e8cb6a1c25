/** The structured log the relay writes to: pino's shape, so the CLI hands it a pino logger. */
export interface RelayLogger {
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
  error(fields: object, message: string): void;
}
