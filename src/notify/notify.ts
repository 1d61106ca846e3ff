/**
 * Notifications when a batch ends: the batch report by e-mail (a short summary in the body, the
 * JSON and Markdown reports attached) and/or POSTed as JSON to webhooks.
 *
 * A notification is a courtesy, not part of the migration: whatever happens here never changes
 * the batch's outcome or exit code. Each failure is returned (code MM-NOTIFY-FAILED), logged,
 * and printed on stderr by the caller.
 */
import path from 'node:path';
import type { Logger } from 'pino';
import { isLoopbackHost } from '../core/endpoint.js';
import { ERROR_CODES, MigrateError } from '../core/errors.js';
import { registerSecret, scrub } from '../core/redact.js';
import type { BatchReport } from '../batch/batch-report.js';
import { resolveSecret } from '../batch/secrets.js';
import { sendEmail, type SmtpTarget } from './email.js';
import { postWebhook } from './webhook.js';

export type { SmtpTarget } from './email.js';

/** What the configuration (or the command line) asks for; secrets still as references. */
export interface NotifySettings {
  email?: { to: string[]; from?: string; smtp?: string; password?: string };
  webhooks?: { url: string; header?: Record<string, string> }[];
}

/** Settings with their secrets resolved (and registered for scrubbing). */
export interface ResolvedNotify {
  email?: { to: string[]; from: string; smtp: SmtpTarget; password?: string };
  webhooks: { url: string; headers: Record<string, string> }[];
}

const SMTP_URL = /^(smtps?):\/\/(?:([^@/\s:]+)@)?(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+)(?::(\d{1,5}))?\/?$/;
const ADDRESS = /^[^\s@<>,;"]+@[^\s@<>,;"]+$/;

/** Parses an SMTP URL; returns an error text (naming no password) when it is not one. */
export function parseSmtpUrl(url: string): SmtpTarget | string {
  if (/^smtps?:\/\/[^@/]*:[^@/]*@/.test(url)) return 'the SMTP URL must not contain a password: give it as notify.email.password (env:NAME or file:PATH) or --notify-smtp-password';
  const m = SMTP_URL.exec(url);
  if (!m) return 'the SMTP URL must be smtp://[USER@]HOST[:PORT] or smtps://[USER@]HOST[:PORT]';
  const secure = m[1] === 'smtps';
  const port = m[4] === undefined ? (secure ? 465 : 587) : Number(m[4]);
  if (port < 1 || port > 65535) return 'the SMTP URL has an invalid port';
  return { secure, host: m[3]!.replace(/^\[|\]$/g, ''), port, ...(m[2] ? { user: decodeURIComponent(m[2]) } : {}) };
}

/** Checks one address (`a@b`); returns an error text or undefined. */
export function checkAddress(a: string): string | undefined {
  return ADDRESS.test(a) ? undefined : `"${a}" is not an e-mail address`;
}

/** Checks a webhook URL (http or https); returns an error text or undefined. */
export function checkWebhookUrl(url: string): string | undefined {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return 'the webhook URL is not a URL';
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') return 'the webhook URL must be http:// or https://';
  if (u.username || u.password) return 'the webhook URL must not contain a user or password: give a header (Authorization: env:NAME)';
  return undefined;
}

/**
 * Resolves the secret references (SMTP password, header values) before the batch starts, so that a
 * missing variable is reported at once (MM-BATCH-SECRET) rather than after hours of copying.
 */
export function resolveNotify(settings: NotifySettings, env: NodeJS.ProcessEnv = process.env): ResolvedNotify {
  const secret = (ref: string, what: string, user?: string) => {
    try {
      return resolveSecret(ref, env, user ? { user } : {}).value;
    } catch (err) {
      throw new MigrateError(ERROR_CODES.BATCH_SECRET, `The ${what} cannot be resolved: ${(err as Error).message}`, { scope: 'config' });
    }
  };
  const out: ResolvedNotify = { webhooks: [] };
  const e = settings.email;
  if (e && e.to.length > 0) {
    const smtp = parseSmtpUrl(e.smtp ?? 'smtp://localhost:25');
    if (typeof smtp === 'string') throw new MigrateError(ERROR_CODES.CONFIG_OPTION, `notify: ${smtp}`, { scope: 'config' });
    for (const a of [...e.to, ...(e.from ? [e.from] : [])]) {
      const bad = checkAddress(a);
      if (bad) throw new MigrateError(ERROR_CODES.CONFIG_OPTION, `notify: ${bad}`, { scope: 'config' });
    }
    out.email = { to: e.to, from: e.from ?? `mailmover@${smtp.host.includes(':') ? 'localhost' : smtp.host}`, smtp, ...(e.password ? { password: secret(e.password, 'SMTP password (notify.email.password)', smtp.user) } : {}) };
  }
  for (const w of settings.webhooks ?? []) {
    const bad = checkWebhookUrl(w.url);
    if (bad) throw new MigrateError(ERROR_CODES.CONFIG_OPTION, `notify: ${bad}`, { scope: 'config' });
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(w.header ?? {})) {
      headers[k] = secret(v, `webhook header ${k}`);
      // "Bearer TOKEN": the token alone is the secret a receiver's error page could echo.
      const token = /^\S+\s+(\S+)$/.exec(headers[k])?.[1];
      if (token) registerSecret(token);
    }
    out.webhooks.push({ url: w.url, headers });
  }
  return out;
}

