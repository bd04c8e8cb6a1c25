import type { ProbeReport, ProbeStep } from './probe.js';

const INDENT = ' '.repeat(22);

/** A step's lines: mark (✔ worked, ✘ failed, – not tried), name, duration, what happened; a failing step adds its hint; --verbose adds particulars. */
export function formatStep(s: ProbeStep, verbose = false): string {
  const mark = s.skipped ? '–' : s.ok ? '✔' : '✘';
  const ms = (s.skipped ? '' : `${s.ms.toFixed(s.ms < 10 ? 1 : 0)} ms`).padStart(9);
  const lines = [`${mark} ${s.step.padEnd(9)} ${ms}  ${s.ok ? s.message : `${s.code}: ${s.message}`}`];
  for (const warning of s.warnings ?? []) lines.push(`${INDENT}⚠ ${warning}`);
  if (verbose) for (const detail of s.details ?? []) lines.push(`${INDENT}· ${detail}`);
  if (!s.ok && s.hint) lines.push(`${INDENT}→ ${s.hint}`);
  return lines.join('\n') + '\n';
}

/** Every step's lines, as `formatStep` writes them. */
export function formatReport(report: ProbeReport, verbose = false): string {
  return report.steps.map((s) => formatStep(s, verbose)).join('');
}
