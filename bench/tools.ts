/**
 * The tools the bench compares, each as a command line for one copy into a fresh destination
 * user `dstN` (the same command again is the rerun), and, for the tools that write an archive on
 * disk, how to read the destination back independently.
 *
 * - mailmover (IMAP -> IMAP), mailmover-scan (with --scan against a private clamd),
 *   mailmover-from-maildir (the source user's Maildir read off Dovecot's disk -> IMAP),
 *   mailmover-to-maildir (IMAP -> the destination user's Maildir on disk, served by Dovecot for
 *   the check), mailmover-to-mbox (IMAP -> an mbox tree, read back by Python's `mailbox`);
 * - mbsync (IMAP -> IMAP) and mbsync-to-maildir (IMAP far store -> a local Maildir near store,
 *   read back by Python's `mailbox`);
 * - dsync: Dovecot's documented IMAP migration, `doveadm backup -R -u dstN imapc:` with
 *   imapc_features=rfc822.size fetch-headers and mail_prefetch_count=20, in a config of its own
 *   that includes the bench Dovecot's; dsync-from-maildir: `doveadm backup -R -u dstN
 *   maildir:<src's Maildir>:LAYOUT=fs`, the same Maildir mailmover-from-maildir reads.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { readArchive } from './archive-read.js';
import type { Snapshot } from './verify.js';
import type { PlainDovecotServer } from '../test/helpers/dovecot.js';
import type { ClamdServer } from '../test/helpers/clamd.js';

export type ToolName =
  | 'mailmover'
  | 'mailmover-scan'
  | 'mailmover-from-maildir'
  | 'mailmover-to-maildir'
  | 'mailmover-to-mbox'
  | 'mbsync'
  | 'mbsync-to-maildir'
  | 'dsync'
  | 'dsync-from-maildir';
export const TOOL_NAMES: readonly ToolName[] = [
  'mailmover',
  'mailmover-scan',
  'mailmover-from-maildir',
  'mailmover-to-maildir',
  'mailmover-to-mbox',
  'mbsync',
  'mbsync-to-maildir',
  'dsync',
  'dsync-from-maildir',
];

/**
 * The mailmover command line, one constant. Placeholders: {host}, {port}, {src}, {dst}, {work}.
 * Each destination gets a state ledger of its own in the work directory, so the rerun is incremental.
 * Passwords travel in MAILMOVER_FROM_PASSWORD / MAILMOVER_TO_PASSWORD. Runs with the repository
 * root as working directory. The built CLI is run as an installed `mailmover` command is: as an
 * executable, so its shebang's Node options (a small V8 young generation) apply.
 */
export const MAILMOVER_COMMAND = ['dist/cli/main.js', 'migrate', '--from', 'imap://{src}@{host}:{port}', '--to', 'imap://{dst}@{host}:{port}', '--json', '--state', '{work}/state-{dst}.db'];
/** The file whose presence means "mailmover is built". */
export const MAILMOVER_ENTRY = 'dist/cli/main.js';
export const INSTALL_HINT = 'apt-get install -y dovecot-imapd isync time';

export interface Prepared {
  cmd: string;
  args: string[];
  env: NodeJS.ProcessEnv;
  cwd: string;
}

export interface Tool {
  name: ToolName;
  /** Why it cannot run, or undefined when it can. */
  unavailable?: string;
  prepare(dst: string): Promise<Prepared>;
  /** Runs after each copy and rerun, before the destination is read back (e.g. file ownership). */
  afterRun?(dst: string): Promise<void>;
  /** Reads the destination back when it is not an IMAP account of the bench Dovecot. */
  readBack?(dst: string): Promise<Snapshot>;
  /** Removes what the run wrote outside the destination user's home. */
  cleanup?(dst: string): Promise<void>;
}

export interface Ctx {
  root: string;
  work: string;
  dovecot: PlainDovecotServer;
  /** The private clamd for 'mailmover-scan', when that tool runs. */
  clamd?: ClamdServer;
  passwords: Record<string, string>;
}

/** Finds an executable by absolute candidates first, then on $PATH. */
export function findExecutable(name: string, candidates: string[] = []): string | undefined {
  for (const c of candidates) if (existsSync(c)) return c;
  for (const dir of (process.env.PATH ?? '').split(':')) {
    if (dir && existsSync(join(dir, name))) return join(dir, name);
  }
  return undefined;
}

export function makeTool(ctx: Ctx, name: ToolName): Tool {
  if (name === 'mbsync' || name === 'mbsync-to-maildir') return mbsyncTool(ctx, name);
  if (name === 'dsync' || name === 'dsync-from-maildir') return dsyncTool(ctx, name);
  return mailmoverTool(ctx, name);
}

/** Dovecot's Maildir of a user, as a mailmover endpoint (`LAYOUT=fs`, as the bench Dovecot keeps it). */
function maildirOf(ctx: Ctx, user: string): string {
  return join(ctx.dovecot.homeOf(user), 'Maildir');
}

