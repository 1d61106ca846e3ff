/**
 * What the CLI shows of a finished run: the summary table of a migration or a plan, the table of
 * verify, and the terminal-safe spelling of every name and number in them (progress while a run
 * works is progress.ts). The engine itself never prints.
 */
import { labelSummaryLines } from '../stores/gmail/label-report.js';
import type { MigrationReport } from '../job/report.js';
import type { VerifyReport } from '../job/verify.js';

/**
 * Characters that must not reach a terminal as they are: C0 controls (ESC starts escape sequences
 * that can rewrite the screen or the window title; CR and LF forge lines), DEL, C1 controls
 * (0x9b is a one-byte CSI on some terminals), the bidirectional overrides and isolates that make
 * text read in another order than it is (U+202A-U+202E, U+2066-U+2069, and the marks U+200E,
 * U+200F, U+061C), and the backslash itself, so that an escaped form cannot be faked by a name.
 */
// eslint-disable-next-line no-control-regex -- the point is to find control characters
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\\]/gu;
const NAMED: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t', '\\': '\\\\' };

/**
 * Text from a server or a user (folder names, server answers, error messages) as it may be shown
 * on a terminal: every unsafe character written visibly (`\x1b`, `\r`, `\u202e`, `\\`), the
 * rest unchanged. Every name the CLI prints goes through here; JSON output keeps the real string
 * (JSON escapes control characters itself).
 */
export function terminalText(text: string): string {
  return text.replace(UNSAFE, (c) => {
    const named = NAMED[c];
    if (named) return named;
    const code = c.codePointAt(0)!;
    return code < 0x100 ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
  });
}

/** Shorthand inside this module: a value shown on the terminal. */
const show = (text: string | undefined): string => terminalText(text ?? '');
/** "left out" lines shown one by one per reason; more are summed up in one line. */
const LEFT_OUT_SHOWN = 5;

/** Formats bytes for people (binary units, one decimal). */
export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  // Rates are fractions of bytes: whole bytes below 1 KiB, one decimal above.
  return `${u === 0 ? Math.round(v) : v.toFixed(1)} ${units[u]}`;
}

