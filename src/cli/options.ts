/**
 * The command-line options, one builder per --help group, and what they turn into (filters, folder rules, scan options).
 */
import { Command, Option } from 'commander';
import { ERROR_CODES, MigrateError } from '../core/errors.js';
import type { ScanOptions } from '../job/options.js';
import type { FolderRuleOptions } from '../plan/folder-rules.js';
import { messageFilter, type MessageFilter } from '../plan/message-filter.js';
import { checkSearchKeys } from '../plan/search-keys.js';
import { defaultStatePath } from '../state/ledger.js';
import { homedir } from 'node:os';
import { dateOption, durationOption, intOption, numberOption, parseSize } from './option-parsers.js';
import { EXIT } from './exit-codes.js';
import { applyPresetOptions } from './preset-options.js';
import { PRESET_NAMES } from '../core/presets.js';

export interface ConnectionFlags {
  from: string;
  to: string;
  fromPasswordFile?: string;
  toPasswordFile?: string;
  fromPreset?: string;
  toPreset?: string;
  fromTlsInsecure?: boolean;
  toTlsInsecure?: boolean;
  allowPlaintext?: boolean;
  fromAuthzid?: string;
  toAuthzid?: string;
  fromTokenFile?: string;
  fromTokenCommand?: string;
  toTokenFile?: string;
  toTokenCommand?: string;
  fromOauth?: string;
  toOauth?: string;
  report?: string;
  json?: boolean;
  log?: string;
  timeout: number;
  progress: boolean;
}

export interface FolderFlags {
  include: string[];
  exclude: string[];
  map: string[];
  rename: string[];
  destPrefix?: string;
  automap: boolean;
  includeGmailViews?: boolean;
  includeOtherNamespaces?: boolean;
  presetExcludes?: boolean;
  separatorSubstitute: string;
  gmailLabels?: string;
  labelPriority?: string;
  maxAge?: number;
  minAge?: number;
  since?: Date;
  before?: Date;
  minSize?: number;
  search?: string;
}

export interface VerifyFlags extends ConnectionFlags, FolderFlags {
  deep?: boolean;
  strict?: boolean;
  finished?: boolean;
}

export interface MigrateFlags extends ConnectionFlags, FolderFlags {
  dryRun?: boolean;
  dry?: boolean;
  justFolders?: boolean;
  connections: number;
  mergeCollisions?: boolean;
  state?: string | false;
  syncDeletions?: boolean;
  deleteSource?: boolean;
  acceptSizeMismatch?: boolean;
  watch?: string | true;
  maxMessagesPerSecond?: number;
  maxBytesPerSecond?: number;
  maxBytesPerDay?: number;
  maxMessagesPerDay?: number;
  budgetWindow?: number;
  providerLimitPark?: number;
  retries: number;
  retryDelay: number;
  idleTimeout: number;
  badItemLimit?: number;
  maxMessageSize?: number;
  scan?: string;
  scanPolicy?: 'quarantine' | 'skip' | 'report';
  quarantineFolder: string;
  quarantineDir?: string;
  scanFailOpen?: boolean;
  scanUnscanned?: 'hold' | 'deliver';
  scanTimeout: number;
}

export const collect = (value: string, previous: string[]) => [...previous, value];

/*
 * Option builders, one per help group. Each command takes exactly the groups it uses, so that a
 * list cannot drift between commands (plan and verify pair folders as migrate does) and `plan
 * --help` lists no copy-only option. Commander's optionsGroup() puts the options added after it
 * under that heading in --help.
 */

/**
 * The endpoints and how to log in to them. `--from`/`--to` are checked in a preAction hook
 * (requireEndpoints), not with requiredOption: commander checks required options before unknown
 * ones, so `--form x` would be reported as a missing --from instead of a misspelt option.
 */
