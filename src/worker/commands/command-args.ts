import { RemoteReference } from '../../pb/values/references.js';
import { toNumber, toText, type PbValue } from '../../pb/values/values.js';
import { pyError } from './oserror.js';

/**
 * Typed reads of a command's arguments. The master sends every key it knows,
 * None included, so "absent" and null are the same here; a value of the wrong
 * type fails the command with the TypeError Python would have raised.
 */
export class CommandArgs {
  constructor(
    private readonly command: string,
    private readonly args: ReadonlyMap<string, PbValue>,
  ) {}

  private get(name: string): PbValue | undefined {
    return this.args.get(name) ?? undefined;
  }

  text(name: string): string {
    const value = this.optionalText(name);
    if (value === undefined) throw pyError('TypeError', `${this.command}: argument ${name} must be a string, not None`);
    return value;
  }

  optionalText(name: string): string | undefined {
    const value = this.get(name);
    if (value === undefined) return undefined;
    const text = toText(value);
    if (text === undefined) throw this.wrongType(name, 'a string', value);
    return text;
  }

  /** A path argument that may be one string or a list of them (rmdir's `dir`). */
  textList(name: string): string[] {
    const value = this.get(name);
    if (Array.isArray(value)) {
      return value.map((item) => {
        const text = toText(item);
        if (text === undefined) throw this.wrongType(name, 'a list of strings', item);
        return text;
      });
    }
    return [this.text(name)];
  }

  optionalNumber(name: string): number | undefined {
    const value = this.get(name);
    if (value === undefined) return undefined;
    const n = typeof value === 'boolean' ? undefined : toNumber(value);
    if (n === undefined) throw this.wrongType(name, 'a number', value);
    return n;
  }

  number(name: string): number {
    const n = this.optionalNumber(name);
    if (n === undefined) throw pyError('TypeError', `${this.command}: argument ${name} must be a number, not None`);
    return n;
  }

  /** Python truthiness, as `if args.get(name):` reads it. */
  flag(name: string): boolean {
    const value = this.get(name);
    if (value === undefined || value === false || value === '' || value === 0) return false;
    if (value instanceof Uint8Array) return value.length > 0;
    if (Array.isArray(value)) return value.length > 0;
    const n = toNumber(value);
    return n === undefined ? true : n !== 0;
  }

  reference(name: string): RemoteReference {
    const value = this.get(name);
    if (!(value instanceof RemoteReference)) throw this.wrongType(name, 'a remote reference', value ?? null);
    return value;
  }

  private wrongType(name: string, expected: string, value: PbValue): Error {
    const got = value === null ? 'None' : Array.isArray(value) ? 'list' : value instanceof Map ? 'dict' : typeof value;
    return pyError('TypeError', `${this.command}: argument ${name} must be ${expected}, not ${got}`);
  }
}
