/**
 * The options of a migration (what the library's callers and the CLI pass to `migrate`), apart
 * from the function itself, so that the stages can name them without importing the facade.
 */
import type { Logger } from 'pino';
import type { Endpoint } from '../core/endpoint.js';
import type { RetryPolicy, ServerGate, ServerLimits } from '../copy/retry-policy.js';
import type { DailyBudgets } from '../copy/daily-budget.js';
import type { FolderRuleOptions } from '../plan/folder-rules.js';
import type { MessageFilter } from '../plan/message-filter.js';
import type { ClamdAddress } from '../scan/clamd.js';
import type { ScanEngine, ScanPolicy, UnscannedAction } from '../scan/content-screen.js';
import type { MailboxRecord, StateStore } from '../state/store.js';
import type { EventListener } from './events.js';

/** One side of a migration. */
export interface EndpointOptions {
  /** `imap://USER@HOST[:PORT]` or `imaps://USER@HOST[:PORT]`, or an already parsed endpoint. */
  url: string | Endpoint;
  password: string;
  /**
   * Log in with the URL's user and password (an admin or proxy account) and act as this user:
   * SASL PLAIN with an authorization identity (Dovecot master users, Cyrus admins).
   */
  authzid?: string;
  /**
   * Log in with OAuth 2.0 access tokens (XOAUTH2/OAUTHBEARER, as Gmail and Microsoft 365 want):
   * a function giving a token, asked for a fresh one when the server refuses it (see
   * tokenFromFile, tokenFromCommand). The password is then not used.
   */
  accessToken?: (fresh: boolean) => Promise<string>;
  /** Do not verify the server's certificate (test servers only). */
  tlsInsecure?: boolean;
  /** Allow the password to travel unencrypted to a host that is not loopback. */
  allowPlaintext?: boolean;
}