/** Gives the destination user's files to the owner of the mail directory (Dovecot serves them as that user). */
function chownToMailOwner(ctx: Ctx, dst: string): void {
  const owner = spawnSync('stat', ['-c', '%u:%g', join(ctx.work, 'mail')], { encoding: 'utf8' }).stdout.trim();
  spawnSync('chown', ['-R', owner, ctx.dovecot.homeOf(dst)]);
}

/**
 * An mbox tree cannot hold messages in a folder that has children, so mailmover's plan puts such a
 * folder's messages in a child named like it (`Archive` -> `Archive/Archive`, rename reason
 * `mail-or-children`, printed in its plan). The check compares with the source's names, so those
 * messages are put back under the parent's name here (the corpus has no folder named like its
 * parent of its own).
 */
function undoMailOrChildren(snap: Snapshot): Snapshot {
  const folders = new Map(snap.folders);
  for (const [path, f] of snap.folders) {
    const cut = path.lastIndexOf('/');
    if (cut < 0) continue;
    const parent = path.slice(0, cut);
    if (parent.slice(parent.lastIndexOf('/') + 1) !== path.slice(cut + 1)) continue;
    const p = folders.get(parent);
    if (p && p.messages.length > 0) continue;
    folders.set(parent, { path: parent, noSelect: false, messages: f.messages });
    folders.delete(path);
  }
  return { ...snap, folders };
}

function mailmoverTool(ctx: Ctx, name: ToolName): Tool {
  const scan = name === 'mailmover-scan';
  const built = existsSync(join(ctx.root, MAILMOVER_ENTRY));
  const clamd = findExecutable('clamd', ['/usr/sbin/clamd']);
  const unavailable = !built ? 'not built' : scan && !clamd ? 'clamd is not installed (apt-get install -y clamav-daemon)' : undefined;
  const mboxDir = (dst: string) => join(ctx.work, `mbox-${dst}`);
  return {
    name,
    ...(unavailable ? { unavailable } : {}),
    ...(name === 'mailmover-to-maildir' ? { afterRun: async (dst: string) => chownToMailOwner(ctx, dst) } : {}),
    ...(name === 'mailmover-to-mbox'
      ? {
          readBack: async (dst: string) => undoMailOrChildren(await readArchive('mbox', mboxDir(dst))),
          cleanup: (dst: string) => rm(mboxDir(dst), { recursive: true, force: true }),
        }
      : {}),
    prepare: async (dst) => {
      const fill = (s: string) =>
        s
          .replace('{host}', ctx.dovecot.host)
          .replace('{port}', String(ctx.dovecot.port))
          .replace('{src}', 'src')
          .replace(/\{dst\}/g, dst)
          .replace('{work}', ctx.work);
      const [cmd, ...args] = MAILMOVER_COMMAND.map(fill);
      if (scan) args.push('--scan', ctx.clamd!.socketUrl());
      if (name === 'mailmover-from-maildir') args[args.indexOf('--from') + 1] = `maildir:${maildirOf(ctx, 'src')}?layout=fs`;
      if (name === 'mailmover-to-maildir') {
        await mkdir(ctx.dovecot.homeOf(dst), { recursive: true });
        args[args.indexOf('--to') + 1] = `maildir:${maildirOf(ctx, dst)}?layout=fs`;
      }
      if (name === 'mailmover-to-mbox') args[args.indexOf('--to') + 1] = `mbox:${mboxDir(dst)}`;
      // BENCH_NODE_ARGS (e.g. "--cpu-prof --cpu-prof-dir=/tmp/profs"): node options for profiling
      // the runs (Node refuses --cpu-prof in NODE_OPTIONS). The entry's shebang line (its
      // environment and node options) is kept, run through env(1) as the kernel would.
      const extra = process.env.BENCH_NODE_ARGS?.split(' ').filter(Boolean) ?? [];
      const launch = extra.length ? profiledLaunch(join(ctx.root, cmd!), extra) : [cmd!];
      return {
        cmd: launch[0]!,
        args: [...launch.slice(1), ...args],
        cwd: ctx.root,
        env: { ...process.env, MAILMOVER_FROM_PASSWORD: ctx.passwords.src, MAILMOVER_TO_PASSWORD: ctx.passwords[dst] },
      };
    },
  };
}

