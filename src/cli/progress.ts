/**
 * What the CLI shows while a run works: the survey line, the live status line of a mailbox
 * (against its totals, with `~` for estimates and `+` for lower bounds, the rate over a sliding
 * window and the ETA), plain lines when not on a terminal, and the live line of a batch.
 */
import type { MigrationEvent, ProgressCounters } from '../job/events.js';
import { formatBytes, plural, terminalText } from './output.js';

/** Shorthand inside this module: a value shown on the terminal. */
const show = (text: string | undefined): string => terminalText(text ?? '');
function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '--';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return h > 0 ? `${h}h${String(m).padStart(2, '0')}m` : m > 0 ? `${m}m${String(s % 60).padStart(2, '0')}s` : `${s}s`;
}

/** How many seconds of progress the rate (and so the ETA) is measured over. */
const RATE_WINDOW_MS = 20_000;

/**
 * Totals as they may be shown: exact once every folder is listed; `~N` while some folders'
 * shares are estimates from the survey; `N+` (a lower bound) while some folders' size is not
 * known at all.
 */
export function shownTotal(n: number, estimated: number, unknown: number, fmt: (n: number) => string = String): string {
  return unknown > 0 ? `${fmt(n)}+` : estimated > 0 ? `~${fmt(n)}` : fmt(n);
}

/**
 * The time left: work left over the rate measured over the last RATE_WINDOW_MS. By bytes when
 * every folder's bytes are known, else by messages; unknown ('--') while the totals are lower
 * bounds or nothing has been copied yet. `~` while it rests on estimates.
 */
export function etaText(c: ProgressCounters, rate: { bytes: number; messages: number }): string {
  if (c.unknown > 0) return '--';
  const byBytes = c.bytesUnknown === 0 && rate.bytes > 0;
  const left = byBytes ? (c.toCopyBytes - c.copiedBytes) / rate.bytes : rate.messages > 0 ? (c.toCopy - c.copied - c.skipped) / rate.messages : undefined;
  if (left === undefined) return '--';
  return `${c.estimated > 0 ? '~' : ''}${formatDuration(Math.max(0, left))}`;
}

/** Copy rates over a sliding window of progress samples. */
export class RateMeter {
  private readonly samples: { t: number; bytes: number; messages: number }[] = [];

  /** Adds a sample and answers the rates (per second) over the window. */
  sample(t: number, bytes: number, messages: number): { bytes: number; messages: number } {
    this.samples.push({ t, bytes, messages });
    while (this.samples.length > 2 && t - this.samples[1]!.t >= RATE_WINDOW_MS) this.samples.shift();
    const first = this.samples[0]!;
    const secs = (t - first.t) / 1000;
    return secs > 0.5 ? { bytes: (bytes - first.bytes) / secs, messages: (messages - first.messages) / secs } : { bytes: 0, messages: 0 };
  }
}

/** The live line of one mailbox: folders, messages and bytes against the mailbox's totals, rate and ETA. */
export function statusLine(c: ProgressCounters, rate: { bytes: number; messages: number }): string {
  const bytesTotal = shownTotal(c.toCopyBytes, c.estimated, c.unknown + c.bytesUnknown, formatBytes);
  return (
    `folders ${c.foldersDone}/${c.foldersTotal}  messages ${c.copied}/${shownTotal(c.toCopy, c.estimated, c.unknown)}` +
    (c.skipped ? ` (${c.skipped} skipped)` : '') +
    (c.alreadyPresent ? ` (${c.alreadyPresent} present)` : '') +
    `  ${formatBytes(c.copiedBytes)}/${bytesTotal}  ${formatBytes(rate.bytes)}/s  ${rate.messages.toFixed(0)} msg/s  ETA ${etaText(c, rate)}`
  );
}

