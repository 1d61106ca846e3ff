#!/usr/bin/env -S MALLOC_ARENA_MAX=2 MALLOC_MMAP_THRESHOLD_=131072 node --max-semi-space-size=2 --heap-growing-percent=50 --expose-gc
/**
 * The mailmover command line. Exit codes by class (README "Exit codes", src/cli/exit-codes.ts):
 * 0 all there, 1 failed, 2 usage, 3 some items skipped, 4 auth, 5 connection/TLS, 6 quota,
 * 70 internal, 130 interrupted.
 */
import { Command, CommanderError, Option } from 'commander';
import { redactUrl } from '../core/endpoint.js';
import { ERROR_CODES, isMigrateError } from '../core/errors.js';
import { VERSION } from '../version.js';
import { terminalText } from './output.js';
import { intOption, numberOption } from './option-parsers.js';
import { scrub } from '../core/redact.js';
import { EXIT, EXIT_HELP, exitForError } from './exit-codes.js';
import { type VerifyFlags, type MigrateFlags, addLoginOptions, requireEndpoints, addOutputOptions, addSelectionOptions, addRunOptions, addCopyOptions, COPY_DEFAULTS, MIGRATE_EXAMPLES } from './options.js';
import type { WorkerFlags, BatchFlags } from './batch-commands.js';
import type { ConsoleFlags } from './console-command.js';
import type { LoginFlags } from './login-command.js';

// Each command's module (and what it pulls in: the engine, imapflow, the batch runner, the
// console's server) is loaded when that command runs, not for every start: a quiet rerun and
// --help do not pay for the modules they never use.
const migrateCommand = () => import('./migrate-command.js');
const batchCommands = () => import('./batch-commands.js');
const inspectCommands = () => import('./inspect-commands.js');
const consoleCommand = () => import('./console-command.js');
const loginCommand = () => import('./login-command.js');
const presetsCommand = () => import('./presets-command.js');

export { EXIT };

