import { TextDecoder } from 'node:util';

// Python's codecs for the tac's unicode_encoding, as buildbot-worker decodes a
// command's output with them: incrementally, with errors='replace'. Only
// codecs whose Python behaviour bbgate reproduces exactly are known; a tac
// naming another is refused at start, as Python refuses an unknown codec.

/** A streaming decoder, as TextDecoder: `decode(chunk, { stream: true })` keeps an incomplete character for the next chunk; `decode()` flushes. */
export interface StreamDecoder {
  decode(chunk?: Uint8Array, options?: { stream?: boolean }): string;
}

export interface PythonCodec {
  /** Python's canonical name, e.g. 'utf-8', 'latin-1'. */
  readonly name: string;
  decoder(): StreamDecoder;
  /** str.encode(name) with errors='strict': undefined where Python raises UnicodeEncodeError. */
  encode(text: string): Uint8Array | undefined;
}

/** A single-byte codec: one byte, one character (or U+FFFD where Python's table has none). */
function singleByte(name: string, map: (b: number) => string): PythonCodec {
  const table = Array.from({ length: 256 }, (_, b) => map(b));
  const bytes = new Map(table.flatMap((ch, b) => (ch === '\ufffd' ? [] : [[ch, b] as const])));
  return {
    name,
    decoder: () => ({
      decode(chunk?: Uint8Array): string {
        if (!chunk) return '';
        let out = '';
        for (const b of chunk) out += table[b]!;
        return out;
      },
    }),
    encode(text: string): Uint8Array | undefined {
      const out: number[] = [];
      for (const ch of text) {
        const b = bytes.get(ch);
        if (b === undefined) return undefined;
        out.push(b);
      }
      return Uint8Array.from(out);
    },
  };
}

/**
 * Python's cp1252 from 0x80 to 0x9f (elsewhere it is latin-1); 0 marks the five
 * bytes it leaves undefined. Written out because Node's TextDecoder decodes
 * 'windows-1252' as latin-1.
 */
const CP1252_HIGH = [
  0x20ac, 0, 0x201a, 0x0192, 0x201e, 0x2026, 0x2020, 0x2021, 0x02c6, 0x2030, 0x0160, 0x2039, 0x0152, 0, 0x017d, 0,
  0, 0x2018, 0x2019, 0x201c, 0x201d, 0x2022, 0x2013, 0x2014, 0x02dc, 0x2122, 0x0161, 0x203a, 0x0153, 0, 0x017e, 0x0178,
];

const CODECS: PythonCodec[] = [
  // ignoreBOM keeps a leading U+FEFF, as Python's utf-8 codec does.
  {
    name: 'utf-8',
    decoder: () => new TextDecoder('utf-8', { ignoreBOM: true }),
    // Lone surrogates are what Python's strict utf-8 refuses.
    encode: (text) => (/\p{Cs}/u.test(text) ? undefined : Buffer.from(text, 'utf8')),
  },
  singleByte('latin-1', (b) => String.fromCharCode(b)),
  singleByte('ascii', (b) => (b < 0x80 ? String.fromCharCode(b) : '\ufffd')),
  singleByte('cp1252', (b) => {
    if (b < 0x80 || b >= 0xa0) return String.fromCharCode(b);
    const ch = CP1252_HIGH[b - 0x80]!;
    return ch === 0 ? '\ufffd' : String.fromCharCode(ch);
  }),
];

/** The encodings.aliases entries (Python 3.11) that name a codec bbgate has, spelled as Python spells them. */
const ALIASES: Record<string, string> = {
  cp65001: 'utf_8', u8: 'utf_8', utf: 'utf_8', utf8: 'utf_8', utf8_ucs2: 'utf_8', utf8_ucs4: 'utf_8',
  '8859': 'latin_1', cp819: 'latin_1', csisolatin1: 'latin_1', ibm819: 'latin_1', iso8859: 'latin_1', iso8859_1: 'latin_1', iso_8859_1: 'latin_1',
  iso_8859_1_1987: 'latin_1', iso_ir_100: 'latin_1', l1: 'latin_1', latin: 'latin_1', latin1: 'latin_1',
  '646': 'ascii', 'ansi_x3.4_1968': 'ascii', 'ansi_x3.4_1986': 'ascii', ansi_x3_4_1968: 'ascii', cp367: 'ascii', csascii: 'ascii', ibm367: 'ascii',
  iso646_us: 'ascii', 'iso_646.irv_1991': 'ascii', iso_ir_6: 'ascii', us: 'ascii', us_ascii: 'ascii',
  '1252': 'cp1252', windows_1252: 'cp1252',
};

/** Python's encodings modules for the codecs bbgate has. */
const MODULES: Record<string, string> = { utf_8: 'utf-8', latin_1: 'latin-1', ascii: 'ascii', cp1252: 'cp1252' };

/**
 * codecs.lookup's normalisation (C's _Py_normalize_encoding): ASCII letters and
 * digits, lower-cased, and dots are kept; each run of anything else, non-ASCII
 * letters included, is one '_' between them, and nothing at either end.
 */
function normalizeEncoding(name: string): string {
  let out = '';
  let punct = false;
  for (const ch of name) {
    if (/^[A-Za-z0-9.]$/.test(ch)) {
      if (punct && out !== '') out += '_';
      punct = false;
      out += ch.toLowerCase();
    } else {
      punct = true;
    }
  }
  return out;
}

/**
 * The codec Python's codecs.lookup(name) finds, if bbgate knows it: encodings'
 * search function tries the alias of the normalised name (or of that name with
 * its dots as '_'), else the module of that name, which cannot contain a dot.
 */
export function lookupCodec(name: string): PythonCodec | undefined {
  const norm = normalizeEncoding(name);
  const module = Object.hasOwn(ALIASES, norm) ? ALIASES[norm] : Object.hasOwn(ALIASES, norm.replace(/\./g, '_')) ? ALIASES[norm.replace(/\./g, '_')] : norm;
  if (module === undefined || !Object.hasOwn(MODULES, module)) return undefined;
  return CODECS.find((c) => c.name === MODULES[module]);
}

/** The codec for the platform default, sys.getfilesystemencoding() on Linux: UTF-8. */
export const UTF8: PythonCodec = CODECS[0]!;
