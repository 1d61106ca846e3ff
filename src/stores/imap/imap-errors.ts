/**
 * Turns what imapflow and Node's socket layer throw into {@link MigrateError}s with a stable code,
 * a blast radius, a retry class and the server's own words.
 */
import { ERROR_CODES, MigrateError, isMigrateError, type ErrorCode, type ErrorScope } from '../../core/errors.js';
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
    return mk(ERROR_CODES.AUTH_FAILED, `Login to the ${where} as "${endpoint.user}" was refused${text ? `: ${text}` : ''}.`, 'never');
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

/** Wraps a failed command at the given scope, keeping the server's words. */
export function commandError(code: ErrorCode, scope: ErrorScope, what: string, err: unknown): MigrateError {
  if (isMigrateError(err)) return err;
  const text = serverText(err);
  const e = (err ?? {}) as WireError;
  const lost = isConnectionLoss(err);
  const detail = text ?? (lost ? `connection lost (${e.code})` : (e.message ?? String(err)));
  return new MigrateError(lost ? ERROR_CODES.CONNECTION_LOST : code, `${what}: ${detail}`, {
    scope: lost ? 'folder' : scope,
    retry: lost ? 'now' : 'never',
    cause: err,
    ...(text ? { serverResponse: text } : {}),
  });
}