/** Merges command-line notification options over the configuration's `notify:` part. */
export function mergeNotify(fromConfig: NotifySettings | undefined, cli: { email?: string[]; smtp?: string; from?: string; smtpPassword?: string; webhook?: string[] }): NotifySettings {
  const base = fromConfig ?? {};
  const to = cli.email?.length ? cli.email : base.email?.to;
  const email = to?.length
    ? {
        to,
        ...((cli.from ?? base.email?.from) ? { from: (cli.from ?? base.email?.from)! } : {}),
        ...((cli.smtp ?? base.email?.smtp) ? { smtp: (cli.smtp ?? base.email?.smtp)! } : {}),
        ...((cli.smtpPassword ?? base.email?.password) ? { password: (cli.smtpPassword ?? base.email?.password)! } : {}),
      }
    : undefined;
  const webhooks = [...(base.webhooks ?? []), ...(cli.webhook ?? []).map((url) => ({ url }))];
  return { ...(email ? { email } : {}), ...(webhooks.length ? { webhooks } : {}) };
}

/** True when the settings ask for anything at all. */
export function wantsNotify(n: ResolvedNotify | undefined): n is ResolvedNotify {
  return !!n && (!!n.email || n.webhooks.length > 0);
}

/** A failed notification: what it was for, and why (scrubbed). */
export interface NotifyFailure {
  code: typeof ERROR_CODES.NOTIFY_FAILED;
  target: string;
  message: string;
}

/**
 * Sends every notification asked for; never throws. `reportDir` holds batch-report.json and
 * batch-report.md (written by finishReport), which are attached as they are on disk.
 */
export async function notifyBatchEnd(report: BatchReport, reportDir: string, n: ResolvedNotify, logger?: Logger, interrupted = false): Promise<NotifyFailure[]> {
  const failures: NotifyFailure[] = [];
  const fail = (target: string, err: unknown) => {
    const message = scrub(String((err as Error)?.message ?? err));
    failures.push({ code: ERROR_CODES.NOTIFY_FAILED, target, message });
    logger?.error({ code: ERROR_CODES.NOTIFY_FAILED, target, err: message }, 'notification failed');
  };
  const tasks: Promise<void>[] = [];
  if (n.email) {
    const e = n.email;
    const target = `e-mail to ${e.to.join(', ')} via ${e.smtp.secure ? 'smtps' : 'smtp'}://${e.smtp.host}:${e.smtp.port}`;
    tasks.push(
      sendEmail({
        smtp: e.smtp,
        ...(e.password ? { password: e.password } : {}),
        // STARTTLS is required on the way to another machine: the report names every mailbox.
        requireTls: !e.smtp.secure && !isLoopbackHost(e.smtp.host),
        from: e.from,
        to: e.to,
        subject: `mailmover batch "${report.name}": ${interrupted && report.status !== 'interrupted' ? 'interrupted, ' : ''}${report.status}`,
        text: summaryText(report, interrupted),
        attachments: [path.join(reportDir, 'batch-report.json'), path.join(reportDir, 'batch-report.md')],
      }).then(
        () => void logger?.info({ target }, 'notification sent'),
        (err) => fail(target, err),
      ),
    );
  }
  for (const w of n.webhooks) {
    const target = `webhook ${safeUrl(w.url)}`;
    tasks.push(postWebhook(w.url, JSON.stringify(report), w.headers).then(() => void logger?.info({ target }, 'notification sent'), (err) => fail(target, err)));
  }
  await Promise.all(tasks);
  return failures;
}

/** Prints each failure on stderr, one line each, with its code. */
export function printNotifyFailures(failures: NotifyFailure[], out: { write(s: string): unknown } = process.stderr): void {
  for (const f of failures) out.write(`mailmover: ${f.code}: the ${f.target} failed: ${f.message} (the batch's outcome is unchanged)\n`);
}

/** The plain-text body: counts per status, copied messages, the mailboxes that did not complete. */
export function summaryText(r: BatchReport, interrupted = false): string {
  const t = r.totals;
  const lines = [
    `Batch "${r.name}" ended: ${r.status}${interrupted ? ' (interrupted by the operator before every mailbox had run)' : ''}.`,
    '',
    `Mailboxes: ${t.mailboxes} (complete ${t.complete}, of which ${t.alreadyComplete} from an earlier run; partial ${t.partial}; failed ${t.failed}${t.interrupted ? `; interrupted ${t.interrupted}` : ''}${t.notStarted ? `; not started ${t.notStarted}` : ''})`,
    ...(r.verdict ? [`Verdict: ${r.verdict}`] : []),
    `Messages copied: ${t.copied}; items skipped: ${t.skippedItems}`,
    `Time: ${t.seconds} s (${r.startedAt} to ${r.finishedAt})`,
  ];
  const bad = r.jobs.filter((j) => j.status !== 'complete' && j.status !== 'not started');
  if (bad.length) {
    lines.push('', 'Mailboxes not complete:');
    for (const j of bad) lines.push(`  line ${j.line}: ${j.source} -> ${j.destination}: ${j.status}${j.code ? ` ${j.code}` : ''}${j.message ? `: ${j.message.replace(/\s+/g, ' ').slice(0, 300)}` : ''}`);
  }
  if (r.warnings.length) lines.push('', `Warnings: ${r.warnings.length} (see the attached report)`);
  lines.push('', 'The full reports are attached (batch-report.json, batch-report.md). Error codes are explained in docs/errors.md of mailmover.', '');
  return scrub(lines.join('\n'));
}

/**
 * A webhook URL without its path and query, for messages: many services put the secret in the
 * path itself (https://hooks.example.com/services/T0/B0/SECRET).
 */
function safeUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname === '/' && !u.search ? '/' : '/…'}`;
  } catch {
    return '(invalid URL)';
  }
}
