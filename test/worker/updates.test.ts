// Line splitting and buffering of command output, as buildbot-worker does it, minus its data loss.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BananaWriter, MAX_TEXT_UNITS } from '../../src/pb/banana/writer.js';
import { jelly } from '../../src/pb/jelly/encode.js';
import { PyText, Tuple } from '../../src/pb/values/values.js';
import { UpdateBuffer, type Update, type UpdateOptions } from '../../src/worker/updates.js';
import { int, pick, rng, type Rng } from '../helpers/random-values.js';
import { waitFor } from '../helpers/wait.js';

/** An update with its text as plain strings (the buffer sends PyText pieces). */
function plain([key, value]: Update): Update {
  if (value instanceof PyText) return [key, value.toString()];
  if (value instanceof Tuple && value[1] instanceof PyText) return [key, Tuple.from([value[0], value[1].toString()])];
  return [key, value];
}

function collect(options = {}) {
  const batches: Update[][] = [];
  const buffer = new UpdateBuffer((items) => batches.push(items), { bufferTimeout: 10_000, ...options });
  return { buffer, batches, all: () => batches.flat().map(plain) };
}

describe('UpdateBuffer', () => {
  it('passes on whole lines only, and ends a held partial line with "\\n" at the end', () => {
    const { buffer, all } = collect();
    buffer.text('stdout', 'a\rb\r\nc');
    buffer.flush();
    assert.deepEqual(all(), [['stdout', 'a\nb\nc\n']]);
  });

  it('normalises CRLF split across chunks, lone CRs, cursor escapes and backspaces', () => {
    const { buffer, all } = collect();
    buffer.text('stdout', 'one\r');
    buffer.text('stdout', '\ntwo\x1b[2Jthree\x08\x08four\x1b[12;40Hfive\x1b[u\n');
    buffer.flush();
    assert.deepEqual(all(), [['stdout', 'one\ntwo\nthree\nfour\nfive\n\n']]);
  });

  it('merges consecutive items of one kind and keeps the order across kinds', () => {
    const { buffer, all } = collect();
    buffer.text('stdout', 'a\n');
    buffer.text('stdout', 'b\n');
    buffer.text('stderr', 'e\n');
    buffer.other('rc', 0);
    buffer.log('build.log', 'x\n');
    buffer.log('build.log', 'y\n');
    buffer.log('other.log', 'z\n');
    buffer.flush();
    const items = all();
    assert.deepEqual(items.slice(0, 3), [['stdout', 'a\nb\n'], ['stderr', 'e\n'], ['rc', 0]]);
    assert.ok(items[3]![1] instanceof Tuple);
    assert.deepEqual([...(items[3]![1] as string[])], ['build.log', 'x\ny\n']);
    assert.deepEqual([...(items[4]![1] as string[])], ['other.log', 'z\n']);
  });

  it('sends a batch once 64 KiB are held, and after the timeout otherwise', async () => {
    const { buffer, batches } = collect({ bufferSize: 1000 });
    buffer.text('stdout', 'x'.repeat(500) + '\n');
    assert.equal(batches.length, 0);
    buffer.text('stdout', 'y'.repeat(500) + '\n');
    assert.equal(batches.length, 1);
    const timed = collect({ bufferTimeout: 30 });
    timed.buffer.text('stdout', 'late\n');
    assert.equal(timed.batches.length, 0, 'held until the timeout');
    await waitFor(() => timed.batches.length > 0, 'the batch sent by the timeout');
    assert.deepEqual(timed.all(), [['stdout', 'late\n']]);
  });

  it('cuts lines longer than 4096 characters into 4095-character pieces and loses nothing (3.7 loses most of them)', () => {
    const { buffer, all } = collect({ bufferSize: 64 * 1024 });
    const line = Array.from({ length: 200_000 }, (_, i) => String.fromCharCode(97 + (i % 26))).join('');
    for (let i = 0; i < line.length; i += 7000) buffer.text('stdout', line.slice(i, i + 7000));
    buffer.text('stdout', '\nshort\n' + 'y'.repeat(4095) + '\n' + 'z'.repeat(4096) + '\n');
    buffer.flush();
    const out = all().map(([, v]) => v).join('');
    const lines = out.split('\n');
    assert.equal(out.replace(/\n/g, ''), line + 'short' + 'y'.repeat(4095) + 'z'.repeat(4096));
    assert.ok(lines.every((l) => l.length <= 4095), 'no line over 4095 characters');
    assert.deepEqual(lines.slice(-5), ['short', 'y'.repeat(4095), 'z'.repeat(4095), 'z', '']);
  });

  it('drops everything on discard (the connection is gone)', () => {
    const { buffer, batches } = collect();
    buffer.text('stdout', 'a\npartial');
    buffer.discard();
    buffer.flush();
    assert.equal(batches.length, 0);
  });

  it('cuts text longer than one string element can carry into items that can, in order', () => {
    const { buffer, batches } = collect({ bufferSize: 1 << 30 });
    const text = ('x'.repeat(100) + '‘\n').repeat(5000);
    buffer.text('stdout', text);
    buffer.flush();
    const items = batches.flat();
    assert.ok(items.length > 1, 'one item would be refused by the encoder');
    for (const [key, value] of items) {
      assert.equal(key, 'stdout');
      assert.ok((value as PyText).length <= MAX_TEXT_UNITS);
      const w = new BananaWriter();
      jelly(w, value);
    }
    assert.equal(items.map(([, v]) => String(v)).join(''), text);
  });

  it('splits and batches exactly as the line-by-line algorithm it replaced, on random output (an oracle)', () => {
    for (let seed = 1; seed <= 300; seed++) {
      const r = rng(seed);
      const options: UpdateOptions = { bufferSize: pick(r, [64, 1000, 64 * 1024]), maxLineLength: pick(r, [4096, 8, 30, 200]) };
      const ours = collect(options);
      const before = new LineByLineBuffer((items) => oldBatches.push(items), { bufferTimeout: 10_000, ...options });
      const oldBatches: Update[][] = [];
      for (let n = int(r, 40); n > 0; n--) {
        const roll = r();
        if (roll < 0.7) {
          const key = pick(r, ['stdout', 'stderr', 'header'] as const);
          const text = randomOutput(r);
          ours.buffer.text(key, text);
          before.text(key, text);
        } else if (roll < 0.9) {
          const name = pick(r, ['a.log', 'b.log']);
          const text = randomOutput(r);
          ours.buffer.log(name, text);
          before.log(name, text);
        } else {
          ours.buffer.other('rc', n);
          before.other('rc', n);
        }
      }
      ours.buffer.flush();
      before.flush();
      assert.deepEqual(ours.batches.map((b) => b.map(plain)), oldBatches, `seed ${seed}`);
    }
  });
});

