import type { ProbeReport } from './probe.js';

/** One line per step: mark, name, duration, what happened; a failing step adds its hint; --verbose adds particulars. */
export function formatReport(report: ProbeReport, verbose = false): string {
  const lines: string[] = [];
  for (const s of report.steps) {
    const mark = s.ok ? '✔' : '✘';
    const ms = `${s.ms.toFixed(s.ms < 10 ? 1 : 0)} ms`.padStart(9);
    lines.push(`${mark} ${s.step.padEnd(9)} ${ms}  ${s.ok ? s.message : `${s.code}: ${s.message}`}`);
    for (const warning of s.warnings ?? []) lines.push(`${' '.repeat(22)}⚠ ${warning}`);
    if (verbose) for (const detail of s.details ?? []) lines.push(`${' '.repeat(22)}· ${detail}`);
    if (!s.ok && s.hint) lines.push(`${' '.repeat(22)}→ ${s.hint}`);
  }
  return lines.join('\n') + '\n';
}