/** "1 message", "2 messages": a count with its noun (regular plurals only). */
export function plural(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`;
}

/** The human summary printed at the end of a run (or of a plan). */
export function formatSummary(report: MigrationReport): string {
  const t = report.totals;
  const out: string[] = [];
  const rows = report.folders.map((f) => [
    f.implicit ? '(parent)' : show(f.source),
    show(f.destination) + (f.renamed ? (f.renameReasons?.length ? ` (renamed: ${f.renameReasons.join(', ')})` : ' (renamed)') : '') + (f.mappedBy ? ` (${f.mappedBy})` : '') + (report.dryRun && f.created ? ' (new)' : ''),
    f.noSelect ? '-' : String(f.sourceCount),
    report.dryRun ? String(Math.max(0, f.sourceCount - f.alreadyPresent)) : String(f.copied),
    String(f.alreadyPresent),
    String(f.skipped),
    f.error ? f.error.code : f.noSelect ? 'parent only' : !f.state || f.state === 'complete' ? 'ok' : f.state,
  ]);
  const header = ['SOURCE', 'DESTINATION', 'MESSAGES', report.dryRun ? 'TO COPY' : 'COPIED', 'PRESENT', 'SKIPPED', 'STATE'];
  const widths = header.map((h, i) => Math.min(48, Math.max(h.length, ...rows.map((r) => r[i]!.length))));
  const fmt = (r: string[]) => r.map((c, i) => (i >= 2 && i <= 5 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ').trimEnd();
  out.push(fmt(header));
  for (const r of rows) out.push(fmt(r));
  out.push('');
  const why = { 'gmail-view': "a Gmail view of messages kept in other folders; --include-gmail-views copies it", 'not-included': 'not matched by --include', excluded: 'matched by --exclude', 'other-namespace': "another user's or a shared folder" } as const;
  // A few names are shown; many (every folder but one under --include) become one line per reason,
  // and the report keeps every name.
  for (const reason of Object.keys(why) as (keyof typeof why)[]) {
    const these = report.excluded.filter((e) => e.reason === reason);
    if (these.length > LEFT_OUT_SHOWN) out.push(`left out: ${these.length} folders ${why[reason]} (every name is in the --json report)`);
    else for (const e of these) out.push(`left out: "${show(e.source)}" (${why[reason]})`);
  }
  // Items the source holds that are not mail (a PST's calendar, contacts...): left out by design, counted.
  if (t.leftOut) out.push(`left out by design (not mail, or not in the file): ${Object.entries(t.leftOut).map(([kind, n]) => `${n} ${show(kind)}`).join(', ')} (per folder in the --json report)`);
  for (const p of report.unmatchedIncludes ?? []) {
    const names = report.folders.filter((f) => f.source).slice(0, 3).map((f) => `"${show(f.source)}"`);
    const all = [...names, ...report.excluded.slice(0, 3 - names.length).map((e) => `"${show(e.source)}"`)];
    out.push(`warning: --include '${show(p)}' matched no folder (rules match a folder's path as "A/B" or its name as the server spells it${all.length ? `, e.g. ${all.join(', ')}` : ''})`);
  }
  // A Gmail destination that refused a label: the message was appended instead, in the server's words.
  const fallbacks = report.folders.flatMap((f) => (f.labelFallbacks ?? []).map((x) => ({ folder: f.source, ...x })));
  for (const x of fallbacks.slice(0, LEFT_OUT_SHOWN)) out.push(`label refused, appended instead: "${show(x.folder)}" source UID ${x.uid}: ${x.code}: ${show(x.reason)}`);
  if (fallbacks.length > LEFT_OUT_SHOWN) out.push(`label refused, appended instead: ${fallbacks.length - LEFT_OUT_SHOWN} more (every one is in the --json report)`);
  if (report.gmailLabels) out.push(...labelSummaryLines(report.gmailLabels).map(show));
  if (report.collisions.length) {
    for (const c of report.collisions) out.push(`collision: ${c.sources.map((s) => `"${show(s)}"`).join(' and ')} -> "${show(c.destination)}"`);
  }
  if (report.scan) {
    const s = report.scan;
    const actions = ['quarantined', 'withheld', 'delivered', 'held'].map((a) => [a, s.verdicts.filter((v) => v.action === a).length] as const).filter(([, n]) => n > 0);
    // Scanned means judged: an unscanned message is never among the scanned ones, nor its bytes.
    out.push(
      `scan (${show(s.engine)}, policy ${s.policy}${s.failOpen ? ', fail-open' : ''}${s.onUnscanned === 'deliver' ? ', unscanned delivered' : ''}): ${s.scanned} scanned (${formatBytes(s.scannedBytes)}), ${s.cached} from cache, ${s.infected} infected; ${s.unscanned} not scanned (unscanned)` +
        (actions.length ? `; ${actions.map(([a, n]) => `${n} ${a}`).join(', ')}` : '') +
        (s.verdicts.length ? '. Every finding is listed in the report.' : '.'),
    );
  }
  if (report.error) out.push(`error: ${report.error.code}: ${show(report.error.message)}`);
  if (report.dryRun) {
    const toCopy = report.folders.reduce((n, f) => n + Math.max(0, f.sourceCount - f.alreadyPresent), 0);
    out.push(`plan: ${plural(t.folders, 'folder')} (${report.folders.filter((f) => f.created).length} to create), ${plural(t.messages, 'message')} (${formatBytes(t.bytes)}) at the source, ${toCopy} to copy, ${t.alreadyPresent} already present. Nothing was changed.`);
  } else if (report.status !== 'failed' && report.status !== 'interrupted' && t.copied === 0 && t.skipped === 0 && !t.flagsUpdated && !t.deletedAtDestination && !t.deletedAtSource) {
    out.push(`Nothing to copy: ${t.messages === 1 ? 'the 1 message' : `all ${t.messages} messages`} in ${plural(t.folders, 'folder')} ${t.messages === 1 ? 'is' : 'are'} already at the destination (${t.seconds} s).`);
  } else {
    const rate = t.seconds > 0 ? ` (${(t.copied / t.seconds).toFixed(0)} msg/s, ${formatBytes(t.copiedBytes / t.seconds)}/s)` : '';
    out.push(`${report.status}: ${plural(t.copied, 'message')} (${formatBytes(t.copiedBytes)}) copied, ${t.alreadyPresent} already present, ${t.skipped} skipped, in ${t.seconds} s${rate}.`);
    if (t.skipped) out.push(`Every skipped message is listed above and in the report (--report FILE).`);
  }
  // Everything else the run did, only what is non-zero.
  if (!report.dryRun) {
    const more = (
      [
        [t.flagsUpdated, 'flags updated'],
        [t.labelled, 'of the copied given a label of a message already at the destination (Gmail: not uploaded again)'],
        [t.labelFallbacks, 'appended because the destination refused the label (MM-GMAIL-LABEL-REFUSED, listed in the report)'],
        [t.refilled, 'copied again (missing at the destination since an earlier copy)'],
        [t.deletedAtDestination, 'deleted at the destination (--sync-deletions)'],
        [t.deletedAtSource, 'deleted at the source (--delete-source)'],
        [t.sourceKept, 'kept at the source (no exact copy proven)'],
        [t.quarantined, 'quarantined'],
        [t.withheld, 'withheld by the scan policy'],
        [t.unscanned, unscannedWhat(report)],
      ] as const
    ).flatMap(([n, what]) => (n ? [`${n} ${what}`] : []));
    const reasons = Object.entries(t.skippedByReason ?? {}).map(([code, n]) => `${n} ${code}`);
    if (reasons.length) more.push(`skipped by reason: ${reasons.join(', ')}`);
    if (more.length) out.push(`also: ${more.join('; ')}.`);
    const meaning = { perfect: 'everything is at the destination', good: 'only what your limits or scan settings left out is missing or unscanned', investigate: 'some messages were skipped for errors: see the list', poor: 'a folder or the mailbox failed' };
    if (report.verdict) out.push(`verdict: ${report.verdict} (${meaning[report.verdict]})`);
  }
  return out.join('\n') + '\n';
}

