import type { SentBlock, TransferWindow } from './transfer-window.js';

/**
 * Calls to the master's FileWriter or FileReader kept in flight as far as a
 * window allows, their answers taken in call order (a PB peer answers the
 * calls of one connection in order, and the master's write and read are
 * synchronous, so the blocks land in order on its side too).
 */
export interface PipelineSteps<T> {
  /** The length of the next call, or 0 when no call follows (interrupt, maxsize). Asked before each call. */
  nextLength(): number;
  /**
   * Makes a call of up to `length` bytes; `bytes` is what it puts in flight.
   * Undefined when there was nothing left to send (the end of the data).
   */
  call(length: number): Promise<{ bytes: number; answer: Promise<T> } | undefined>;
  /**
   * Takes the answers in call order: the oldest, with those after it that
   * have already arrived (so that a download writes them to disk at once);
   * false: the data has ended, take no more.
   */
  take(answers: Answer<T>[]): Promise<boolean> | boolean;
}

export interface Answer<T> {
  answer: T;
  /** What its call put in flight. */
  bytes: number;
}

interface InFlight<T> {
  block: SentBlock;
  answer: Promise<T>;
  /** Set when the answer has arrived (not for a failure). */
  arrived?: { answer: T };
}

/**
 * Runs the calls; resolves once none is in flight, with the first failure (of
 * a call, an answer or take) if there was one. After a failure or the end of
 * the data no call follows, and the answers still due are awaited but not
 * taken; after an interrupt or maxsize they are still taken.
 */
export async function runPipeline<T>(window: TransferWindow, steps: PipelineSteps<T>, clock: () => number = () => performance.now()): Promise<{ error: unknown } | undefined> {
  const inFlight: InFlight<T>[] = [];
  let failure: { error: unknown } | undefined;
  let calling = true;
  let taking = true;
  for (;;) {
    while (calling && !failure) {
      const length = steps.nextLength();
      if (length <= 0) calling = false;
      else if (!window.allows(length)) break;
      else {
        try {
          const made = await steps.call(length);
          if (!made) calling = false;
          else {
            // Taken (and its rejection handled) in order below; until then a rejection is not unhandled.
            const entry: InFlight<T> = { block: window.sent(made.bytes, clock()), answer: made.answer };
            made.answer.then((answer) => (entry.arrived = { answer }), () => undefined);
            inFlight.push(entry);
          }
        } catch (error) {
          failure = { error };
        }
      }
    }
    const head = inFlight[0];
    if (!head) return failure;
    let taken = 1;
    try {
      const answer = await head.answer;
      const answers: Answer<T>[] = [{ answer: answer as T, bytes: head.block.length }];
      for (let next = inFlight[taken]; next?.arrived; next = inFlight[++taken]) answers.push({ answer: next.arrived.answer, bytes: next.block.length });
      if (taking && !failure && !(await steps.take(answers))) calling = taking = false;
    } catch (error) {
      failure ??= { error };
    }
    const now = clock();
    for (const done of inFlight.splice(0, taken)) window.done(done.block, now);
  }
}
