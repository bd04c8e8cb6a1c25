import { BbgateError } from '../../errors.js';

/**
 * A buildbot.tac bbgate cannot run. The code says whose problem it is:
 * TAC_SYNTAX, Python would not compile it either; TAC_UNSUPPORTED, Python
 * would run it but bbgate does not run arbitrary Python; TAC_INVALID, it
 * compiles but no worker could run with it (an undefined name, a wrong
 * argument, a value out of range). bbgate parses only the Python a tac
 * needs, so a file that is broken and also uses constructs bbgate does not
 * run may be reported as TAC_UNSUPPORTED at the first of them. Messages never
 * quote a value read (or made) from the environment, which could be a secret,
 * nor the password; see describeValue in ./values.ts.
 */
export class TacError extends BbgateError {
  readonly file: string;
  /** 1-based; 0 when the problem is the file as a whole. */
  readonly line: number;

  constructor(code: 'TAC_SYNTAX' | 'TAC_UNSUPPORTED' | 'TAC_INVALID', file: string, line: number, what: string, options?: { cause?: unknown }) {
    super(code, `${line > 0 ? `${file}:${line}` : file}: ${what}`, options);
    this.file = file;
    this.line = line;
  }
}