const PIECES = ['a', 'bc', ' ', '\n', '\r', '\r\n', '\x1b[2J', '\x1b[u', '\x1b[12;40H', '\x1b[3;4f', '\x1b[', '\x08', '\x08\x08', 'é', '‘', '😀', '\ud83d', 'x'.repeat(50), 'y'.repeat(5000)];

/** Output cut anywhere: inside CRLFs, escapes and surrogate pairs, lines of any length. */
function randomOutput(r: Rng): string {
  let s = '';
  for (let n = 1 + int(r, 60); n > 0; n--) s += pick(r, PIECES);
  const from = int(r, s.length);
  return r() < 0.3 ? s.slice(from) : s;
}

/** The UpdateBuffer as it was before slices and pieces: every line split, cut and joined one by one. */
class LineByLineBuffer {
  private readonly bufferSize: number;
  private readonly maxLineLength: number;
  private readonly partial = new Map<string, string>();
  private items: Update[] = [];
  private held = 0;
  private static readonly NEWLINES = /\r\n|\r(?=[^\n])|\x1b\[u|\x1b\[[0-9]+;[0-9]+[Hf]|\x1b\[2J|\x08+/g;

  constructor(private readonly send: (items: Update[]) => void, options: UpdateOptions = {}) {
    this.bufferSize = options.bufferSize ?? 64 * 1024;
    this.maxLineLength = options.maxLineLength ?? 4096;
  }

  text(key: string, text: string): void {
    const lines = this.lines(key, text);
    if (lines) this.add(key, lines);
  }

  log(name: string, text: string): void {
    const lines = this.lines(`log:${name}`, text);
    if (lines) this.add('log', lines, name);
  }

  other(key: string, value: unknown): void {
    this.items.push([key, value]);
    this.held += 20;
  }

  flush(): void {
    for (const stream of [...this.partial.keys()].sort()) {
      const rest = this.partial.get(stream)!;
      this.partial.delete(stream);
      if (stream.startsWith('log:')) this.add('log', `${rest}\n`, stream.slice(4));
      else this.add(stream, `${rest}\n`);
    }
    this.sendNow();
  }

  private lines(stream: string, text: string): string {
    const normal = ((this.partial.get(stream) ?? '') + text).replace(LineByLineBuffer.NEWLINES, '\n');
    const piece = this.maxLineLength - 1;
    let out = '';
    let start = 0;
    for (;;) {
      const newline = normal.indexOf('\n', start);
      const end = newline < 0 ? normal.length : newline;
      for (; end - start > piece; start += piece) out += `${normal.slice(start, start + piece)}\n`;
      if (newline < 0) break;
      out += normal.slice(start, newline + 1);
      start = newline + 1;
    }
    if (start < normal.length) this.partial.set(stream, normal.slice(start));
    else this.partial.delete(stream);
    return out;
  }

  private add(key: string, text: string, logname?: string): void {
    const last = this.items[this.items.length - 1];
    if (last && last[0] === key && (logname === undefined || (last[1] as string[])[0] === logname)) {
      if (logname === undefined) last[1] = (last[1] as string) + text;
      else last[1] = Tuple.from([logname, (last[1] as string[])[1] + text]);
    } else {
      this.items.push([key, logname === undefined ? text : Tuple.from([logname, text])]);
    }
    this.held += text.length + 16;
    if (this.held >= this.bufferSize) this.sendNow();
  }

  private sendNow(): void {
    if (this.items.length === 0) return;
    const items = this.items;
    this.items = [];
    this.held = 0;
    this.send(items);
  }
}