/** The command that runs `entry` as its shebang line does, with `extra` node options before the script. */
function profiledLaunch(entry: string, extra: string[]): string[] {
  const first = readFileSync(entry, 'utf8').split('\n', 1)[0]!;
  const words = first.replace(/^#!\s*\S*env\s+(-S\s+)?/, '').split(/\s+/).filter(Boolean);
  const node = words.findIndex((w) => w === 'node' || w.endsWith('/node'));
  if (node < 0) return [process.execPath, ...extra, entry];
  return ['/usr/bin/env', ...words.slice(0, node), process.execPath, ...words.slice(node + 1), ...extra, entry];
}

/** isync 1.4 config: quotes a string value. */
const q = (s: string) => `"${s.replace(/["\\]/g, (c) => '\\' + c)}"`;

function mbsyncTool(ctx: Ctx, name: 'mbsync' | 'mbsync-to-maildir'): Tool {
  const bin = findExecutable('mbsync', ['/usr/bin/mbsync']);
  const dirOf = (dst: string) => join(ctx.work, `mbsync-${dst}`);
  const nearOf = (dst: string) => join(dirOf(dst), 'near');
  const toMaildir = name === 'mbsync-to-maildir';
  return {
    name,
    ...(bin ? {} : { unavailable: `not installed (${INSTALL_HINT})` }),
    ...(toMaildir ? { readBack: (dst: string) => readArchive('maildir', nearOf(dst), { inbox: join(nearOf(dst), 'INBOX') }) } : {}),
    cleanup: (dst) => rm(dirOf(dst), { recursive: true, force: true }),
    prepare: async (dst) => {
      const dir = dirOf(dst);
      await mkdir(join(dir, 'state'), { recursive: true });
      // mbsync creates the folders of a Maildir store, but not the store's own directory
      if (toMaildir) await mkdir(nearOf(dst), { recursive: true });
      const account = (store: string, user: string) =>
        [
          `IMAPAccount ${store}`,
          `Host ${ctx.dovecot.host}`,
          `Port ${ctx.dovecot.port}`,
          `User ${user}`,
          `Pass ${q(ctx.passwords[user]!)}`,
          'SSLType None',
          'AuthMechs LOGIN',
          'Timeout 120',
          '',
          `IMAPStore ${store}`,
          `Account ${store}`,
          '',
        ].join('\n');
      // The near store: dstN over IMAP, or a Maildir tree with folders as nested directories
      // (SubFolders Verbatim: "A/B" is near/A/B) and INBOX at near/INBOX.
      const near = toMaildir
        ? ['MaildirStore near', `Path ${q(nearOf(dst) + '/')}`, `Inbox ${q(join(nearOf(dst), 'INBOX'))}`, 'SubFolders Verbatim', ''].join('\n')
        : account('near', dst);
      const rc = [
        '# generated by bench/tools.ts (isync 1.4 option names)',
        account('far', 'src'),
        near,
        'Channel bench',
        'Far :far:',
        'Near :near:',
        // '*' includes INBOX on an IMAP store (checked with mbsync -l against Dovecot)
        'Patterns *',
        'Create Near',
        'Sync Pull',
        'Expunge None',
        'Remove None',
        'CopyArrivalDate yes',
        `SyncState ${q(join(dir, 'state') + '/')}`,
        '',
      ].join('\n');
      const rcFile = join(dir, 'mbsyncrc');
      await writeFile(rcFile, rc, { mode: 0o600 });
      return { cmd: bin!, args: ['-c', rcFile, '-a'], cwd: dir, env: { ...process.env, HOME: dir } };
    },
  };
}

function dsyncTool(ctx: Ctx, name: 'dsync' | 'dsync-from-maildir'): Tool {
  const bin = findExecutable('doveadm', ['/usr/bin/doveadm']);
  const confOf = (dst: string) => join(ctx.work, `dsync-${dst}.conf`);
  return {
    name,
    ...(bin ? {} : { unavailable: `doveadm not installed (${INSTALL_HINT})` }),
    cleanup: (dst) => rm(confOf(dst), { force: true }),
    prepare: async (dst) => {
      // Its own config: the bench Dovecot's (users, mail_location, mail_uid, base_dir for the auth
      // socket) plus the imapc settings of Dovecot's migration how-to. The password stays in this
      // file (mode 0600), not on the command line.
      const conf = [
        '# generated by bench/tools.ts: doveadm for the migration, reading the bench Dovecot as its source',
        `!include ${join(ctx.dovecot.dir, 'dovecot.conf')}`,
        ...(name === 'dsync'
          ? [
              `imapc_host = ${ctx.dovecot.host}`,
              `imapc_port = ${ctx.dovecot.port}`,
              'imapc_user = src',
              `imapc_password = ${ctx.passwords.src}`,
              'imapc_ssl = no',
              'imapc_features = rfc822.size fetch-headers',
              'mail_prefetch_count = 20',
            ]
          : [
              // Dovecot's default (yes) hard-links a Maildir file into a Maildir on the same file
              // system instead of copying it; the bench's source and destination share one disk, a
              // real migration's rarely do, and every other tool writes the bytes.
              'maildir_copy_with_hardlinks = no',
            ]),
        '',
      ].join('\n');
      await writeFile(confOf(dst), conf, { mode: 0o600 });
      const location = name === 'dsync' ? 'imapc:' : `maildir:${maildirOf(ctx, 'src')}:LAYOUT=fs`;
      return { cmd: bin!, args: ['-c', confOf(dst), 'backup', '-R', '-u', dst, location], cwd: ctx.work, env: { ...process.env } };
    },
  };
}
