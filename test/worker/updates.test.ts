// Line splitting and buffering of command output, as buildbot-worker does it, minus its data loss.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Tuple } from '../../src/pb/values/values.js';
import { UpdateBuffer, type Update } from '../../src/worker/updates.js';
import { waitFor } from '../helpers/wait.js';

function collect(options = {}) {
  const batches: Update[][] = [];
  const buffer = new UpdateBuffer((items) => batches.push(items), { bufferTimeout: 10_000, ...options });
  return { buffer, batches, all: () => batches.flat() };
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
});