export function addLoginOptions(cmd: Command): Command {
  return cmd
    .optionsGroup('Endpoints and login:')
    .option('--from <url>', 'source mailbox (required): imap://USER@HOST[:PORT] (STARTTLS when offered) or imaps://USER@HOST[:PORT]')
    .option('--to <url>', 'destination mailbox (required), same form as --from')
    .addOption(new Option('--from-preset <name>', "the source is this provider (`mailmover presets` lists them): its server, TLS, connections and non-mail folders; --from may then be just the user (alice@example.com)").choices(PRESET_NAMES))
    .addOption(new Option('--to-preset <name>', "the destination is this provider: its server, TLS, connections and item size limit; --to may then be just the user").choices(PRESET_NAMES))
    .option('--from-password-file <file>', 'read the source password from FILE (else $MAILMOVER_FROM_PASSWORD, else a prompt)')
    .option('--to-password-file <file>', 'read the destination password from FILE (else $MAILMOVER_TO_PASSWORD, else a prompt)')
    .option('--from-token-file <file>', 'log in to the source with the OAuth 2.0 access token in FILE (XOAUTH2/OAUTHBEARER); read again when refused')
    .option('--from-token-command <command>', 'run COMMAND (sh -c) for the source access token; run again when the token is refused')
    .option('--from-oauth <file>', 'log in to the source with OAuth 2.0, renewing access tokens from the credentials FILE that mailmover login wrote')
    .option('--to-oauth <file>', 'the same for the destination')
    .option('--to-token-file <file>', 'the same for the destination')
    .option('--to-token-command <command>', 'the same for the destination')
    .option('--from-authzid <user>', "log in with the --from URL's user (an admin or proxy account) and act as USER (SASL PLAIN authorization identity)")
    .option('--to-authzid <user>', 'the same for the destination')
    .option('--from-tls-insecure', 'do not verify the source server certificate')
    .option('--to-tls-insecure', 'do not verify the destination server certificate')
    .option('--allow-plaintext', 'allow passwords to travel unencrypted to hosts that are not loopback')
    .addOption(new Option('--timeout <seconds>', 'seconds to wait for a server to accept and greet').default(20).argParser(intOption('--timeout', 1, 3600)));
}

/** A usage error (exit 2) for a missing --from or --to, after unknown options were reported. */
export function requireEndpoints(cmd: Command): Command {
  return cmd.hook('preAction', (self) => {
    const o = self.opts<{ from?: string; to?: string }>();
    for (const side of ['from', 'to'] as const) {
      if (!o[side]) self.error(`required option '--${side} <url>' not specified`, { code: 'commander.missingMandatoryOptionValue', exitCode: EXIT.USAGE });
    }
    applyPresetOptions(self);
  });
}

/** Where the outcome goes. */
export function addOutputOptions(cmd: Command, progress = true): Command {
  cmd
    .optionsGroup('Output:')
    .option('--report <file>', 'write the JSON report to FILE')
    .option('--json', 'print the JSON report on stdout instead of the summary')
    .option('--log <file>', 'write structured JSON logs (pino) to FILE');
  return progress ? cmd.option('--no-progress', 'no live progress line (and no "connecting" lines) on a terminal') : cmd;
}

/** Which folders and messages, and where they go (migrate, plan and verify pair folders alike). */
export function addSelectionOptions(cmd: Command): Command {
  return cmd
    .optionsGroup('What to copy:')
    .option('--include <regex>', 'copy only folders whose path (levels joined by /) matches; repeatable', collect, [])
    .option('--exclude <regex>', 'leave out folders whose path matches; repeatable', collect, [])
    .option('--map <source=destination>', 'put a folder (and its subfolders) at another path, e.g. "Old Mail=Archive/Old"; repeatable', collect, [])
    .option('--rename <s|regex|replacement|flags>', 'rewrite destination paths with a regular expression; repeatable, applied in order', collect, [])
    .option('--dest-prefix <path>', 'place every folder (INBOX too) under this destination folder')
    .option('--no-automap', "do not map Sent/Drafts/Trash/Junk/Archive onto the destination's own special folders")
    .option('--include-gmail-views', "also copy Gmail's All Mail, Important and Starred views (they repeat messages kept in other folders)")
    .option('--no-preset-excludes', 'copy the folders a --from-preset leaves out by default (Exchange\'s Calendar, Contacts, Sync Issues, ...)')
    .option('--include-other-namespaces', "also copy other users' and shared folders the source shows, below their namespace's name")
    .option('--separator-substitute <char>', 'replaces a destination separator (or control character) inside a folder name', '_')
    .addOption(new Option('--max-age <days>', 'only messages received (INTERNALDATE) in the last DAYS days').argParser(numberOption('--max-age', 0, 1e6)))
    .addOption(new Option('--min-age <days>', 'only messages received more than DAYS days ago').argParser(numberOption('--min-age', 0, 1e6)))
    .addOption(new Option('--since <date>', 'only messages received on or after DATE (YYYY-MM-DD, UTC)').argParser(dateOption('--since')))
    .addOption(new Option('--before <date>', 'only messages received before DATE (YYYY-MM-DD, UTC)').argParser(dateOption('--before')))
    .addOption(new Option('--min-size <size>', 'only messages of at least SIZE, e.g. 100K').argParser(parseSize('--min-size')))
    .option('--search <keys>', 'only messages that IMAP SEARCH KEYS (RFC 3501) selects at the source (verify: at each side), e.g. \'FROM alice SINCE 1-Jan-2024\'; IMAP servers only');
}