/** Builds the program (exported for tests and for embedding). */
export function buildProgram(setExit: (code: number) => void): Command {
  const program = new Command('mailmover')
    .description('Move mailboxes between IMAP servers: every folder, message, flag and date, exactly once.')
    .version(VERSION)
    .showHelpAfterError('(run with --help for usage)')
    .showSuggestionAfterError(true)
    .addHelpText('after', EXIT_HELP)
    .configureOutput({ outputError: (text, write) => write(`mailmover: ${ERROR_CODES.USAGE}: ${text.replace(/^error: /, '')}`) })
    .exitOverride();
  const migrateCmd = program.command('migrate').description('copy a whole mailbox; a rerun copies only what is missing');
  requireEndpoints(addOutputOptions(addCopyOptions(addRunOptions(addSelectionOptions(addLoginOptions(migrateCmd))))))
    .addHelpText('after', MIGRATE_EXAMPLES + EXIT_HELP)
    .action(async (flags: MigrateFlags) => {
      const dryRun = !!(flags.dryRun || flags.dry);
      setExit(flags.watch && !dryRun ? await (await migrateCommand()).runWatch(flags) : await (await migrateCommand()).runMigrate(flags, dryRun));
    });
  const planCmd = program.command('plan').description('show the folder mapping and the counts without changing anything');
  requireEndpoints(addOutputOptions(addRunOptions(addSelectionOptions(addLoginOptions(planCmd)))))
    .addHelpText('after', `\nExample:\n  mailmover plan --from imaps://alice@old.example.org --to imaps://alice@new.example.org --include '^Work'\n${EXIT_HELP}`)
    .action(async (flags: MigrateFlags) => setExit(await (await migrateCommand()).runMigrate({ ...COPY_DEFAULTS, ...flags }, true)));
  const batch = program.command('batch').description('many mailboxes: a CSV list and a server configuration');
  batch
    .command('run')
    .description('migrate every mailbox of the list, N at a time; a rerun skips the complete ones and resumes the rest')
    .argument('<list.csv>', 'one mailbox per row: source_user[,destination_user,source_password,destination_password]')
    .requiredOption('--config <file.yaml>', 'the servers, admin access, defaults and folder rules')
    .addOption(new Option('--parallel <n>', 'mailboxes at once').default(4).argParser(intOption('--parallel', 1, 256)))
    .option('--state <file|postgres-url>', 'the state ledger (default: the one migrate uses)')
    .option('--report-dir <dir>', 'where the per-mailbox reports and batch-report.json/.md go (default: LIST-reports next to the list)')
    .option('--name <name>', 'the batch name in the ledger (default: the list file name)')
    .option('--again', 'also run the mailboxes an earlier run completed (an incremental pass for each), and parked ones before their resume time')
    .option('--wait', 'a mailbox parked by a daily budget or a provider\'s limit waits for its resume time and goes on; the run ends when none is left waiting')
    .option('--from-oauth <file>', "every source mailbox logs in with OAuth 2.0 from this credentials file (mailmover login); replaces the configuration's source oauth ({user} is replaced)")
    .option('--to-oauth <file>', 'the same for the destination')
    .option('--queue <postgres-url>', 'scale out: put the mailboxes in this PostgreSQL queue (pg-boss) for `mailmover worker` processes, and wait for them')
    .addOption(new Option('--job-timeout <seconds>', 'with --queue: a mailbox not finished after this long is taken as lost (its worker died) and run again').default(14_400).argParser(intOption('--job-timeout', 1, 7 * 86_400)))
    .option('--json', 'print the batch report as JSON')
    .option('--log <file>', 'write the structured JSON log (pino) to FILE (default: a new file under $XDG_STATE_HOME/mailmover/logs, printed at start)')
    .option('--no-log', 'write no log file')
    .option('--notify-email <addr[,addr]>', 'when the batch ends, e-mail its summary and reports to these addresses (repeatable)', (v: string, prev: string[] = []) => [...prev, ...v.split(',').map((a) => a.trim()).filter(Boolean)])
    .option('--notify-smtp <url>', 'the SMTP relay: smtp://[USER@]HOST[:PORT] (STARTTLS required unless on loopback) or smtps://... (default smtp://localhost:25)')
    .option('--notify-smtp-password <ref>', 'the SMTP password as env:NAME or file:PATH')
    .option('--notify-from <addr>', 'the sender address of the notification')
    .option('--notify-webhook <url>', 'when the batch ends, POST the JSON batch report to URL (repeatable)', (v: string, prev: string[] = []) => [...prev, v])
    .addHelpText('after', EXIT_HELP)
    .action(async (list: string, flags: BatchFlags) => setExit(await (await batchCommands()).runBatchCommand(list, flags)));
  program
    .command('worker')
    .description('process mailboxes from a batch queue (batch run --queue) until Ctrl-C; run any number, on any machines')
    .requiredOption('--queue <postgres-url>', 'the PostgreSQL queue (pg-boss)')
    .addOption(new Option('--parallel <n>', 'mailboxes at once on this worker').default(2).argParser(intOption('--parallel', 1, 64)))
    .option('--state <file|postgres-url>', 'the state ledger (default: the queue\'s database, shared by every worker)')
    .option('--report-dir <dir>', 'where per-mailbox reports go (default ./mailmover-reports)')
    .option('--from-oauth <file>', "every source mailbox logs in with OAuth 2.0 from this credentials file (mailmover login); replaces the configuration's source oauth ({user} is replaced)")
    .option('--to-oauth <file>', 'the same for the destination')
    .addOption(new Option('--maintenance-interval <seconds>', 'how often jobs of dead workers are looked for').default(60).argParser(intOption('--maintenance-interval', 1, 3600)))
    .addOption(new Option('--heartbeat <seconds>', 'how often the worker records that it is alive, and what it runs, in the ledger').default(10).argParser(intOption('--heartbeat', 1, 600)))
    .option('--metrics <addr:port>', 'serve Prometheus metrics at http://ADDR:PORT/metrics (loopback unless --metrics-public)')
    .option('--metrics-public', 'allow --metrics on an address other than loopback (the metrics carry no secret)')
    .option('--log <file>', 'write the structured JSON log (pino) to FILE (default: a new file under $XDG_STATE_HOME/mailmover/logs, printed at start)')
    .option('--no-log', 'write no log file')
    .addHelpText('after', EXIT_HELP)
    .action(async (flags: WorkerFlags) => setExit(await (await batchCommands()).runWorkerCommand(flags)));
  batch
    .command('status')
    .description('show every mailbox of the list with its status (not started, queued, running, waiting, interrupted, complete, partial, failed) and verdict')
    .argument('<list.csv>', 'the list the batch was run with')
    .option('--state <file|postgres-url>', 'the state ledger (default: the one migrate uses)')
    .option('--queue <postgres-url>', 'a batch run with --queue: read the statuses from the queue\'s database')
    .option('--name <name>', 'the batch name (default: the list file name)')
    .option('--json', 'print JSON')
    .addHelpText('after', EXIT_HELP)
    .action(async (list: string, flags: { state?: string; queue?: string; name?: string; json?: boolean }) => setExit(await (await batchCommands()).runBatchStatus(list, flags)));
  // report takes the same login options as migrate (and ignores the ones it does not need), so one
  // argument set serves migrate, plan, verify and report.
  const reportCmd = program.command('report').description("print the state ledger's record of a mailbox: folders, copies, skipped items and why");
  requireEndpoints(addLoginOptions(reportCmd))
    .optionsGroup('Safety and state:')
    .option('--state <file|postgres-url>', 'the state ledger (default: the one migrate uses)')
    .optionsGroup('Output:')
    .option('--json', 'print JSON instead of text')
    .addHelpText('after', EXIT_HELP)
    .action(async (flags: { from: string; to: string; fromAuthzid?: string; toAuthzid?: string; state?: string; json?: boolean }) => setExit(await (await inspectCommands()).runReport(flags)));
  requireEndpoints(addOutputOptions(addSelectionOptions(addLoginOptions(program.command('verify').description('compare source and destination folder by folder; exit 0 only when they match')))))
    .optionsGroup('Verify:')
    .option('--deep', 'also compare the SHA-256 of every message (reads every body on both sides)')
    .option('--strict', 'also count folders only at the destination and differing subscriptions as differences')
    .option('--finished', 'the move is over and the destination in use: only source messages missing (or changed) there count; new mail and changed flags or dates at the destination do not')
    .option('--gmail-labels <mode>', "a Gmail source compared as migrate placed it (the same mode as migrate's: folders by default, first, keywords, off)")
    .option('--label-priority <labels>', "with --gmail-labels first: migrate's label priority")
    .addHelpText('after', `\nExample:\n  mailmover verify --from imaps://alice@old.example.org --to imaps://alice@new.example.org --deep\n${EXIT_HELP}`)
    .action(async (flags: VerifyFlags) => setExit(await (await inspectCommands()).runVerify(flags)));
  program
    .command('login')
    .description('sign in to Microsoft 365 or Google with the OAuth 2.0 device flow (a code to enter on any device); stores a refresh token for --from-oauth/--to-oauth')
    .addOption(new Option('--provider <name>', 'microsoft (Microsoft 365 / Exchange Online) or google (Gmail)').choices(['microsoft', 'google']).makeOptionMandatory())
    .requiredOption('--client-id <id>', 'the application (client) id registered with the provider, allowed the device flow and IMAP access')
    .option('--client-secret-file <file>', 'the client secret, from FILE, for providers that want one with the device flow (Google)')
    .option('--tenant <tenant>', 'Microsoft: the directory (tenant id or domain; default organizations)')
    .option('--out <file>', 'where to store the credentials (created mode 0600)', 'mailmover-oauth.json')
    .option('--device-endpoint <url>', 'the device authorization endpoint instead of the provider\'s (also $MAILMOVER_OAUTH_DEVICE_ENDPOINT)')
    .option('--token-endpoint <url>', 'the token endpoint instead of the provider\'s (also $MAILMOVER_OAUTH_TOKEN_ENDPOINT); stored in the file for refreshes')
    .addHelpText('after', `\nExample:\n  mailmover login --provider microsoft --client-id 00000000-0000-0000-0000-000000000000 --tenant example.org --out alice.oauth.json\n  mailmover migrate --from imaps://alice@old.example.org --to-preset m365 --to alice@example.org --to-oauth alice.oauth.json\n${EXIT_HELP}`)
    .action(async (flags: LoginFlags) => setExit(await (await loginCommand()).runLogin(flags)));
  program
    .command('presets')
    .description('show the provider presets (--from-preset/--to-preset, preset: in a batch config): servers, sign-in, limits, folders left out')
    .option('--json', 'print JSON (sizes in bytes)')
    .action(async (flags: { json?: boolean }) => {
      const { presetsJson, formatPresets } = await presetsCommand();
      process.stdout.write(flags.json ? presetsJson() : formatPresets());
    });
  program
    .command('console')
    .description('a read-only web console of the ledger: batches, mailboxes, errors, live progress')
    .option('--state <file|postgres-url>', 'the state ledger (default: the one migrate uses)')
    .option('--queue <postgres-url>', "a batch run with --queue: read the queue's database")
    .option('--listen <addr:port>', 'where to listen (port 0: any free port); other than loopback only with TLS or --insecure-http', '127.0.0.1:8025')
    .option('--tls-cert <file>', 'serve HTTPS with this certificate (PEM), with --tls-key')
    .option('--tls-key <file>', 'the private key (PEM) of --tls-cert')
    .option('--insecure-http', 'allow plain HTTP on an address other than loopback')
    .option('--token-file <file>', 'the access token, from FILE (default: a new random token, printed once)')
    .option('--operator <name>', "who takes the console's actions, as recorded in the ledger (default: the user running the console)")
    .addOption(new Option('--session-hours <hours>', 'how long a browser session lasts before the token is needed again').default(12).argParser(numberOption('--session-hours', 0.0001, 720)))
    .addHelpText('after', `\nExample:\n  mailmover console --state postgres://mm@db/mailmover\n${EXIT_HELP}`)
    .action(async (flags: ConsoleFlags) => setExit(await (await consoleCommand()).runConsoleCommand(flags)));
  return program;
}

