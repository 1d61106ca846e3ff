/**
 * What the CLI shows: a one-line live status on a terminal, plain lines otherwise, and the final
 * summary. It consumes engine events; the engine itself never prints.
 */
import type { MigrationEvent, ProgressCounters } from '../events.js';
import type { MigrationReport } from '../report.js';
import type { VerifyReport } from '../verify.js';

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

function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '--';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return h > 0 ? `${h}h${String(m).padStart(2, '0')}m` : m > 0 ? `${m}m${String(s % 60).padStart(2, '0')}s` : `${s}s`;
}

/** A listener that renders events to a stream, live on a terminal, as lines otherwise. */
export function createProgressPrinter(stream: NodeJS.WriteStream, interactive: boolean, dryRun = false): { onEvent: (e: MigrationEvent) => void; finish: () => void } {
  const started = Date.now();
  let last: ProgressCounters | undefined;
  let lastDraw = 0;
  let drawn = false;
  const statusLine = (c: ProgressCounters): string => {
    const secs = (Date.now() - started) / 1000;
    const rate = secs > 0 ? c.copiedBytes / secs : 0;
    const remaining = c.toCopyBytes - c.copiedBytes;
    const eta = rate > 0 && c.foldersDone === c.foldersTotal ? formatDuration(remaining / rate) : rate > 0 ? `~${formatDuration(remaining / rate)}+` : '--';
    return (
      `folders ${c.foldersDone}/${c.foldersTotal}  messages ${c.copied}/${c.toCopy}` +
      (c.skipped ? ` (${c.skipped} skipped)` : '') +
      `  ${formatBytes(c.copiedBytes)}/${formatBytes(c.toCopyBytes)}  ${formatBytes(rate)}/s  ${(c.copied / Math.max(secs, 0.001)).toFixed(0)} msg/s  ETA ${eta}`
    );
  };
  const draw = (force = false) => {
    if (!last) return;
    const now = Date.now();
    if (!force && now - lastDraw < 200) return;
    lastDraw = now;
    const width = stream.columns || 120;
    stream.write(`\r${statusLine(last).slice(0, width - 1).padEnd(Math.min(width - 1, 1))}\u001b[K`);
    drawn = true;
  };
  const line = (text: string) => {
    if (interactive && drawn) stream.write('\r\u001b[K');
    stream.write(text + '\n');
    if (interactive) draw(true);
  };
  return {
    onEvent(e) {
      switch (e.type) {
        case 'connected':
          if (!interactive) line(`connected to ${e.side} (${show(e.capabilities.join(' ')) || 'no extensions'})`);
          else line(`logged in to the ${e.side}`);
          break;
        case 'planned':
          line(`plan: ${plural(e.folders, 'folder')}, ${e.toCreate} to create${e.collisions ? `, ${plural(e.collisions, 'name collision')}` : ''}`);
          break;
        case 'folder-start':
          break;
        case 'item-skipped':
          line(`skipped: folder "${show(e.item.folder)}" UID ${e.item.uid}${e.item.messageId ? ` <${show(e.item.messageId)}>` : ''}: ${e.item.code} ${show(e.item.reason)}`);
          break;
        case 'folder-done':
          if (e.folder.error) line(`folder "${show(e.folder.source)}" failed: ${e.folder.error.code} ${show(e.folder.error.message)}`);
          else if (!interactive && !e.folder.noSelect && !dryRun) line(`folder "${show(e.folder.source)}" -> "${show(e.folder.destination)}": ${e.folder.copied} copied, ${e.folder.alreadyPresent} already present, ${e.folder.skipped} skipped`);
          break;
        case 'scan-verdict': {
          const v = e.verdict;
          const what = v.verdict === 'infected' ? `infected (${show(v.signature)})` : `unscanned (${show(v.reason)})`;
          line(`scan: folder "${show(v.folder)}" UID ${v.uid}${v.messageId ? ` <${show(v.messageId)}>` : ''}: ${what}; ${v.action}${v.quarantineFolder ? ` to "${show(v.quarantineFolder)}"` : ''}${v.savedAs ? ` as ${show(v.savedAs)}` : ''}`);
          break;
        }
        case 'reconnected':
          if (!interactive) line(`reconnected to the ${e.side} (folder "${show(e.folder)}")`);
          break;
        case 'progress':
          last = e.counters;
          if (interactive) draw();
          break;
        case 'folder-created':
          break;
      }
    },
    finish() {
      if (interactive && drawn) {
        draw(true);
        stream.write('\n');
      }
    },
  };
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
    f.error ? f.error.code : f.noSelect ? 'parent only' : 'ok',
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
  for (const p of report.unmatchedIncludes ?? []) {
    const names = report.folders.filter((f) => f.source).slice(0, 3).map((f) => `"${show(f.source)}"`);
    const all = [...names, ...report.excluded.slice(0, 3 - names.length).map((e) => `"${show(e.source)}"`)];
    out.push(`warning: --include '${show(p)}' matched no folder (rules match a folder's path as "A/B" or its name as the server spells it${all.length ? `, e.g. ${all.join(', ')}` : ''})`);
  }
  if (report.collisions.length) {
    for (const c of report.collisions) out.push(`collision: ${c.sources.map((s) => `"${show(s)}"`).join(' and ')} -> "${show(c.destination)}"`);
  }
  if (report.scan) {
    const s = report.scan;
    const actions = ['quarantined', 'withheld', 'delivered'].map((a) => [a, s.verdicts.filter((v) => v.action === a).length] as const).filter(([, n]) => n > 0);
    out.push(
      `scan (${show(s.engine)}, policy ${s.policy}${s.failOpen ? ', fail-open' : ''}): ${s.scanned} scanned (${formatBytes(s.scannedBytes)}), ${s.cached} from cache, ${s.infected} infected, ${s.unscanned} unscanned` +
        (actions.length ? `; ${actions.map(([a, n]) => `${n} ${a}`).join(', ')}` : '') +
        (s.verdicts.length ? '. Every finding is listed in the report.' : '.'),
    );
  }
  if (report.error) out.push(`error: ${report.error.code}: ${show(report.error.message)}`);
  if (report.dryRun) {
    const toCopy = report.folders.reduce((n, f) => n + Math.max(0, f.sourceCount - f.alreadyPresent), 0);
    out.push(`plan: ${plural(t.folders, 'folder')} (${report.folders.filter((f) => f.created).length} to create), ${plural(t.messages, 'message')} (${formatBytes(t.bytes)}) at the source, ${toCopy} to copy, ${t.alreadyPresent} already present. Nothing was changed.`);
  } else if (report.status !== 'failed' && t.copied === 0 && t.skipped === 0 && !t.flagsUpdated && !t.deletedAtDestination && !t.deletedAtSource) {
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
        [t.deletedAtDestination, 'deleted at the destination (--sync-deletions)'],
        [t.deletedAtSource, 'deleted at the source (--delete-source)'],
        [t.sourceKept, 'kept at the source (no exact copy proven)'],
        [t.quarantined, 'quarantined'],
        [t.withheld, 'withheld by the scan policy'],
        [t.unscanned, 'unscanned'],
      ] as const
    ).flatMap(([n, what]) => (n ? [`${n} ${what}`] : []));
    const reasons = Object.entries(t.skippedByReason ?? {}).map(([code, n]) => `${n} ${code}`);
    if (reasons.length) more.push(`skipped by reason: ${reasons.join(', ')}`);
    if (more.length) out.push(`also: ${more.join('; ')}.`);
    const meaning = { perfect: 'everything is at the destination', good: 'only what your limits or scan policy left out is missing', investigate: 'some messages were skipped for errors: see the list', poor: 'a folder or the mailbox failed' };
    if (report.verdict) out.push(`verdict: ${report.verdict} (${meaning[report.verdict]})`);
  }
  return out.join('\n') + '\n';
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

