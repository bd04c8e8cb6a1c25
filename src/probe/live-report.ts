import type { ProbeOptions } from './probe.js';
import { formatStep } from './report.js';

/** Where the live report writes: a terminal (`isTTY`) gets the waiting line, anything else plain lines. */
export interface LiveOutput {
  write(text: string): unknown;
  isTTY?: boolean;
}

const FRAMES = '⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏';
const TICK_MS = 100;
/** Back to the start of the line, and clear it. */
const CLEAR_LINE = '\r\x1b[K';

/**
 * The probe's text report, written a step at a time as each finishes (the probe's onStepStart
 * and onStep), so that a step that waits (a silent firewall, a peer that never greets) does not
 * look like a hang. On a terminal the running step has a line of its own, rewritten in place,
 * saying how long it has waited, which gives way to the step's result. Piped, the output is the
 * finished steps' lines only.
 */
export function liveReport(out: LiveOutput, verbose = false): Required<Pick<ProbeOptions, 'onStepStart' | 'onStep'>> {
  let timer: NodeJS.Timeout | undefined;
  const stopWaiting = () => {
    if (timer === undefined) return;
    clearInterval(timer);
    timer = undefined;
    out.write(CLEAR_LINE);
  };
  return {
    onStepStart(name) {
      stopWaiting();
      if (!out.isTTY) return;
      const since = Date.now();
      let frame = 0;
      const draw = () => {
        const seconds = ((Date.now() - since) / 1000).toFixed(1);
        out.write(`${CLEAR_LINE}${FRAMES[frame++ % FRAMES.length]} ${name.padEnd(9)} waiting ${seconds} s`);
      };
      draw();
      timer = setInterval(draw, TICK_MS);
      // The display never keeps the probe alive: the step's own wait does that.
      timer.unref();
    },
    onStep(step) {
      stopWaiting();
      out.write(formatStep(step, verbose));
    },
  };
}
