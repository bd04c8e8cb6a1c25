// The transfer window's arithmetic, on a simulated link: a clock the test moves, blocks that
// complete in order one round trip after they went out, behind a bottleneck of a given rate.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AdaptiveWindow, FixedWindow, WINDOW_CAP, WINDOW_FLOOR_BLOCKS, fixedWindow, type SentBlock, type TransferWindow } from '../../src/worker/commands/transfer-window.js';

const KiB = 1024;
const MiB = 1024 * 1024;

/**
 * A link with a round trip of `rttMs` behind a bottleneck of `rate` bytes/ms: a block completes
 * when the bottleneck has passed it (after those before it) plus the round trip. The sender
 * keeps the window full for each phase's `durationMs`, then lets what is in flight complete.
 * Returns the time at the end, the limit after each completion in the phases, and the bytes delivered.
 */
function simulate(window: TransferWindow, blockSize: number, phases: { rttMs: number; rate: number; durationMs: number }[], start = 0): { now: number; limits: number[]; delivered: number } {
  let now = start;
  const inFlight: { block: SentBlock; due: number }[] = [];
  let bottleneckFree = now;
  const limits: number[] = [];
  let delivered = 0;
  for (const phase of phases) {
    const end = now + phase.durationMs;
    while (now < end) {
      while (window.allows(blockSize)) {
        const block = window.sent(blockSize, now);
        bottleneckFree = Math.max(bottleneckFree, now) + blockSize / phase.rate;
        inFlight.push({ block, due: bottleneckFree + phase.rttMs });
      }
      const next = inFlight.shift()!;
      now = Math.max(now, next.due);
      window.done(next.block, now);
      delivered += blockSize;
      if (window instanceof AdaptiveWindow) limits.push(window.limit);
    }
  }
  // The end of the data: what is in flight completes, nothing more goes out.
  for (const next of inFlight) {
    now = Math.max(now, next.due);
    window.done(next.block, now);
    delivered += blockSize;
  }
  return { now, limits, delivered };
}

