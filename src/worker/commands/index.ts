import type { CommandSpec } from './types.js';

/** Every command the worker offers, under the names the master uses. */
export const COMMANDS: ReadonlyMap<string, CommandSpec> = new Map<string, CommandSpec>([]);