/** A listener that renders events to a stream, live on a terminal, as lines otherwise. */
export function createProgressPrinter(stream: NodeJS.WriteStream, interactive: boolean, dryRun = false): { onEvent: (e: MigrationEvent) => void; finish: () => void } {
  let last: ProgressCounters | undefined;
  let lastDraw = 0;
  let drawn = false;
  const meter = new RateMeter();
  let rate = { bytes: 0, messages: 0 };
  // Redrawn every second even without news, so that a long message in flight shows the rate falling, not a frozen line.
  const ticker = interactive
    ? setInterval(() => {
        if (!last) return;
        rate = meter.sample(Date.now(), last.copiedBytes, last.copied);
        draw(true);
      }, 1000).unref()
    : undefined;
  const draw = (force = false) => {
    if (!last) return;
    const now = Date.now();
    if (!force && now - lastDraw < 200) return;
    lastDraw = now;
    const width = stream.columns || 120;
    stream.write(`\r${statusLine(last, rate).slice(0, width - 1).padEnd(Math.min(width - 1, 1))}\u001b[K`);
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
          const action = v.action === 'held' ? 'held out of its folder (a rerun tries it again)' : v.action;
          line(`scan: folder "${show(v.folder)}" UID ${v.uid}${v.messageId ? ` <${show(v.messageId)}>` : ''}: ${what}; ${action}${v.quarantineFolder ? ` to "${show(v.quarantineFolder)}"` : ''}${v.savedAs ? ` as ${show(v.savedAs)}` : ''}`);
          break;
        }
        case 'reconnected':
          if (!interactive) line(`reconnected to the ${e.side} (folder "${show(e.folder)}")`);
          break;
        case 'surveyed': {
          const c = e.counters;
          if (dryRun) break;
          const size = c.unknown + c.bytesUnknown > 0 ? '' : ` (${formatBytes(c.sourceBytes)})`;
          const unknown = c.unknown > 0 ? `; ${plural(c.unknown, 'folder')} did not say ${c.unknown === 1 ? 'its' : 'their'} size` : '';
          line(`source: ${shownTotal(c.sourceMessages, 0, c.unknown)} ${c.sourceMessages === 1 && !c.unknown ? 'message' : 'messages'}${size} in ${plural(c.foldersTotal, 'folder')}${unknown}; to copy: ${shownTotal(c.toCopy, c.estimated, c.unknown)}${c.unknown + c.bytesUnknown > 0 ? '' : ` (${shownTotal(c.toCopyBytes, c.estimated, 0, formatBytes)})`}`);
          last = c;
          break;
        }
        case 'progress':
          last = e.counters;
          rate = meter.sample(Date.now(), e.counters.copiedBytes, e.counters.copied);
          if (interactive) draw();
          break;
        case 'folder-created':
          break;
      }
    },
    finish() {
      clearInterval(ticker);
      if (interactive && drawn) {
        draw(true);
        stream.write('\n');
      }
    },
  };
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
 * A batch's progress on stderr: on a terminal, one live line with the batch's totals (messages
 * copied of those known to copy, rate, ETA) and every running mailbox's copied/to-copy count; in
 * any case a line per finished mailbox, each mailbox once. Used for local batches (engine events)
 * and queued ones (statuses read back from the database).
 *
 * The batch's total is known only for the mailboxes that have started (each surveys its own
 * folders first); the mailboxes still waiting are counted at the average of those, so the total
 * and the ETA carry `~` until every mailbox has started, and show `--` before any has.
 */
export class BatchProgressView {
  private readonly running = new Map<number, { user: string; copied?: number; toCopy?: number }>();
  private readonly finishedLines = new Set<number>();
  /** Messages copied, and work known (copied + skipped of finished mailboxes), over the mailboxes finished in this run. */
  private finishedCopied = 0;
  private finishedWork = 0;
  private finishedHere = 0;
  private earlier = 0;
  private readonly meter = new RateMeter();
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
    this.running.set(line, { user, ...(copied !== undefined ? { copied } : {}), ...(toCopy !== undefined ? { toCopy } : {}) });
    this.draw();
  }

  /** A mailbox is done (or was complete from an earlier run); printed once per line. */
  finished(j: BatchLine, earlier = false): void {
    if (this.finishedLines.has(j.line)) return;
    this.finishedLines.add(j.line);
    this.running.delete(j.line);
    if (earlier) this.earlier++;
    else {
      this.finishedHere++;
      this.finishedCopied += j.copied;
      this.finishedWork += j.copied + j.skipped;
    }
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

  /** The batch's totals: messages copied, the work expected (with how it is known) and the time left. */
  totals(now = Date.now()): { copied: number; work: number | undefined; estimated: boolean; eta: string; rate: number } {
    const running = [...this.running.values()];
    const copied = this.finishedCopied + running.reduce((n, r) => n + (r.copied ?? 0), 0);
    const sized = running.filter((r) => r.toCopy !== undefined);
    const started = this.finishedHere + sized.length;
    const known = this.finishedWork + sized.reduce((n, r) => n + r.toCopy!, 0);
    const waiting = this.total - this.earlier - started;
    const work = started > 0 ? known + Math.round((waiting * known) / started) : undefined;
    const rate = this.meter.sample(now, 0, copied).messages;
    const eta = work === undefined || rate <= 0 ? '--' : `${waiting > 0 ? '~' : ''}${formatDuration(Math.max(0, work - copied) / rate)}`;
    return { copied, work, estimated: waiting > 0, eta, rate };
  }

  private draw(force = false): void {
    if (!this.live || (!force && Date.now() - this.lastDraw < 250)) return;
    this.lastDraw = Date.now();
    const width = this.stream.columns || 120;
    const t = this.totals();
    const work = t.work === undefined ? '?' : `${t.estimated ? '~' : ''}${t.work}`;
    const each = [...this.running.values()].map((r) => `${r.user} ${r.copied !== undefined && r.toCopy !== undefined ? `${r.copied}/${r.toCopy}` : '…'}`);
    const text = `[${this.finishedLines.size}/${this.total}] ${t.copied}/${work} messages  ${t.rate.toFixed(0)} msg/s  ETA ${t.eta}${each.length ? ` | ${each.join(' | ')}` : ''}`;
    this.stream.write(`\r${text.slice(0, width - 1)}\u001b[K`);
  }
}