/** One mailbox of a batch, as the batch view shows it. */
interface BatchLine {
  line: number;
  source: string;
  destination: string;
  status: string;
  copied: number;
  skipped: number;
  code?: string;
}

/**
 * A batch's progress on stderr: on a terminal, one live line with every running mailbox's
 * copied/to-copy count; in any case a line per finished mailbox, each mailbox once. Used for local
 * batches (engine events) and queued ones (statuses read back from the database).
 */
export class BatchProgressView {
  private readonly running = new Map<number, string>();
  private readonly finishedLines = new Set<number>();
  private lastDraw = 0;

  constructor(
    private readonly stream: NodeJS.WriteStream,
    private readonly total: number,
    private readonly live: boolean,
  ) {}

  /** A mailbox at work: `copied` of `toCopy` so far, when known. */
  progress(line: number, source: string, copied?: number, toCopy?: number): void {
    if (this.finishedLines.has(line)) return;
    const user = show(source.replace(/^imaps?:\/\//, '').replace(/@.*$/, ''));
    this.running.set(line, `${user} ${copied !== undefined && toCopy !== undefined ? `${copied}/${toCopy}` : '…'}`);
    this.draw();
  }

  /** A mailbox is done (or was complete from an earlier run); printed once per line. */
  finished(j: BatchLine, earlier = false): void {
    if (this.finishedLines.has(j.line)) return;
    this.finishedLines.add(j.line);
    this.running.delete(j.line);
    if (this.live) this.stream.write('\r\u001b[K');
    this.stream.write(
      `[${this.finishedLines.size}/${this.total}] ${show(j.source)} -> ${show(j.destination)}: ${j.status}${earlier ? ' (earlier run)' : ''}, ${j.copied} copied${j.skipped ? `, ${j.skipped} skipped` : ''}${j.code ? ` ${show(j.code)}` : ''}\n`,
    );
    this.draw(true);
  }

  /** Clears the live line. */
  end(): void {
    if (this.live) this.stream.write('\r\u001b[K');
  }

  private draw(force = false): void {
    if (!this.live || (!force && Date.now() - this.lastDraw < 250)) return;
    this.lastDraw = Date.now();
    const width = this.stream.columns || 120;
    const text = `[${this.finishedLines.size}/${this.total}] ${[...this.running.values()].join(' | ')}`;
    this.stream.write(`\r${text.slice(0, width - 1)}\u001b[K`);
  }
}
