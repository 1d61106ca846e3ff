/**
 * The bench's output: one record per run, the medians per tool, the table, and the ratio lines
 * (mailmover vs dsync and mbsync; issue 14's archive comparisons; issue 16's targets).
 */
import type { RunResult } from './proc.js';
import type { ToolName } from './tools.js';
import type { Fidelity, Snapshot } from './verify.js';

export interface Measured extends RunResult {
  /** CPU seconds the bench Dovecot (every process of our instance) used during the run; null when /proc cannot tell. */
  serverCpuSeconds: number | null;
}

export interface RunRecord {
  tool: ToolName;
  round: number;
  destinationUser: string;
  copy: Measured;
  rerun?: Measured;
  /** '' when every source folder has the same message count at the destination. */
  countCheck: string;
  /** After the rerun: '' when the counts did not change. */
  rerunCountCheck?: string;
  fidelity?: Fidelity;
  /** mailmover --json report (status + totals) or the tool's stderr tail. */
  toolOutput?: unknown;
  ok: boolean;
  error?: string;
}

export interface Summary {
  tool: ToolName;
  runs: number;
  okRuns: number;
  wallSeconds: number;
  messagesPerSecond: number;
  megabytesPerSecond: number;
  peakRssMiB: number;
  toolCpuSeconds: number;
  serverCpuSeconds: number;
  rerunSeconds: number;
  fidelity: string;
}

export function median(xs: number[]): number {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (!s.length) return NaN;
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export function summarise(tool: ToolName, records: RunRecord[], src: Snapshot): Summary | undefined {
  const all = records.filter((r) => r.tool === tool);
  if (!all.length) return undefined;
  const ok = all.filter((r) => r.ok);
  const use = ok.length ? ok : all;
  const wall = median(use.map((r) => r.copy.wallSeconds));
  const first = all.find((r) => r.fidelity);
  const notes: string[] = [];
  if (first?.fidelity) notes.push(first.fidelity.summary);
  else if (all[0]!.countCheck) notes.push(all[0]!.countCheck);
  const later = all.flatMap((r) => [
    r.fidelity && r !== first && !r.fidelity.exact ? `run ${r.round}: ${r.fidelity.summary}` : '',
    r.countCheck && r.fidelity === undefined && r !== all[0] ? `run ${r.round}: ${r.countCheck}` : '',
    r.rerunCountCheck ? `run ${r.round} ${r.rerunCountCheck}` : '',
  ]);
  notes.push(...new Set(later.filter(Boolean)));
  if (ok.length < all.length) notes.push(`${all.length - ok.length}/${all.length} runs FAILED`);
  return {
    tool,
    runs: all.length,
    okRuns: ok.length,
    wallSeconds: wall,
    messagesPerSecond: src.messages / wall,
    megabytesPerSecond: src.bytes / 1e6 / wall,
    peakRssMiB: median(use.map((r) => r.copy.peakRssKiB ?? NaN)) / 1024,
    toolCpuSeconds: median(use.map((r) => r.copy.cpuSeconds ?? NaN)),
    serverCpuSeconds: median(use.map((r) => r.copy.serverCpuSeconds ?? NaN)),
    rerunSeconds: median(use.flatMap((r) => (r.rerun ? [r.rerun.wallSeconds] : []))),
    fidelity: notes.join('; ') || 'exact',
  };
}

export function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  const fmt = (r: string[]) => '| ' + r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join(' | ') + ' |';
  return [fmt(rows[0]!), '|' + widths.map((w, i) => '-'.repeat(i === widths.length - 1 ? rows[0]![i]!.length + 2 : w + 2)).join('|') + '|', ...rows.slice(1).map(fmt)].join('\n');
}

export const f1 = (x: number) => (Number.isFinite(x) ? x.toFixed(1) : '-');
export const f2 = (x: number) => (Number.isFinite(x) ? x.toFixed(2) : '-');
export const f0 = (x: number) => (Number.isFinite(x) ? x.toFixed(0) : '-');

export function summaryTable(summaries: Summary[]): string {
  const rows = [['tool', 'runs ok', 'full copy wall s', 'msgs/s', 'MB/s', 'peak RSS MiB', 'tool CPU s', 'server CPU s', 'rerun s', 'fidelity']];
  for (const s of summaries) {
    // no successful run: its numbers are no measurement (see the per-run lines and the JSON)
    const v = (x: string) => (s.okRuns ? x : '-');
    rows.push([s.tool, `${s.okRuns}/${s.runs}`, v(f2(s.wallSeconds)), v(f0(s.messagesPerSecond)), v(f1(s.megabytesPerSecond)), v(f0(s.peakRssMiB)), v(f2(s.toolCpuSeconds)), v(f2(s.serverCpuSeconds)), v(f2(s.rerunSeconds)), s.fidelity]);
  }
  return table(rows);
}