describe('AdaptiveWindow', () => {
  it('starts at the floor: 4 blocks, and always lets one block go when nothing is in flight', () => {
    const w = new AdaptiveWindow(16 * KiB);
    assert.equal(w.limit, WINDOW_FLOOR_BLOCKS * 16 * KiB);
    for (let i = 0; i < WINDOW_FLOOR_BLOCKS; i++) {
      assert.ok(w.allows(16 * KiB), `block ${i}`);
      w.sent(16 * KiB, 0);
    }
    assert.equal(w.allows(16 * KiB), false, 'a fifth block exceeds the floor');
    assert.equal(w.allows(0), true, 'an empty call takes no room');
    assert.equal(w.inFlight, 4 * 16 * KiB);
    // A block bigger than the whole window still goes out alone.
    const big = new AdaptiveWindow(MiB, 2 * MiB);
    assert.ok(big.allows(3 * MiB));
  });

  it('grows to 2 × rate × round trip: 100 MB/s over 20 ms keeps about 4 MB in flight', () => {
    const w = new AdaptiveWindow(16 * KiB);
    const rate = 100_000; // bytes per ms: 100 MB/s
    simulate(w, 16 * KiB, [{ rttMs: 20, rate, durationMs: 2000 }]);
    const bdp = rate * 20;
    assert.ok(w.limit >= 1.8 * bdp && w.limit <= 2.5 * bdp, `limit ${w.limit} for a bandwidth-delay product of ${bdp}`);
  });

  it('keeps the link full: the simulated transfer runs at the bottleneck rate after the start', () => {
    const w = new AdaptiveWindow(16 * KiB);
    const rate = 50_000;
    const { now, delivered } = simulate(w, 16 * KiB, [{ rttMs: 20, rate, durationMs: 3000 }]);
    // 3 s at the bottleneck rate, less the start (a few round trips of growth).
    assert.ok(delivered / now >= 0.9 * rate, `${(delivered / now).toFixed(0)} bytes/ms of ${rate}`);
  });

  it('never goes beyond the cap, however fast and far the link', () => {
    const w = new AdaptiveWindow(64 * KiB);
    simulate(w, 64 * KiB, [{ rttMs: 200, rate: 1_000_000, durationMs: 4000 }]);
    assert.equal(w.limit, WINDOW_CAP);
    assert.ok(w.peak <= WINDOW_CAP, `peak ${w.peak}`);
  });

  it('stays at the floor on a link too short for more (loopback: 1 GB/s, 50 µs)', () => {
    const w = new AdaptiveWindow(256 * KiB);
    simulate(w, 256 * KiB, [{ rttMs: 0.05, rate: 1_000_000, durationMs: 200 }]);
    assert.equal(w.limit, WINDOW_FLOOR_BLOCKS * 256 * KiB);
  });

  it('shrinks when the master stays slower for 10 rounds, once the faster samples have aged out', () => {
    const w = new AdaptiveWindow(16 * KiB);
    const { limits } = simulate(w, 16 * KiB, [
      { rttMs: 20, rate: 100_000, durationMs: 2000 },
      // 4 MB in flight at 5 MB/s: each round takes the best part of a second.
      { rttMs: 20, rate: 5_000, durationMs: 15_000 },
    ]);
    const fast = limits[Math.floor((limits.length * 200) / 275)]!;
    const slow = w.limit;
    assert.ok(fast >= 3 * MiB, `fast limit ${fast}`);
    assert.ok(slow <= 4 * 5_000 * 20 + 16 * KiB, `slow limit ${slow} (fast was ${fast})`);
  });

  it('a stalled master: nothing more goes out, in-flight bytes stay at the limit', () => {
    const w = new AdaptiveWindow(16 * KiB);
    const { now } = simulate(w, 16 * KiB, [{ rttMs: 20, rate: 100_000, durationMs: 1000 }]);
    const limit = w.limit;
    let sent = 0;
    while (w.allows(16 * KiB)) {
      w.sent(16 * KiB, now);
      sent++;
    }
    assert.ok(w.inFlight <= limit, `${w.inFlight} in flight, limit ${limit}`);
    assert.ok(sent <= Math.ceil(limit / (16 * KiB)));
    assert.equal(w.allows(16 * KiB), false);
  });

  it('a hiccup (the master stops for a second) does not shrink the window: it is one long round', () => {
    const w = new AdaptiveWindow(16 * KiB);
    const { now } = simulate(w, 16 * KiB, [{ rttMs: 20, rate: 100_000, durationMs: 1000 }]);
    const before = w.limit;
    // Everything in flight completes a second late, then the link is as fast as before.
    const blocks = [];
    while (w.allows(16 * KiB)) blocks.push(w.sent(16 * KiB, now));
    for (const b of blocks) w.done(b, now + 1000);
    simulate(w, 16 * KiB, [{ rttMs: 20, rate: 100_000, durationMs: 60 }], now + 1000);
    assert.ok(w.limit >= before * 0.9, `${w.limit} after the hiccup, ${before} before`);
  });

  it('idle time between blocks does not read as a slow link', () => {
    const w = new AdaptiveWindow(16 * KiB);
    const { now } = simulate(w, 16 * KiB, [{ rttMs: 20, rate: 100_000, durationMs: 1000 }]);
    const before = w.limit;
    assert.ok(before > 1 * MiB, `${before} after the fast phase`);
    // One lone block 5 s later (nothing in flight meanwhile), completing at the link's speed.
    const b = w.sent(16 * KiB, now + 5000);
    w.done(b, now + 5020);
    assert.ok(w.limit >= before * 0.9, `${w.limit} after idle, ${before} before`);
  });
});

describe('FixedWindow', () => {
  it('allows exactly n blocks, whatever their size', () => {
    for (const n of [1, 2, 4, 8]) {
      const w = new FixedWindow(n);
      const blocks = [];
      for (let i = 0; i < n; i++) {
        assert.ok(w.allows(), `block ${i + 1} of ${n}`);
        blocks.push(w.sent(i === 0 ? 10 * MiB : 1, i));
      }
      assert.equal(w.allows(), false);
      w.done(blocks[0]!, 100);
      assert.ok(w.allows());
      assert.equal(w.peak, 10 * MiB + n - 1);
    }
  });

  it('refuses a count that is not a positive whole number, when the factory is made', () => {
    for (const n of [0, -1, 1.5, NaN]) assert.throws(() => fixedWindow(n), RangeError);
  });
});
