/**
 * Turns what imapflow and Node's socket layer throw into {@link MigrateError}s with a stable code,
 * a blast radius, a retry class and the server's own words.
 */
import { ERROR_CODES, MigrateError, isMigrateError, type ErrorCode, type ErrorScope, type RetryClass } from '../../core/errors.js';
import type { Endpoint } from '../../core/endpoint.js';
import { getStatusCode } from 'imapflow/lib/tools.js';

/** The fields imapflow and Node put on errors that we read. */
interface WireError {
  code?: string;
  message?: string;
  responseText?: string;
  responseStatus?: string;
  serverResponseCode?: string;
  authenticationFailed?: boolean;
  tlsFailed?: boolean;
  response?: unknown;
}

const TLS_CERT_CODES = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'CERT_UNTRUSTED',
]);

const CONNECTION_LOST_CODES = new Set(['NoConnection', 'EConnectionClosed', 'ECONNRESET', 'EPIPE', 'ClosedAfterConnectText', 'ClosedAfterConnectTLS', 'StateLogout']);
const TIMEOUT_CODES = new Set(['CONNECT_TIMEOUT', 'GREETING_TIMEOUT', 'UPGRADE_TIMEOUT', 'ETIMEOUT', 'ETIMEDOUT']);

/** The server's own response text for a failed command, when there is one. */
export function serverText(err: unknown): string | undefined {
  const e = err as WireError;
  if (typeof e?.responseText === 'string' && e.responseText) {
    // Not every imapflow command copies the response code onto the error (FETCH does not):
    // read it from the parsed response then, because "[UNAVAILABLE]" is the part that matters.
    const responseCode = e.serverResponseCode ?? (e.response && typeof e.response === 'object' ? getStatusCode(e.response) || undefined : undefined);
    const code = responseCode ? `[${responseCode}] ` : '';
    const status = e.responseStatus ? `${e.responseStatus} ` : '';
    return `${status}${code}${e.responseText}`.trim();
  }
  return undefined;
}

/** True when the failure means the connection is gone (its outcome may be unknown). */
export function isConnectionLoss(err: unknown): boolean {
  const code = (err as WireError)?.code;
  return typeof code === 'string' && (CONNECTION_LOST_CODES.has(code) || TIMEOUT_CODES.has(code));
}

/**
 * Classifies an error raised while connecting or logging in to one side.
 * The password is never part of any message built here.
 */
export function connectError(err: unknown, endpoint: Endpoint, side: 'source' | 'destination'): MigrateError {
  if (isMigrateError(err)) return err;
  const e = (err ?? {}) as WireError;
  const where = `${side} ${endpoint.host}:${endpoint.port}`;
  const text = serverText(err);
  const mk = (code: ErrorCode, message: string, retry: 'now' | 'later' | 'never') =>
    new MigrateError(code, message, { scope: 'mailbox', retry, cause: err, ...(text ? { serverResponse: text } : {}) });
  if (e.authenticationFailed || e.serverResponseCode === 'AUTHENTICATIONFAILED') {
    // The server's text often ends with its own period ("Authentication failed."): one is enough.
    return mk(ERROR_CODES.AUTH_FAILED, `Login to the ${where} as "${endpoint.user}" was refused${text ? `: ${text.replace(/[.\s]+$/, '')}` : ''}.`, 'never');
  }
  if (e.code === 'ECONNREFUSED') {
    return mk(ERROR_CODES.CONNECT_REFUSED, `Nothing accepts connections at the ${where} (connection refused).`, 'later');
  }
  if (e.code === 'ENOTFOUND' || e.code === 'EAI_AGAIN') {
    return mk(ERROR_CODES.CONNECT_DNS, `The ${side} host name "${endpoint.host}" could not be resolved (${e.code}).`, 'later');
  }
  if (e.code && TIMEOUT_CODES.has(e.code)) {
    return mk(ERROR_CODES.CONNECT_TIMEOUT, `The ${where} did not answer in time (${e.code}).`, 'later');
  }
  if (e.code && TLS_CERT_CODES.has(e.code)) {
    return mk(
      ERROR_CODES.TLS_CERT,
      `The ${where} presented a certificate that cannot be verified (${e.code}). ` +
        `Install its CA (NODE_EXTRA_CA_CERTS=FILE) or, for a test server, pass --${side === 'source' ? 'from' : 'to'}-tls-insecure.`,
      'never',
    );
  }
  if (e.tlsFailed || /STARTTLS/i.test(e.message ?? '') || /ssl|tls/i.test(e.code ?? '')) {
    return mk(ERROR_CODES.TLS_FAILED, `TLS could not be set up with the ${where}: ${e.message ?? e.code}.`, 'never');
  }
  return mk(ERROR_CODES.CONNECT_FAILED, `The ${where} could not be used: ${e.message ?? String(err)}${e.code ? ` (${e.code})` : ''}.`, 'later');
}

