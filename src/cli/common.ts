/**
 * What every command shares: passwords and tokens of a side, the --log file, Ctrl-C handling, reports written atomically, exit codes of a report.
 */
import { chmod, rename, writeFile } from 'node:fs/promises';
import { pino, type Logger } from 'pino';
import { parseEndpoint } from '../core/endpoint.js';
import { ERROR_CODES, MigrateError } from '../core/errors.js';
import { type VerifyReport } from '../job/verify.js';
import type { MigrationReport } from '../job/report.js';
import { VERSION } from '../version.js';
import { isPostgresUrl, openState, type StateStore } from '../state/store.js';
import { tokenFromCommand, tokenFromFile, type TokenProvider } from '../core/access-token.js';
import { tokenFromCredentials } from '../core/oauth-credentials.js';
import { existsSync } from 'node:fs';
import { resolvePassword } from './passwords.js';
import { scrubStream } from '../core/redact.js';
import { openLogFile } from './log-file.js';
import { EXIT, exitForError } from './exit-codes.js';
import type { ConnectionFlags } from './options.js';

/** The exit code of a finished migration report. */
export function exitOfReport(report: MigrationReport): number {
  if (report.status === 'complete') return EXIT.OK;
  if (report.status === 'partial') return EXIT.PARTIAL;
  return exitForError(report.error?.code ?? report.folders.find((f) => f.error)?.error?.code);
}

/** What to try next for a run that failed before it started (no folder was looked at). */
export function hintFor(code: string): string {
  if (code === ERROR_CODES.AUTH_FAILED) return 'check the user in the URL and the password (file, $MAILMOVER_FROM_PASSWORD/$MAILMOVER_TO_PASSWORD or the prompt)';
  if (code.startsWith('MM-OAUTH-')) return 'run mailmover login again for this account (see docs/errors.md)';
  if (code === ERROR_CODES.AUTH_TOKEN) return 'check --from/--to-token-file or --from/--to-token-command';
  if (code.startsWith('MM-CONNECT-')) return 'check the host and port in the URL, and that the server is up (--timeout sets the wait)';
  if (code === ERROR_CODES.SEARCH_REFUSED) return 'check the --search keys (RFC 3501 search keys, text with spaces in double quotes, dates as 1-Jan-2024)';
  if (code.startsWith('MM-TLS-')) return 'imaps:// for implicit TLS, imap:// for STARTTLS; --from-tls-insecure/--to-tls-insecure skip certificate checks';
  return 'see docs/errors.md';
}

/** The structured log (pino JSON lines) when --log FILE was given; password fields are redacted. */
export function openLog(file: string | undefined): Logger | undefined {
  if (!file) return undefined;
  // Opened and written once here (MM-LOG-OPEN before anything is done); later write failures are noted once, never fatal.
  // Every line goes through scrub(): a server's text (an echoed login, a raw line imapflow could not parse) is logged too.
  const first = JSON.stringify({ level: 30, time: Date.now(), pid: process.pid, msg: 'log opened', version: VERSION }) + '\n';
  return pino({ base: { pid: process.pid }, redact: { paths: ['password', 'pass', '*.password', '*.pass'], censor: '[redacted]' } }, scrubStream(openLogFile(file, first)));
}

/**
 * Ctrl-C and SIGTERM: the first aborts `controller` after saying `what` will happen, a second
 * one quits at once. Returns the function that removes the handlers.
 */
export function onInterrupt(controller: AbortController, what: string): () => void {
  const handler = (sig: NodeJS.Signals) => {
    if (controller.signal.aborted) process.exit(130);
    process.stderr.write(`\n${sig}: ${what} (press Ctrl-C again to quit at once)\n`);
    controller.abort(new MigrateError(ERROR_CODES.ABORTED, `Stopped by ${sig}.`, { scope: 'mailbox' }));
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  return () => {
    process.off('SIGINT', handler);
    process.off('SIGTERM', handler);
  };
}

/** The password of a side, unless it logs in with OAuth 2.0 tokens (then no password is asked for). */
export function sidePassword(side: 'from' | 'to', flags: ConnectionFlags, user: string): Promise<string> {
  const tokens = side === 'from' ? flags.fromTokenFile ?? flags.fromTokenCommand ?? flags.fromOauth : flags.toTokenFile ?? flags.toTokenCommand ?? flags.toOauth;
  // A local archive has no login.
  if (tokens || parseEndpoint(side === 'from' ? flags.from : flags.to, side).archive) return Promise.resolve('');
  return resolvePassword(side, side === 'from' ? flags.fromPasswordFile : flags.toPasswordFile, process.env, user, side === 'from' ? flags.fromAuthzid : flags.toAuthzid);
}

/** The OAuth 2.0 token source of a side, when it has one. */
export function sideTokens(side: 'from' | 'to', flags: ConnectionFlags): { accessToken: TokenProvider } | Record<string, never> {
  const user = parseEndpoint(side === 'from' ? flags.from : flags.to, side).user;
  const file = side === 'from' ? flags.fromTokenFile : flags.toTokenFile;
  const command = side === 'from' ? flags.fromTokenCommand : flags.toTokenCommand;
  const oauth = side === 'from' ? flags.fromOauth : flags.toOauth;
  if ([file, command, oauth].filter(Boolean).length > 1) throw new MigrateError(ERROR_CODES.CONFIG_OPTION, `--${side}-token-file, --${side}-token-command and --${side}-oauth exclude each other.`, { scope: 'config' });
  if (oauth) return { accessToken: tokenFromCredentials(oauth, user) };
  if (file) return { accessToken: tokenFromFile(file, user) };
  if (command) return { accessToken: tokenFromCommand(command, user) };
  return {};
}

/**
 * Opens a ledger to read what it recorded: a state file must exist already (opening would create
 * an empty one); a PostgreSQL database is opened as it is.
 */
export async function openRecorded(location: string, hint: string): Promise<StateStore> {
  if (!isPostgresUrl(location) && !existsSync(location)) throw new MigrateError(ERROR_CODES.STATE_OPEN, `There is no state file "${location}" (${hint}).`, { scope: 'config' });
  return openState(location);
}

/** Writes the report atomically: a crash never leaves half a JSON file behind. */
export async function writeReport(file: string, report: MigrationReport | VerifyReport): Promise<void> {
  const tmp = `${file}.${process.pid}.tmp`;
  try {
    // 0600: a report names folders, subjects' Message-IDs and server answers of one person's mailbox.
    await writeFile(tmp, JSON.stringify(report, null, 2) + '\n', { mode: 0o600 });
    await chmod(tmp, 0o600);
    await rename(tmp, file);
  } catch (err) {
    throw new MigrateError(ERROR_CODES.REPORT_WRITE, `Cannot write the report to "${file}" (${(err as NodeJS.ErrnoException).code ?? err}).`, { scope: 'mailbox', cause: err });
  }
}