/** Options of migrate and plan that shape the run (plan uses them to count). */
export function addRunOptions(cmd: Command): Command {
  return cmd
    .optionsGroup('Speed and limits:')
    .addOption(new Option('--connections <n>', 'folders copied at once, each with its own connection pair').default(2).argParser(intOption('--connections', 1, 16)))
    .addOption(new Option('--idle-timeout <seconds>', 'seconds of silence on an open connection before it is rebuilt').default(300).argParser(intOption('--idle-timeout', 1, 86400)))
    .optionsGroup('Safety and state:')
    .option('--state <file|postgres-url>', `the state ledger (a SQLite file, or a PostgreSQL database shared by many machines) that makes reruns incremental and crash-safe (default ${defaultStatePath().replace(homedir(), '~')})`)
    .option('--no-state', 'keep no state: every run lists both sides in full')
    .option('--merge-collisions', 'copy even when two source folders map to one destination folder')
    .optionsGroup('What to copy:')
    .option('--gmail-labels <mode>', 'a Gmail source (X-GM-EXT-1) read once from All Mail and placed by label: folders (one copy per label, default), first (one copy, first label), keywords (one copy, labels as keywords), off (every folder as listed)')
    .option('--label-priority <labels>', 'with --gmail-labels first: label names in the order that picks the folder, e.g. "Work,Clients,Inbox"');
}

/** How messages are copied (migrate only). */
export function addCopyOptions(cmd: Command): Command {
  return cmd
    .optionsGroup('What to copy:')
    .option('--just-folders', 'create the folder tree (and subscriptions) only; copy no message')
    .optionsGroup('Speed and limits:')
    .addOption(new Option('--max-messages-per-second <n>', 'at most N messages a second from the source and to the destination').argParser(numberOption('--max-messages-per-second', 0.01, 1e6)))
    .addOption(new Option('--max-bytes-per-second <size>', 'at most SIZE (e.g. 10M) of messages a second per server').argParser(parseSize('--max-bytes-per-second')))
    .addOption(new Option('--max-bytes-per-day <size>', 'daily budget per account: at most SIZE (e.g. 500M) downloaded from the source account and uploaded to the destination account per window (kept in the state ledger); then the mailbox is parked (exit 75)').argParser(parseSize('--max-bytes-per-day')))
    .addOption(new Option('--max-messages-per-day <n>', 'daily budget per account: at most N messages downloaded and uploaded per window').argParser(intOption('--max-messages-per-day', 1, 1e12)))
    .addOption(new Option('--budget-window <duration>', 'the daily budgets\' rolling window, e.g. 24h (default), 2m, 1d').argParser(durationOption('--budget-window')))
    .addOption(new Option('--provider-limit-park <duration>', 'how long a mailbox is parked when the provider says its own limit is reached (Gmail\'s bandwidth limit), e.g. 24h (default), 6h').argParser(durationOption('--provider-limit-park')))
    .addOption(new Option('--retries <n>', 'tries per message for a temporary error (busy, locked, throttled) before it is deferred to the end of the folder, and again there').default(3).argParser(intOption('--retries', 1, 20)))
    .addOption(new Option('--retry-delay <seconds>', "first wait before trying again; it doubles each time (a server's suggested backoff is honoured)").default(1).argParser(numberOption('--retry-delay', 0, 600)))
    .addOption(new Option('--max-message-size <size>', 'skip (and report) messages larger than SIZE, e.g. 25M').argParser(parseSize('--max-message-size')))
    .optionsGroup('Safety and state:')
    .option('--dry-run', 'plan and count only; change nothing (same as the plan command)')
    .addOption(new Option('--dry', 'the same as --dry-run (imapsync\'s name)').hideHelp())
    .option('--sync-deletions', 'remove at the destination what was deleted at the source since the last pass (off by default)')
    .option('--delete-source', 'move: remove each source message once its exact copy (size and SHA-256) is proven at the destination')
    .option('--accept-size-mismatch', 'copy a message whose fetched size differs from the size the source listed (servers with inexact RFC822.SIZE)')
    .addOption(new Option('--bad-item-limit <n>', 'fail the mailbox (exit 1) when more than N messages are skipped (default: no limit)').argParser(intOption('--bad-item-limit', 0, 1_000_000_000)))
    .option('--watch [seconds]', 'cutover: keep syncing new mail every SECONDS (default 60) until Ctrl-C')
    .optionsGroup('Scanning:')
    .option('--scan <url>', 'scan every message in transit with ClamAV: clamd://HOST:PORT or clamd:///path/to/clamd.sock')
    .addOption(new Option('--scan-policy <policy>', 'what happens to a flagged message: quarantine (to the quarantine folder), skip (not delivered), report (delivered and reported)').choices(['quarantine', 'skip', 'report']))
    .option('--quarantine-folder <name>', 'destination folder for quarantined messages (levels joined by /)', 'Quarantine')
    .option('--quarantine-dir <dir>', 'with --scan-policy skip: save withheld messages as .eml files here')
    .option('--scan-fail-open', 'when the scanner is unavailable, deliver unscanned (reported) instead of stopping')
    .addOption(new Option('--scan-unscanned <action>', 'a message the scanner answers for without a verdict (over its size limits, an error, a timeout): hold (default: not delivered, run partial, a rerun tries it again) or deliver (delivered and reported)').choices(['hold', 'deliver']))
    .addOption(new Option('--scan-timeout <seconds>', 'seconds one scan may stay silent; then the message is unscanned if clamd still answers PING, else the scanner counts as unavailable').default(30).argParser(intOption('--scan-timeout', 1, 3600)));
}

