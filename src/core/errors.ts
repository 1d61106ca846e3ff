/**
 * Typed errors with stable codes.
 *
 * Every error a user can see carries a code `MM-...` that is documented in docs/errors.md
 * (symptom, cause, resolution). The code is the contract; the message is for humans and may
 * change. `scope` says how much of the work the error costs (its blast radius) and `retry`
 * says whether repeating the operation can help.
 */

import { scrub } from './redact.js';

/** Every error code mailmover emits. Keep docs/errors.md in step with this list. */
export const ERROR_CODES = {
  USAGE: 'MM-USAGE',
  CONFIG_URL: 'MM-CONFIG-URL',
  CONFIG_PASSWORD_IN_URL: 'MM-CONFIG-PASSWORD-IN-URL',
  CONFIG_NO_PASSWORD: 'MM-CONFIG-NO-PASSWORD',
  CONFIG_PASSWORD_FILE: 'MM-CONFIG-PASSWORD-FILE',
  CONFIG_PLAINTEXT: 'MM-CONFIG-PLAINTEXT',
  CONFIG_OPTION: 'MM-CONFIG-OPTION',
  CONFIG_RULE: 'MM-CONFIG-RULE',
  CONNECT_REFUSED: 'MM-CONNECT-REFUSED',
  CONNECT_TIMEOUT: 'MM-CONNECT-TIMEOUT',
  CONNECT_DNS: 'MM-CONNECT-DNS',
  CONNECT_FAILED: 'MM-CONNECT-FAILED',
  TLS_CERT: 'MM-TLS-CERT',
  TLS_FAILED: 'MM-TLS-FAILED',
  AUTH_FAILED: 'MM-AUTH-FAILED',
  AUTH_TOKEN: 'MM-AUTH-TOKEN',
  OAUTH_DEVICE_EXPIRED: 'MM-OAUTH-DEVICE-EXPIRED',
  OAUTH_DENIED: 'MM-OAUTH-DENIED',
  OAUTH_REVOKED: 'MM-OAUTH-REVOKED',
  OAUTH_FAILED: 'MM-OAUTH-FAILED',
  OAUTH_FILE_UNSAFE: 'MM-OAUTH-FILE-UNSAFE',
  OAUTH_FILE: 'MM-OAUTH-FILE',
  LIST_FAILED: 'MM-LIST-FAILED',
  LIST_UNPARSED: 'MM-LIST-UNPARSED',
  RESPONSE_UNPARSED: 'MM-RESPONSE-UNPARSED',
  RESPONSE_TOO_LARGE: 'MM-RESPONSE-TOO-LARGE',
  FETCH_MISMATCH: 'MM-FETCH-MISMATCH',
  FETCH_INCOMPLETE: 'MM-FETCH-INCOMPLETE',
  LIST_INCOMPLETE: 'MM-LIST-INCOMPLETE',
  SEARCH_REFUSED: 'MM-SEARCH-REFUSED',
  FOLDER_GAVE_UP: 'MM-FOLDER-GAVE-UP',
  PLAN_COLLISION: 'MM-PLAN-COLLISION',
  FOLDER_NAME_TOO_LONG: 'MM-FOLDER-NAME-TOO-LONG',
  FOLDER_CREATE_FAILED: 'MM-FOLDER-CREATE-FAILED',
  FOLDER_SELECT_FAILED: 'MM-FOLDER-SELECT-FAILED',
  FOLDER_FAILED: 'MM-FOLDER-FAILED',
  FETCH_FAILED: 'MM-FETCH-FAILED',
  APPEND_FAILED: 'MM-APPEND-FAILED',
  GMAIL_LABEL_REFUSED: 'MM-GMAIL-LABEL-REFUSED',
  CONNECTION_LOST: 'MM-CONNECTION-LOST',
  MESSAGE_TOO_LARGE: 'MM-MESSAGE-TOO-LARGE',
  DEST_OVERQUOTA: 'MM-DEST-OVERQUOTA',
  BUDGET_SPENT: 'MM-BUDGET-SPENT',
  PROVIDER_LIMIT: 'MM-PROVIDER-LIMIT',
  BAD_ITEM_LIMIT: 'MM-BAD-ITEM-LIMIT',
  SCAN_UNAVAILABLE: 'MM-SCAN-UNAVAILABLE',
  SCAN_INFECTED: 'MM-SCAN-INFECTED',
  SCAN_TOO_LARGE: 'MM-SCAN-TOO-LARGE',
  SCAN_UNSCANNED: 'MM-SCAN-UNSCANNED',
  QUARANTINE_FAILED: 'MM-QUARANTINE-FAILED',
  STATE_OPEN: 'MM-STATE-OPEN',
  STATE_VERSION: 'MM-STATE-VERSION',
  STATE_LOCKED: 'MM-STATE-LOCKED',
  STATE_WRITE: 'MM-STATE-WRITE',
  BATCH_CONFIG: 'MM-BATCH-CONFIG',
  BATCH_CSV: 'MM-BATCH-CSV',
  BATCH_SECRET: 'MM-BATCH-SECRET',
  BATCH_UNKNOWN: 'MM-BATCH-UNKNOWN',
  QUEUE: 'MM-QUEUE',
  ABORTED: 'MM-ABORTED',
  REPORT_WRITE: 'MM-REPORT-WRITE',
  LOG_OPEN: 'MM-LOG-OPEN',
  NOTIFY_FAILED: 'MM-NOTIFY-FAILED',
  CONSOLE_LISTEN: 'MM-CONSOLE-LISTEN',
  CONSOLE_ACTION: 'MM-CONSOLE-ACTION',
  ARCHIVE_OPEN: 'MM-ARCHIVE-OPEN',
  ARCHIVE_MESSAGE: 'MM-ARCHIVE-MESSAGE',
  ARCHIVE_LOCKED: 'MM-ARCHIVE-LOCKED',
  PST_NOT_PST: 'MM-PST-NOT-PST',
  PST_ENCRYPTED: 'MM-PST-ENCRYPTED',
  PST_CORRUPT: 'MM-PST-CORRUPT',
  PST_ITEM: 'MM-PST-ITEM',
  INTERNAL: 'MM-INTERNAL',
} as const;

