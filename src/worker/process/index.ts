export { signalLiveGroups } from './group.js';
export { runProcess, type ProcessContext, type ProcessSpec } from './run-process.js';
export type { ArgvItem, CommandLine, Obfuscated } from './command-line.js';
export type { EnvChanges, EnvValue } from './environment.js';
export type { LogfileSpec, Seconds } from './headers.js';
export type { CommandLogger, CommandUpdates } from './reporting.js';
