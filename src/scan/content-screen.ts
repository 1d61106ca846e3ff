/**
 * Scanning in transit: every message is shown to a virus scanner before it is appended, and what
 * the scanner finds decides where the message goes (the user's folder, a quarantine folder at the
 * destination, or nowhere but a local .eml file).
 *
 * - Identical content is scanned once: verdicts are cached by SHA-256 of the bytes.
 * - Scans run a few at a time and during the fetch stage, so they overlap the previous batch's
 *   APPEND instead of adding to it.
 * - The scanner failing is not a verdict. While it is unreachable the copy waits and tries again
 *   with backoff; past the limit the mailbox stops (fail closed: nothing unscanned is delivered)
 *   unless fail-open was asked for, in which case messages go through marked "unscanned".
 * - A message the scanner, while up, did not judge (over its size limits, an error answer, a scan
 *   that timed out) is "unscanned": never counted as scanned. The unscanned action decides: 'hold'
 *   (the default) keeps it out of the destination and makes it a skipped item, so that the run is
 *   partial and the next run tries it again; 'deliver' delivers it to its folder and reports it.
 *   It is never put in the quarantine folder: it was not found to be anything, and a copy there
 *   would stay behind once a later run delivers it.
 */
import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import { ERROR_CODES, MigrateError, isMigrateError } from '../core/errors.js';
import { backoffDelay, type RetryPolicy } from '../copy/retry-policy.js';
import { sleep } from '../core/sleep.js';
import type { ScanVerdictRecord, SkippedItem } from '../job/report.js';
import type { MailStore, MessageMeta } from '../stores/mail-store.js';
import type { ScanVerdict } from './clamd.js';
import type { QuarantineDir, QuarantineFolder } from './quarantine.js';

/** What to do with a message the scanner flags. */
export type ScanPolicy = 'quarantine' | 'skip' | 'report';

/** What to do with a message the scanner could not judge while it was up (see the module comment). */
export type UnscannedAction = 'hold' | 'deliver';

/** Something that scans bytes: a clamd client, or any engine with the same verdicts. */
export interface ScanEngine {
  /** For messages: "clamd at 127.0.0.1:3310". */
  readonly description: string;
  /** Throws a MigrateError with code MM-SCAN-UNAVAILABLE when the scanner cannot give a verdict. */
  scan(body: Buffer, signal?: AbortSignal): Promise<ScanVerdict>;
}

/** The screen's finding for one message. */
export type ScreenResult =
  | { verdict: 'clean'; sha256: string }
  | { verdict: 'infected'; signature: string; sha256: string }
  /** `cause`: over the scanner's size limits, another answer without a verdict, or the scanner down (fail-open). */
  | { verdict: 'unscanned'; reason: string; sha256: string; cause: 'too-large' | 'no-verdict' | 'scanner-down' };

/** Options of {@link ContentScreen}. */
export interface ContentScreenOptions {
  engine: ScanEngine;
  policy: ScanPolicy;
  /** Deliver unscanned when the scanner is down (default: stop the mailbox). */
  failOpen: boolean;
  /** What becomes of a message the scanner, while up, could not judge. */
  unscanned: UnscannedAction;
  /** Where quarantined messages go at the destination (policy 'quarantine'). */
  quarantineFolder: QuarantineFolder;
  /** Where withheld messages are saved (policy 'skip'), when given. */
  quarantineDir?: QuarantineDir | undefined;
  /** Backoff while the scanner is unreachable. */
  retry: RetryPolicy;
  /** Tries of one scan before the scanner is declared unavailable (default 6: about 15 to 30 s with the default backoff). */
  attempts?: number;
  /** Scans in flight at once per batch (default 4). */
  concurrency?: number;
  logger?: Logger | undefined;
}

/** Counters for the report. */
export interface ScreenStats {
  /** Messages the scanner gave a verdict on (clean or infected), and their bytes; never an unscanned one. */
  scanned: number;
  scannedBytes: number;
  cached: number;
  infected: number;
  unscanned: number;
}

/** What becomes of a flagged message. */
export interface Disposal {
  /** True: append it to the user's folder as usual. */
  deliver: boolean;
  record: ScanVerdictRecord;
  /** Held for a later run: the skipped item's code and reason (the ledger then tries it again). */
  held?: Pick<SkippedItem, 'code' | 'reason'>;
}

/** How long a fail-open screen stops asking a scanner that was found down. */
const DOWN_HOLD_MS = 60_000;

/** Scans messages in transit and applies the policy; shared by every lane of a migration. */
export class ContentScreen {
  readonly stats: ScreenStats = { scanned: 0, scannedBytes: 0, cached: 0, infected: 0, unscanned: 0 };
  private readonly cache = new Map<string, Promise<ScreenResult>>();
  private downUntil = 0;

  constructor(readonly options: ContentScreenOptions) {}

  /** Scans `bodies` (a few at a time); resolves with one result per body, in order. */
  async check(bodies: readonly Buffer[], signal?: AbortSignal): Promise<ScreenResult[]> {
    const out: ScreenResult[] = new Array<ScreenResult>(bodies.length);
    let next = 0;
    const worker = async () => {
      for (let i = next++; i < bodies.length; i = next++) out[i] = await this.scanOne(bodies[i]!, signal);
    };
    await Promise.all(Array.from({ length: Math.min(this.options.concurrency ?? 4, bodies.length) }, worker));
    return out;
  }