/** A stable mailmover error code. */
export type ErrorCode = (typeof ERROR_CODES)[keyof typeof ERROR_CODES];

/** How much of the work an error costs. */
export type ErrorScope = 'message' | 'folder' | 'mailbox' | 'config';

/** Whether repeating the failed operation can help: now, later (after a pause), or never. */
export type RetryClass = 'now' | 'later' | 'never';

/** Options for {@link MigrateError}. */
export interface MigrateErrorOptions {
  scope: ErrorScope;
  retry?: RetryClass;
  /** The server's own words (tagged response text); registered secrets are scrubbed from it. */
  serverResponse?: string;
  /** Milliseconds the server asked us to wait before trying again. */
  retryAfterMs?: number;
  /** A mailbox parked (MM-BUDGET-SPENT, MM-PROVIDER-LIMIT): when it may go on (ms since the epoch). */
  resumeAt?: number;
  cause?: unknown;
}

/** The one error type mailmover throws at its callers. */
export class MigrateError extends Error {
  readonly code: ErrorCode;
  readonly scope: ErrorScope;
  readonly retry: RetryClass;
  readonly serverResponse: string | undefined;
  /** A wait the server asked for before trying again (e.g. a throttling answer's suggested backoff). */
  readonly retryAfterMs: number | undefined;
  /** A parked mailbox: when it may go on (ms since the epoch). */
  readonly resumeAt: number | undefined;

  constructor(code: ErrorCode, message: string, options: MigrateErrorOptions) {
    // Scrubbed here, once, so that every report, JSON output and log line built from an error is
    // free of the secrets registered in src/core/redact.ts (a server may echo what it was sent).
    super(scrub(message), options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'MigrateError';
    this.code = code;
    this.scope = options.scope;
    this.retry = options.retry ?? 'never';
    this.serverResponse = options.serverResponse === undefined ? undefined : scrub(options.serverResponse);
    this.retryAfterMs = options.retryAfterMs;
    this.resumeAt = options.resumeAt;
  }

  /** A plain object for reports and JSON logs (no stack, no cause chain). */
  toJSON(): { code: ErrorCode; message: string; serverResponse?: string; resumeAt?: string } {
    return {
      code: this.code,
      message: this.message,
      ...(this.serverResponse === undefined ? {} : { serverResponse: this.serverResponse }),
      ...(this.resumeAt === undefined ? {} : { resumeAt: new Date(this.resumeAt).toISOString() }),
    };
  }
}

/** The codes of a mailbox parked rather than failed (a daily budget spent, a provider's own limit): it resumes later. */
export const PARK_CODES: ReadonlySet<string> = new Set([ERROR_CODES.BUDGET_SPENT, ERROR_CODES.PROVIDER_LIMIT]);

/** True when `err` is a {@link MigrateError}. */
export function isMigrateError(err: unknown): err is MigrateError {
  return err instanceof MigrateError;
}
