/**
 * What the listing and body-fetch modules need of an ImapStore's connection (the store implements
 * it): the live imapflow client, the log of lines imapflow could not parse, and the store's rules
 * for what ends a folder.
 */
import type { ImapFlow } from 'imapflow';
import { ERROR_CODES, MigrateError } from '../../core/errors.js';
import type { ResponseLog } from './response-log.js';

export interface ImapSession {
  /** The connected client; throws CONNECTION_LOST when it is gone. */
  readonly conn: ImapFlow;
  readonly responses: ResponseLog;
  readonly side: 'source' | 'destination';
  /** Rethrows an abort or a lost connection (wrapped by `wrap`); anything else is the caller's. */
  throwIfFatal(err: unknown, signal: AbortSignal | undefined, wrap: (err: unknown) => MigrateError): void;
  listError(path: string, err: unknown): MigrateError;
  /** Closes the connection for `reason` (a passed deadline); the failing command is reported with it. */
  abandon(reason: Error & { code: string }): void;
}

/** A message-scope error carrying the raw line the server sent. */
export function unparsedError(message: string, raw: string): MigrateError {
  return new MigrateError(ERROR_CODES.RESPONSE_UNPARSED, `${message}: ${raw}`, { scope: 'message', serverResponse: raw });
}