  private scanOne(body: Buffer, signal?: AbortSignal): Promise<ScreenResult> {
    const sha256 = createHash('sha256').update(body).digest('hex');
    const cached = this.cache.get(sha256);
    if (cached) {
      this.stats.cached++;
      return cached;
    }
    const pending = this.scanFresh(body, sha256, signal);
    this.cache.set(sha256, pending);
    // Only real verdicts stay cached: "unscanned" and failures are asked again next time.
    pending.then(
      (r) => r.verdict === 'unscanned' && this.cache.delete(sha256),
      () => this.cache.delete(sha256),
    );
    return pending;
  }

  private async scanFresh(body: Buffer, sha256: string, signal?: AbortSignal): Promise<ScreenResult> {
    const { engine, retry, failOpen } = this.options;
    const attempts = this.options.attempts ?? 6;
    if (failOpen && Date.now() < this.downUntil) return this.unscanned(sha256, `${engine.description} was unavailable; delivered unscanned (--scan-fail-open)`, 'scanner-down');
    for (let attempt = 1; ; attempt++) {
      let verdict: ScanVerdict;
      try {
        verdict = await engine.scan(body, signal);
      } catch (err) {
        if (signal?.aborted || !isMigrateError(err) || err.code !== ERROR_CODES.SCAN_UNAVAILABLE) throw err;
        if (attempt >= attempts) {
          if (failOpen) {
            this.downUntil = Date.now() + DOWN_HOLD_MS;
            this.options.logger?.warn({ err: err.message }, 'scanner unavailable; delivering unscanned (--scan-fail-open)');
            return this.unscanned(sha256, `${err.message}; delivered unscanned (--scan-fail-open)`, 'scanner-down');
          }
          throw new MigrateError(
            ERROR_CODES.SCAN_UNAVAILABLE,
            `The virus scanner could not be used after ${attempt} tries (${err.message}). The copy stopped so that no unscanned message is delivered; what was copied so far was scanned. Start the scanner and run again (the rerun goes on where this one stopped), or pass --scan-fail-open to deliver unscanned.`,
            { scope: 'mailbox', retry: 'later', cause: err },
          );
        }
        const wait = backoffDelay(retry, attempt);
        this.options.logger?.warn({ attempt, waitMs: wait, err: err.message }, 'scanner unavailable; waiting');
        await sleep(wait, signal);
        continue;
      }
      if (verdict.status === 'too-large') return this.unscanned(sha256, `larger than ${engine.description} scans (it answered ${JSON.stringify(verdict.reply)})`, 'too-large');
      if (verdict.status === 'unscanned') return this.unscanned(sha256, verdict.reason, 'no-verdict');
      this.stats.scanned++;
      this.stats.scannedBytes += body.length;
      if (verdict.status === 'clean') return { verdict: 'clean', sha256 };
      this.stats.infected++;
      return { verdict: 'infected', signature: verdict.signature, sha256 };
    }
  }

  private unscanned(sha256: string, reason: string, cause: 'too-large' | 'no-verdict' | 'scanner-down'): ScreenResult {
    this.stats.unscanned++;
    return { verdict: 'unscanned', reason, sha256, cause };
  }

  /**
   * Applies the policy to an infected message: quarantine it at the destination (through `lane`,
   * calling `reconnect` when its destination connection is lost), withhold it (saved as .eml
   * when a quarantine directory was given), or let it be delivered. An unscanned one is delivered
   * (the scanner was down and fail-open was asked for, or the unscanned action is 'deliver') or
   * held for a later run. Records the verdict either way.
   */
  async dispose(
    result: Exclude<ScreenResult, { verdict: 'clean' }>,
    item: { folder: string; meta: MessageMeta; body: Buffer },
    lane: { dest: MailStore },
    reconnect: () => Promise<void>,
    signal?: AbortSignal,
  ): Promise<Disposal> {
    const { policy } = this.options;
    const code = { infected: ERROR_CODES.SCAN_INFECTED, 'too-large': ERROR_CODES.SCAN_TOO_LARGE, 'no-verdict': ERROR_CODES.SCAN_UNSCANNED, 'scanner-down': ERROR_CODES.SCAN_UNAVAILABLE };
    const record: ScanVerdictRecord = {
      folder: item.folder,
      uid: item.meta.uid,
      size: item.body.length,
      sha256: result.sha256,
      verdict: result.verdict,
      code: code[result.verdict === 'infected' ? 'infected' : result.cause],
      action: 'delivered',
      ...(item.meta.messageId ? { messageId: item.meta.messageId } : {}),
      ...(result.verdict === 'infected' ? { signature: result.signature } : { reason: result.reason }),
    };
    if (result.verdict === 'unscanned') {
      if (result.cause === 'scanner-down' || this.options.unscanned === 'deliver') return { deliver: true, record };
      record.action = 'held';
      const reason = `Not scanned: ${result.reason}. Held out of its folder (--scan-unscanned hold); the next run scans it again.`;
      return { deliver: false, record, held: { code: ERROR_CODES.SCAN_UNSCANNED, reason } };
    }
    if (policy === 'report') return { deliver: true, record };
    if (policy === 'quarantine') {
      const q = this.options.quarantineFolder;
      const added = await q.put(lane, item.meta, item.body, reconnect, signal);
      record.action = 'quarantined';
      record.quarantineFolder = q.name;
      if (!added) record.alreadyQuarantined = true;
    } else {
      record.action = 'withheld';
      const dir = this.options.quarantineDir;
      if (dir) record.savedAs = await dir.save(item.folder, item.meta.uid, result.sha256, item.body);
    }
    return { deliver: false, record };
  }
}
