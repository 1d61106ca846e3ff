/**
 * The CLI's exit codes, by class of outcome, so that a script can tell "fix the password" from
 * "the network is down" from "retry later" without parsing text. Documented in README "Exit
 * codes" and docs/errors.md; every command's --help ends with EXIT_HELP. Stable: a code's meaning
 * never changes once released.
 */
import { ERROR_CODES, type ErrorCode } from '../core/errors.js';

export const EXIT = {
  /** Everything is at the destination (verify: both sides match). */
  OK: 0,
  /** The migration failed for any reason not given its own code below. */
  FAILED: 1,
  /** Usage or configuration error: nothing was attempted. */
  USAGE: 2,
  /** Finished, but some items were skipped (each listed in the report). */
  PARTIAL: 3,
  /** A server refused the login (password, token, authzid). */
  AUTH: 4,
  /** A server could not be reached, or TLS could not be set up with it. */
  CONNECT: 5,
  /** The destination ran out of quota. */
  QUOTA: 6,
  /**
   * Not finished, not failed (EX_TEMPFAIL): a mailbox is parked (`waiting`) because a daily budget
   * is spent or the provider said its own limit is reached; a run after the resume time goes on.
   */
  WAITING: 75,
  /** mailmover itself broke (EX_SOFTWARE): a bug to report. */
  INTERNAL: 70,
  /** Stopped by Ctrl-C or SIGTERM (128 + SIGINT, as shells report it). */
  INTERRUPTED: 130,
} as const;

const BY_CODE: Partial<Record<ErrorCode, number>> = {
  [ERROR_CODES.AUTH_FAILED]: EXIT.AUTH,
  [ERROR_CODES.AUTH_TOKEN]: EXIT.AUTH,
  [ERROR_CODES.OAUTH_DEVICE_EXPIRED]: EXIT.AUTH,
  [ERROR_CODES.OAUTH_DENIED]: EXIT.AUTH,
  [ERROR_CODES.OAUTH_REVOKED]: EXIT.AUTH,
  [ERROR_CODES.OAUTH_FAILED]: EXIT.AUTH,
  [ERROR_CODES.CONNECT_REFUSED]: EXIT.CONNECT,
  [ERROR_CODES.CONNECT_TIMEOUT]: EXIT.CONNECT,
  [ERROR_CODES.CONNECT_DNS]: EXIT.CONNECT,
  [ERROR_CODES.CONNECT_FAILED]: EXIT.CONNECT,
  [ERROR_CODES.TLS_CERT]: EXIT.CONNECT,
  [ERROR_CODES.TLS_FAILED]: EXIT.CONNECT,
  [ERROR_CODES.DEST_OVERQUOTA]: EXIT.QUOTA,
  // The server refused the --search keys: a usage error, found before anything was copied.
  [ERROR_CODES.SEARCH_REFUSED]: EXIT.USAGE,
  [ERROR_CODES.ABORTED]: EXIT.INTERRUPTED,
  [ERROR_CODES.BUDGET_SPENT]: EXIT.WAITING,
  [ERROR_CODES.PROVIDER_LIMIT]: EXIT.WAITING,
  [ERROR_CODES.INTERNAL]: EXIT.INTERNAL,
};

/** The exit code of a run that failed with `code` (a mailbox-level error); config scope is USAGE. */
export function exitForError(code: ErrorCode | string | undefined, scope?: string): number {
  if (scope === 'config') return EXIT.USAGE;
  return (code && BY_CODE[code as ErrorCode]) || EXIT.FAILED;
}

/** The exit code table every --help ends with. */
export const EXIT_HELP = `
Exit codes:
  0    everything is at the destination (verify: both sides match)
  1    the migration failed (see the report's error and the folders' errors)
  2    usage or configuration error; nothing was attempted
  3    finished, but some messages were skipped (each listed in the report)
  4    authentication failed (password, token or authzid refused; an OAuth sign-in expired, denied or revoked)
  5    cannot connect (refused, timeout, DNS) or TLS failed
  6    the destination is over quota
  75   not finished, not failed: a mailbox is parked (daily budget spent, or the provider's own limit);
       a run after the resume time it names goes on
  70   internal error (a bug in mailmover: please report it)
  130  interrupted (Ctrl-C or SIGTERM); a rerun resumes
`;