/** The defaults of the copy-only options, for plan (which does not take them). */
export const COPY_DEFAULTS = { retries: 3, retryDelay: 1, quarantineFolder: 'Quarantine', scanTimeout: 30 } as const;

export const MIGRATE_EXAMPLES = `
Examples:
  # copy everything; a rerun copies only what is missing
  MAILMOVER_FROM_PASSWORD=... MAILMOVER_TO_PASSWORD=... \\
    mailmover migrate --from imaps://alice@old.example.org --to imaps://alice@new.example.org

  # see the folder mapping and the counts first, change nothing
  mailmover migrate --dry-run --from imaps://alice@old.example.org --to imaps://alice@new.example.org

  # only the last 90 days of mail, leaving out Spam, with a JSON report
  mailmover migrate --from ... --to ... --max-age 90 --exclude '^Spam$' --report alice.json

  # cutover: keep syncing new mail every 2 minutes until Ctrl-C
  mailmover migrate --from ... --to ... --watch 120
`;

/** The message filter of the flags (--since, --before, --max-age, --min-age, --min-size, --just-folders, --search), when there is one. */
export function filterOption(flags: FolderFlags & { justFolders?: boolean }): { messageFilter: MessageFilter } | Record<string, never> {
  // --search keys are checked before anything connects, and sent with single spaces between them.
  const search = flags.search !== undefined ? { search: checkSearchKeys(flags.search) } : {};
  const f = messageFilter({ ...(flags.since ? { since: flags.since } : {}), ...(flags.before ? { before: flags.before } : {}), ...(flags.maxAge !== undefined ? { maxAgeDays: flags.maxAge } : {}), ...(flags.minAge !== undefined ? { minAgeDays: flags.minAge } : {}), ...(flags.minSize !== undefined ? { minSize: flags.minSize } : {}), justFolders: !!flags.justFolders, ...search });
  if (f?.since && f.before && f.since >= f.before) throw new MigrateError(ERROR_CODES.CONFIG_OPTION, `No message can be both received since ${f.since.toISOString()} and before ${f.before.toISOString()}: check --since/--max-age and --before/--min-age.`, { scope: 'config' });
  return f ? { messageFilter: f } : {};
}

/** The folder rule options from the flags. */
export function folderOptions(flags: FolderFlags): FolderRuleOptions {
  return {
    include: flags.include,
    exclude: flags.exclude,
    map: flags.map,
    rename: flags.rename,
    ...(flags.destPrefix ? { destPrefix: flags.destPrefix } : {}),
    automap: flags.automap,
    includeGmailViews: !!flags.includeGmailViews,
    includeOtherNamespaces: !!flags.includeOtherNamespaces,
  };
}

/** The scan options from the flags; scan flags without --scan are a usage error. */
export function scanOptions(flags: MigrateFlags): ScanOptions | undefined {
  if (!flags.scan) {
    const stray = [flags.scanPolicy && '--scan-policy', flags.quarantineDir && '--quarantine-dir', flags.scanFailOpen && '--scan-fail-open', flags.scanUnscanned && '--scan-unscanned'].filter(Boolean);
    if (stray.length > 0) throw new MigrateError(ERROR_CODES.CONFIG_OPTION, `${stray.join(', ')} need --scan.`, { scope: 'config' });
    return undefined;
  }
  return {
    scanner: flags.scan,
    policy: flags.scanPolicy ?? 'quarantine',
    quarantineFolder: flags.quarantineFolder,
    ...(flags.quarantineDir ? { quarantineDir: flags.quarantineDir } : {}),
    failOpen: !!flags.scanFailOpen,
    unscanned: flags.scanUnscanned ?? 'hold',
    timeoutSeconds: flags.scanTimeout,
  };
}