/** What a server's answer to a failed command says about trying again. */
export interface ResponseClass {
  /** 'later': a temporary condition (busy, locked, throttled); 'now': unknown, worth one more try; 'never': permanent. */
  retry: RetryClass;
  /** The wait the server suggested, when it named one. */
  retryAfterMs?: number;
  /** The destination is out of quota: every further message would fail too. */
  overQuota: boolean;
}

/** Response codes (RFC 5530) that name a temporary condition. */
const TRANSIENT_CODES = /\[(UNAVAILABLE|INUSE|LIMIT|THROTTLED|SERVERBUG)\b/i;
/** Response codes that name a permanent one. */
const PERMANENT_CODES = /\[(CANNOT|TOOBIG|NONEXISTENT|TRYCREATE|NOPERM|PARSE|CLIENTBUG|EXPUNGEISSUED|CORRUPTION|ALREADYEXISTS)\b/i;
/** Words of temporary conditions from servers that send no response code (Exchange, Gmail, scanners). */
const TRANSIENT_WORDS = /throttl|try again later|temporar|being scanned|currently unavailable|busy|too many (requests|connections|simultaneous)|server is overloaded/i;
/** Size refusals: a [LIMIT] that says the message itself is too big is not going to change. */
const SIZE_WORDS = /too (large|big)|size limit|exceeds/i;

/**
 * Classifies a server's answer to a failed command (the tagged NO/BAD text with its code).
 *
 * [UNAVAILABLE], [INUSE], [LIMIT] and throttling words are temporary; [CANNOT], [TOOBIG] and
 * the like are permanent; [OVERQUOTA] ends the mailbox. Microsoft 365 says how long to wait
 * ("Suggested Backoff Time: 2500 milliseconds"), which is honoured. An answer that says nothing
 * we recognise is tried once more ('now') and then reported.
 */
export function classifyResponse(text: string | undefined): ResponseClass {
  if (!text) return { retry: 'now', overQuota: false };
  const suggested = /suggested\s+backoff\s+time[^0-9]{0,5}(\d{1,9})\s*(ms|milli|s)?/i.exec(text);
  const retryAfterMs = suggested ? Number(suggested[1]) * (/^s$/i.test(suggested[2] ?? '') ? 1000 : 1) : undefined;
  const withWait = (c: ResponseClass): ResponseClass => (retryAfterMs === undefined ? c : { ...c, retryAfterMs });
  if (/\[OVERQUOTA\b/i.test(text) || /quota exceeded|over quota|mailbox (is )?full/i.test(text)) return { retry: 'never', overQuota: true };
  if (PERMANENT_CODES.test(text)) return { retry: 'never', overQuota: false };
  if (TRANSIENT_CODES.test(text)) return /\[LIMIT\b/i.test(text) && SIZE_WORDS.test(text) && !suggested ? { retry: 'never', overQuota: false } : withWait({ retry: 'later', overQuota: false });
  if (suggested || TRANSIENT_WORDS.test(text)) return withWait({ retry: 'later', overQuota: false });
  if (/^BAD\b/i.test(text)) return { retry: 'never', overQuota: false };
  return { retry: 'now', overQuota: false };
}

/** Wraps a failed command at the given scope, keeping the server's words. */
export function commandError(code: ErrorCode, scope: ErrorScope, what: string, err: unknown): MigrateError {
  if (isMigrateError(err)) return err;
  const text = serverText(err);
  const e = (err ?? {}) as WireError;
  const lost = isConnectionLoss(err);
  const detail = text ?? (lost ? `connection lost (${e.code})` : (e.message ?? String(err)));
  if (lost) {
    return new MigrateError(ERROR_CODES.CONNECTION_LOST, `${what}: ${detail}`, { scope: 'folder', retry: 'now', cause: err, ...(text ? { serverResponse: text } : {}) });
  }
  const cls = classifyResponse(text);
  if (cls.overQuota && code === ERROR_CODES.APPEND_FAILED) {
    return new MigrateError(ERROR_CODES.DEST_OVERQUOTA, `${what}: the mailbox is over its quota: ${detail}`, { scope: 'mailbox', retry: 'never', cause: err, ...(text ? { serverResponse: text } : {}) });
  }
  return new MigrateError(code, `${what}: ${detail}`, {
    scope,
    retry: cls.retry,
    cause: err,
    ...(text ? { serverResponse: text } : {}),
    ...(cls.retryAfterMs !== undefined ? { retryAfterMs: cls.retryAfterMs } : {}),
  });
}
