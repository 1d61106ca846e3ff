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

/** What is wrong with a certificate, by Node's (OpenSSL's) verification code. */
const CERT_PROBLEMS: Record<string, string> = {
  ERR_TLS_CERT_ALTNAME_INVALID: 'is for another name',
  DEPTH_ZERO_SELF_SIGNED_CERT: 'is self-signed',
  SELF_SIGNED_CERT_IN_CHAIN: 'chains up to a self-signed CA this machine does not trust',
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'is issued by a CA this machine does not know',
  UNABLE_TO_GET_ISSUER_CERT: 'is issued by a CA this machine does not know',
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: 'is issued by a CA this machine does not know',
  CERT_UNTRUSTED: 'is not trusted',
  CERT_HAS_EXPIRED: 'has expired',
  CERT_NOT_YET_VALID: 'is not valid yet',
};

/** The error itself or one of its causes that carries a certificate verification code. */
function certFailure(err: unknown): (WireError & { code: string; reason?: string }) | undefined {
  for (let e = err as (WireError & { cause?: unknown }) | undefined, depth = 0; e && depth < 5; e = e.cause as typeof e, depth++) {
    if (typeof e.code === 'string' && TLS_CERT_CODES.has(e.code)) return e as WireError & { code: string };
  }
  return undefined;
}

/** OpenSSL's words when a TLS handshake meets a server that does not speak TLS on that port. */
const PLAIN_PORT = /wrong version number|packet length too long|unknown protocol|http request/i;

/** Options of {@link connectError}. */
export interface ConnectErrorOptions {
  /** STARTTLS was required (imap:// to a host that is not loopback, without --allow-plaintext). */
  requireStartTls?: boolean;
}

/**
 * Classifies an error raised while connecting or logging in to one side.
 * The password is never part of any message built here. A certificate problem is always
 * MM-TLS-CERT, also during a required STARTTLS: only a server that offers no STARTTLS at all is
 * told about --allow-plaintext.
 */
export function connectError(err: unknown, endpoint: Endpoint, side: 'source' | 'destination', opts: ConnectErrorOptions = {}): MigrateError {
  if (isMigrateError(err)) return err;
  const e = (err ?? {}) as WireError;
  const where = `${side} ${endpoint.host}:${endpoint.port}`;
  const text = serverText(err);
  const flag = side === 'source' ? 'from' : 'to';
  const mk = (code: ErrorCode, message: string, retry: 'now' | 'later' | 'never') =>
    new MigrateError(code, message, { scope: 'mailbox', retry, cause: err, ...(text ? { serverResponse: text } : {}) });
  const cert = certFailure(err);
  if (cert) {
    const detail = cert.code === 'ERR_TLS_CERT_ALTNAME_INVALID' && cert.reason ? ` (${cert.reason})` : '';
    return mk(
      ERROR_CODES.TLS_CERT,
      `The ${where} presented a certificate that ${CERT_PROBLEMS[cert.code] ?? 'cannot be verified'}${detail}; ${cert.code}. ` +
        (cert.code === 'ERR_TLS_CERT_ALTNAME_INVALID'
          ? `Connect by a name the certificate holds, or fix the server's certificate; for a test server, pass --${flag}-tls-insecure.`
          : cert.code === 'CERT_HAS_EXPIRED' || cert.code === 'CERT_NOT_YET_VALID'
            ? `Renew the server's certificate (or check this machine's clock); for a test server, pass --${flag}-tls-insecure.`
            : `Install its CA (NODE_EXTRA_CA_CERTS=FILE) or, for a test server, pass --${flag}-tls-insecure.`),
      'never',
    );
  }
  if (opts.requireStartTls && e.tlsFailed && !e.code && /does not support STARTTLS/i.test(e.message ?? '')) {
    return new MigrateError(
      ERROR_CODES.CONFIG_PLAINTEXT,
      `The ${where} does not offer STARTTLS, and a password is only sent in clear text to loopback. ` +
        `Use imaps://, enable STARTTLS on the server, or pass --allow-plaintext on a network you trust.`,
      { scope: 'mailbox', cause: err },
    );
  }
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
  if (endpoint.protocol === 'imaps' && PLAIN_PORT.test(`${e.message ?? ''} ${e.code ?? ''}`.replace(/_/g, ' '))) {
    return mk(
      ERROR_CODES.TLS_FAILED,
      `TLS could not be set up with the ${where}: this port speaks plain IMAP: use imap:// (STARTTLS) or port 993 (${e.code ?? e.message}).`,
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

/**
 * A provider's own usage limit, not the mailbox's storage: Gmail's `NO [OVERQUOTA] Account exceeded
 * command or bandwidth limits. (Failure)` (its daily IMAP download and upload limits, lifted up to a
 * day later), other answers that name a bandwidth or transfer limit exceeded, and an account
 * temporarily locked or blocked (Exchange and Microsoft 365 lock an account for a while after too
 * much traffic or too many commands; Yahoo and others do the same). A destination `[OVERQUOTA]`
 * that says nothing of bandwidth ("Quota exceeded", "mailbox full") stays a storage quota
 * (MM-DEST-OVERQUOTA): the words decide, not the code.
 */
export function isProviderLimit(text: string | undefined): boolean {
  if (!text) return false;
  return (
    /command or bandwidth limits?/i.test(text) ||
    /bandwidth[^.]{0,40}(limit|exceed|quota)|(limit|exceed)[^.]{0,40}bandwidth/i.test(text) ||
    /(download|upload|transfer) (limit|quota)[^.]{0,20}(exceeded|reached)|exceeded[^.]{0,20}(download|upload|transfer) (limit|quota)/i.test(text) ||
    /account (is |has been )?temporarily (locked|blocked|suspended)/i.test(text)
  );
}

/** True for Exchange Online's answer of a half-open session (logged in, no mailbox behind it). */
export const isHalfOpen = (text: string | undefined): boolean => !!text && /authenticated but not connected/i.test(text);

/** Wraps a failed command at the given scope, keeping the server's words. */
export function commandError(code: ErrorCode, scope: ErrorScope, what: string, err: unknown): MigrateError {
  if (isMigrateError(err)) return err;
  const text = serverText(err);
  const e = (err ?? {}) as WireError;
  // Exchange Online can accept a login and answer every command of that session "User is
  // authenticated but not connected.": as good as a lost connection (a new one usually works).
  const lost = isConnectionLoss(err) || isHalfOpen(text);
  const detail = text ?? (lost ? `connection lost (${e.code})` : (e.message ?? String(err)));
  if (lost) {
    return new MigrateError(ERROR_CODES.CONNECTION_LOST, `${what}: ${detail}`, { scope: 'folder', retry: 'now', cause: err, ...(text ? { serverResponse: text } : {}) });
  }
  if (isProviderLimit(text)) {
    // The whole account is held back: the mailbox is parked (the caller says until when), not failed.
    return new MigrateError(ERROR_CODES.PROVIDER_LIMIT, `${what}: the provider's own limit is reached: ${detail}`, { scope: 'mailbox', retry: 'later', cause: err, ...(text ? { serverResponse: text } : {}) });
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