export function runLine(r: RunRecord, src: Snapshot): string {
  const w = r.copy.wallSeconds;
  const rss = r.copy.peakRssKiB === null ? '-' : f0(r.copy.peakRssKiB / 1024);
  const parts = [
    `${r.tool} round ${r.round} (${r.destinationUser}): ${f2(w)} s`,
    `${f0(src.messages / w)} msgs/s`,
    `${f1(src.bytes / 1e6 / w)} MB/s`,
    `RSS ${rss} MiB`,
    `CPU tool ${f2(r.copy.cpuSeconds ?? NaN)} s / server ${f2(r.copy.serverCpuSeconds ?? NaN)} s`,
    `rerun ${r.rerun ? f2(r.rerun.wallSeconds) : '-'} s`,
  ];
  const check = r.fidelity ? `fidelity: ${r.fidelity.summary}` : `counts: ${r.countCheck || 'ok'}`;
  return `  ${parts.join(', ')}; ${check}${r.rerunCountCheck ? `; ${r.rerunCountCheck}` : ''}${r.error ? `\n    PROBLEM: ${r.error}` : ''}`;
}

/** a/b per measure; NaN when either side has no successful run or no value. */
export interface Ratio {
  a: ToolName;
  b: ToolName;
  wall: number;
  messagesPerSecond: number;
  megabytesPerSecond: number;
  peakRss: number;
  toolCpu: number;
  serverCpu: number;
  rerun: number;
}

export function ratio(summaries: Summary[], a: ToolName, b: ToolName): Ratio | undefined {
  const sa = summaries.find((s) => s.tool === a);
  const sb = summaries.find((s) => s.tool === b);
  if (!sa || !sb) return undefined;
  const r = (x: number, y: number) => (sa.okRuns && sb.okRuns ? x / y : NaN);
  return {
    a,
    b,
    wall: r(sa.wallSeconds, sb.wallSeconds),
    messagesPerSecond: r(sa.messagesPerSecond, sb.messagesPerSecond),
    megabytesPerSecond: r(sa.megabytesPerSecond, sb.megabytesPerSecond),
    peakRss: r(sa.peakRssMiB, sb.peakRssMiB),
    toolCpu: r(sa.toolCpuSeconds, sb.toolCpuSeconds),
    serverCpu: r(sa.serverCpuSeconds, sb.serverCpuSeconds),
    rerun: r(sa.rerunSeconds, sb.rerunSeconds),
  };
}

const x = (v: number) => (Number.isFinite(v) ? `${v.toFixed(2)}x` : '-');

export function ratioLine(r: Ratio, label = `${r.a} / ${r.b}`): string {
  return `${label}: wall ${x(r.wall)}, msgs/s ${x(r.messagesPerSecond)}, MB/s ${x(r.megabytesPerSecond)}, peak RSS ${x(r.peakRss)}, tool CPU ${x(r.toolCpu)}, server CPU ${x(r.serverCpu)}, rerun ${x(r.rerun)}`;
}

/** The ratio pairs printed when both tools ran: [a, b, what it answers]. */
export const RATIO_PAIRS: readonly (readonly [ToolName, ToolName, string])[] = [
  ['mailmover', 'dsync', 'IMAP -> IMAP, mailmover vs Dovecot dsync (imapc)'],
  ['mailmover', 'mbsync', 'IMAP -> IMAP, mailmover vs mbsync'],
  ['mailmover-from-maildir', 'mailmover', 'issue 14: Maildir on disk -> IMAP vs IMAP -> IMAP (mailmover both)'],
  ['mailmover-from-maildir', 'dsync-from-maildir', 'issue 14: Maildir on disk -> IMAP, mailmover vs dsync'],
  ['mailmover-to-maildir', 'mbsync-to-maildir', 'issue 14: IMAP -> Maildir, mailmover vs mbsync (Maildir near store)'],
  ['mailmover-to-mbox', 'mbsync-to-maildir', 'issue 14: IMAP -> mbox (mailmover) vs IMAP -> Maildir (mbsync)'],
  ['mailmover-scan', 'mailmover', 'scanning on / off'],
];

/** Issue 16's targets for the default mailmover copy, checked against this run's medians. */
export function targetLines(summaries: Summary[]): string[] {
  const mm = summaries.find((s) => s.tool === 'mailmover');
  if (!mm?.okRuns) return [];
  const ds = summaries.find((s) => s.tool === 'dsync' && s.okRuns);
  const mb = summaries.find((s) => s.tool === 'mbsync' && s.okRuns);
  const rssMB = (mm.peakRssMiB * 1048576) / 1e6;
  const verdict = (ok: boolean) => (ok ? 'met' : 'NOT met');
  const lines = [`peak RSS <= 100 MB: ${rssMB.toFixed(0)} MB, ${verdict(rssMB <= 100)}`];
  if (ds) {
    lines.push(`peak RSS <= 1.6x dsync's: ${x(mm.peakRssMiB / ds.peakRssMiB)}, ${verdict(mm.peakRssMiB / ds.peakRssMiB <= 1.6)}`);
    lines.push(`full copy wall <= 0.75x dsync's: ${x(mm.wallSeconds / ds.wallSeconds)}, ${verdict(mm.wallSeconds / ds.wallSeconds <= 0.75)}`);
  }
  if (mb) lines.push(`rerun <= 2x mbsync's: ${x(mm.rerunSeconds / mb.rerunSeconds)}, ${verdict(mm.rerunSeconds / mb.rerunSeconds <= 2)}`);
  return lines.map((l) => `  ${l}`);
}
