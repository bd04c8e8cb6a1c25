import { CommandError } from '../../errors.js';
import { reprBytes } from '../python/repr.js';
import { shellQuote } from '../python/shlex.js';

/** An argument that runs as `real` and is shown everywhere as `fake` (a password, a token). */
export interface Obfuscated {
  readonly real: string;
  readonly fake: string;
}

export type ArgvItem = string | Obfuscated;

/** A string runs through `/bin/sh -c`; a list is the argv itself, argv[0] looked up in the child's PATH. */
export type CommandLine = string | readonly ArgvItem[];

export interface ResolvedCommand {
  /** What is executed. */
  readonly argv: readonly string[];
  /** argv[0] as it may be shown (the fake one). */
  readonly program: string;
  /** The first header: the string command, or the argv shell-quoted with the fake values. */
  readonly display: string;
  /**
   * The fake command as buildbot-worker prints it in the `argv:` header and the
   * timeout messages: Python's repr of the UTF-8 bytes (`[b'make', b'-j4']`).
   */
  readonly fakeRepr: string;
}

function real(item: ArgvItem): string {
  return typeof item === 'string' ? item : item.real;
}

function fake(item: ArgvItem): string {
  return typeof item === 'string' ? item : item.fake;
}

function bytesRepr(text: string): string {
  return reprBytes(Buffer.from(text, 'utf8'));
}

export function resolveCommand(command: CommandLine): ResolvedCommand {
  if (typeof command === 'string') {
    return { argv: ['/bin/sh', '-c', command], program: '/bin/sh', display: command, fakeRepr: bytesRepr(command) };
  }
  if (command.length === 0) throw new CommandError('COMMAND_ARGS', 'the command is an empty list');
  const fakes = command.map(fake);
  return {
    argv: command.map(real),
    program: fakes[0]!,
    display: fakes.map(shellQuote).join(' '),
    fakeRepr: `[${fakes.map(bytesRepr).join(', ')}]`,
  };
}