/** Options of {@link migrate}. */
export interface MigrateOptions {
  from: EndpointOptions;
  to: EndpointOptions;
  /** Plan and count only; change nothing at the destination. */
  dryRun?: boolean;
  /** Folders copied at once, each with its own pair of connections (default 2). */
  connections?: number;
  /** Bytes of message bodies per batch (default 4 MiB; a larger message is sent alone). */
  batchBytes?: number;
  /**
   * Bytes of message bodies held in memory at once, over all connections (default 8 MiB).
   * Peak memory follows this, not the size of folders; a message larger than it travels alone.
   */
  memoryBudgetBytes?: number;
  /** Messages per batch (default 100). */
  batchMessages?: number;
  /** Copy even when two source folders map to one destination folder (they are merged). */
  mergeCollisions?: boolean;
  /** Which folders to copy and where to put them (include/exclude, map, rename, prefix, automap). */
  folders?: FolderRuleOptions;
  /** Replaces the destination's separator inside a folder name (default '_'). */
  separatorSubstitute?: string;
  /** Seconds to wait for a server to accept and greet (default 20). */
  connectTimeoutSeconds?: number;
  /** Seconds of silence on an open connection before it is taken as lost and rebuilt (default 300). */
  idleTimeoutSeconds?: number;
  /** How items that fail for a temporary reason are tried again (default: 3 tries a pass, 1 s doubling). */
  retry?: Partial<RetryPolicy>;
  /** The mailbox fails (status 'failed') as soon as more than this many items are skipped (default: no limit). */
  badItemLimit?: number;
  /** Messages larger than this many bytes are not copied; they are skipped and reported. */
  maxMessageSize?: number;
  /** Scan every message in transit before it is appended. */
  scan?: ScanOptions;
  /**
   * The state ledger: a SQLite file, or a PostgreSQL URL (shared by many machines). Reruns look
   * only at what changed, crashes are recovered exactly, skipped items are kept as an audit
   * trail. Without it (the library's default) every run plans each folder from both listings.
   * The CLI uses defaultStatePath() unless --no-state.
   */
  statePath?: string;
  /** An open ledger to use instead of opening `statePath` (batches share one); left open. */
  stateStore?: StateStore;
  /**
   * Pauses shared by everything that talks to the same servers: a throttling answer to one
   * mailbox of a batch slows every mailbox on that server (default: this migration's own).
   */
  serverGates?: { source: ServerGate; destination: ServerGate };
  /** Limits for both servers of this migration (ignored when serverGates is given). */
  limits?: ServerLimits;
  /**
   * Daily budgets per account, over a rolling window (README "Daily budgets"): bytes and messages
   * downloaded from the source account, uploaded to the destination account. Kept in the ledger
   * (needs one), so they hold across runs and processes. A spent budget parks the mailbox: the run
   * ends `waiting` (MM-BUDGET-SPENT) with the time it can go on.
   */
  budgets?: DailyBudgets;
  /**
   * How long a mailbox is parked when the provider answers that its own limit is reached
   * (MM-PROVIDER-LIMIT: Gmail's "command or bandwidth limits", an account temporarily locked), in
   * ms (default 24 h: Gmail lifts its lockout within a day).
   */
  providerLimitParkMs?: number;
  /** Remove at the destination what was deleted at the source since the last pass (uses the ledger; default off). */
  syncDeletions?: boolean;
  /** A move: remove each source message once its exact copy (size and SHA-256) is proven at the destination (default off). */
  deleteSource?: boolean;
  /**
   * Copy a fetched body whose size differs from the size the source listed (default off: such a
   * body is taken as cut short or not the listed message, and skipped with MM-FETCH-MISMATCH).
   * For servers known to report RFC822.SIZE inexactly; the identity check still applies.
   */
  acceptSizeMismatch?: boolean;
  /**
   * How a Gmail source (X-GM-EXT-1) is read: by its labels from All Mail, one copy per label
   * ('folders', the default), one copy in the first label ('first'), one copy with the labels as
   * keywords ('keywords'); or every folder as listed ('off'). See src/stores/gmail/label-modes.ts.
   */
  gmailLabels?: string;
  /** 'first': label names in the order that decides the folder, comma-separated (see label-modes.ts). */
  labelPriority?: string;
  /** Copy only the source messages this lets in (dates, sizes, IMAP search keys, or none: the folder tree only); see plan/message-filter.ts. */
  messageFilter?: MessageFilter;
  /**
   * The mailbox already held by the caller (holdMailbox): the run uses its ledger record and
   * leaves the lock with the caller (--watch holds it from the first pass to the last).
   */
  heldMailbox?: HeldMailbox;
  signal?: AbortSignal;
  onEvent?: EventListener;
  logger?: Logger;
}

/** Scanning in transit (see src/scan/content-screen.ts). */
export interface ScanOptions {
  /** `clamd://HOST:PORT` or `clamd:///path/to/clamd.sock`, or an engine of the caller's own. */
  scanner: string | ClamdAddress | ScanEngine;
  /** What happens to a flagged message (default 'quarantine'). */
  policy?: ScanPolicy;
  /** Quarantine folder at the destination, '/' between levels (default 'Quarantine'). */
  quarantineFolder?: string;
  /** Directory where withheld messages are saved as .eml (policy 'skip'). */
  quarantineDir?: string;
  /** Deliver unscanned when the scanner is unavailable (down), instead of stopping. */
  failOpen?: boolean;
  /**
   * A message the scanner, while up, could not judge (over its size limits, an error answer, a scan
   * that timed out): 'hold' (default) keeps it out of the destination as a skipped item
   * (MM-SCAN-UNSCANNED, the run is partial, a rerun tries it again); 'deliver' delivers it and reports it.
   */
  unscanned?: UnscannedAction;
  /** Seconds one scan may stay silent before it counts as failed (default 30). */
  timeoutSeconds?: number;
  /** Tries of one scan before the scanner counts as unavailable (default 6). */
  attempts?: number;
}

/** A mailbox held for a run (or for every pass of a --watch): its ledger record and lock. */
export interface HeldMailbox {
  /** The ledger's record of the mailbox (undefined without a ledger: then the lock files alone hold it). */
  state: MailboxRecord | undefined;
  /** The ledger it is in (daily budgets are spent there). */
  ledger?: StateStore | undefined;
  /** Gives the lock back and closes a ledger opened for it. */
  release(log?: Logger): Promise<void>;
}