/**
 * `mailmover ... | head`: once the reader has gone, writes fail with EPIPE. That is the reader's
 * choice, not an error: stop quietly (no stack trace) with the exit code reached so far.
 */
function quietOnEpipe(stream: NodeJS.WriteStream): void {
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(typeof process.exitCode === 'number' ? process.exitCode : EXIT.OK);
    throw err;
  });
}

async function main(argv: string[]): Promise<number> {
  quietOnEpipe(process.stdout);
  quietOnEpipe(process.stderr);
  let code: number = EXIT.OK;
  const program = buildProgram((c) => (code = c));
  try {
    await program.parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version end here with exit code 0; every other parse error is a usage error.
      return err.exitCode === 0 ? EXIT.OK : EXIT.USAGE;
    }
    if (isMigrateError(err)) {
      process.stderr.write(`mailmover: ${err.code}: ${redactUrl(err.message).split('\n').map(terminalText).join('\n')}\n`);
      return exitForError(err.code, err.scope);
    }
    process.stderr.write(`mailmover: ${ERROR_CODES.INTERNAL}: ${scrub((err as Error)?.stack ?? String(err))}\n`);
    return EXIT.INTERNAL;
  }
  return code;
}

main(process.argv).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`mailmover: ${ERROR_CODES.INTERNAL}: ${String(err)}\n`);
    process.exitCode = EXIT.INTERNAL;
  },
);