/** What became of the unscanned messages, for the summary's "also" line. */
function unscannedWhat(report: MigrationReport): string {
  const v = report.scan?.verdicts.filter((x) => x.verdict === 'unscanned') ?? [];
  const held = v.filter((x) => x.action === 'held').length;
  const delivered = v.filter((x) => x.action === 'delivered').length;
  const parts = [held && `${held} held out of ${held === 1 ? 'its folder' : 'their folders'} for a rerun`, delivered && `${delivered} delivered unscanned`].filter(Boolean);
  return `unscanned (not counted as scanned${parts.length ? `; ${parts.join(', ')}` : ''})`;
}

/** The table `mailmover verify` prints: one row per folder pair, then the differences. */
export function formatVerifySummary(report: VerifyReport): string {
  const header = ['SOURCE', 'DESTINATION', 'SOURCE MSGS', 'DEST MSGS', 'MISSING', 'EXTRA', 'CHANGED', 'FLAGS', 'DATES', ...(report.deep ? ['BODIES'] : []), 'STATE'];
  const rows = report.folders.map((f) => [
    show(f.source),
    show(f.destination),
    String(f.sourceCount),
    String(f.destCount),
    String(f.missing),
    String(f.extra),
    String(f.changed),
    String(f.flagsDiffer),
    String(f.datesDiffer),
    ...(report.deep ? [String(f.bodiesDiffer ?? 0)] : []),
    f.error ? f.error.code : f.state,
  ]);
  const widths = header.map((h, i) => Math.min(48, Math.max(h.length, ...rows.map((r) => r[i]!.length))));
  const last = header.length - 1;
  const fmt = (r: string[]) => r.map((c, i) => (i >= 2 && i < last ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ').trimEnd();
  const out = [fmt(header), ...rows.map(fmt), ''];
  for (const f of report.folders) {
    for (const d of f.differences) {
      const ids = [d.sourceUid !== undefined ? `source UID ${d.sourceUid}` : '', d.destUid !== undefined ? `destination UID ${d.destUid}` : '', d.messageId ? `<${d.messageId}>` : ''].filter(Boolean).join(', ');
      out.push(`${d.kind}: "${show(f.source)}"${ids ? ` ${show(ids)}` : ''}${d.detail ? `: ${show(d.detail)}` : ''}`);
    }
    if (f.error) out.push(`error: "${show(f.source)}": ${f.error.code}: ${show(f.error.message)}`);
  }
  // Folders only at the destination: information, or with --strict differences.
  for (const d of report.destinationOnly ?? []) {
    out.push(`${report.strict ? 'destination only' : 'only at the destination (not compared)'}: "${show(d.name)}"${d.messages !== undefined ? ` ${plural(d.messages, 'message')}` : ''}`);
  }
  if (report.error) out.push(`error: ${report.error.code}: ${show(report.error.message)}`);
  out.push(verifyTotalsLine(report));
  out.push(`verdict: ${report.verdict} (${VERIFY_MEANING[report.verdict]})`);
  return out.join('\n') + '\n';
}

const VERIFY_MEANING = {
  perfect: 'every folder compared, both sides equal',
  good: 'nothing this mode counts differs; the rest is information above',
  investigate: 'something differs: see the list',
  poor: 'not everything could be compared',
} as const;

/** The line before the verdict: what matched, or every count that decided otherwise. */
function verifyTotalsLine(report: VerifyReport): string {
  const t = report.totals;
  const strictPart = report.strict ? `, ${plural(t.destinationOnly, 'folder')} only at the destination, ${plural(t.subscriptionsDiffer ?? 0, 'subscription')} differing` : '';
  if (report.mode === 'finished') {
    // After cutover: what arrived or changed at the destination is told, not counted.
    const seen = `${t.extra} new at the destination, ${t.flagsDiffer} with flags and ${t.datesDiffer} with dates changed there (expected)`;
    return report.status === 'match'
      ? `match (finished move): all ${plural(t.sourceMessages, 'source message')} in ${plural(t.folders, 'folder')} at the destination${report.deep ? ', every body identical' : ''}; ${seen}.`
      : `${report.status} (finished move): ${t.missing} missing, ${t.changed} changed${report.deep ? `, ${t.bodiesDiffer} with other bytes` : ''}; ${seen}.`;
  }
  return report.status === 'match'
    ? `match: ${plural(t.folders, 'folder')}, ${plural(t.sourceMessages, 'message')} at both sides${report.deep ? ', every body identical' : ''}${report.strict ? ', subscriptions equal, no folder only at the destination' : ''}.`
    : `${report.status}: ${t.missing} missing, ${t.extra} extra, ${t.changed} changed, ${t.flagsDiffer} with other flags, ${t.datesDiffer} with other dates${report.deep ? `, ${t.bodiesDiffer} with other bytes` : ''}${strictPart}.`;
}
