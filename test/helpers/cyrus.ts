/**
 * Throwaway Cyrus IMAP 3.6 servers for interoperability tests.
 *
 * Cyrus is not installed: its Debian package conflicts with dovecot-imapd, which the other tests need.
 * `scripts/fetch-cyrus.sh` unpacks the Debian 12 packages with `dpkg -x` into a folder (default
 * `.cache/cyrus/root` in the repository) and this helper runs the binaries from there, with
 * LD_LIBRARY_PATH and SASL_PATH pointing into that folder. Tests check {@link cyrusAvailable} first and
 * skip (locally) or fetch (CI) when the folder is missing.
 *
 * Each {@link startCyrus} call creates a private temp directory with its own imapd.conf, cyrus.conf,
 * SASL user database, mail spool, configuration databases and runtime sockets, starts the Cyrus `master`
 * in the foreground as a child of this process on a free loopback port, and waits until imapd greets.
 * Nothing outside that directory is written, so instances run side by side and next to Dovecot.
 *
 * The configuration is Debian's (`altnamespace: no`, `unixhierarchysep: no`): every folder lives below
 * `INBOX.`, the separator is `.`. Plain IMAP only (no TLS configured, so no STARTTLS is offered); LOGIN
 * and AUTHENTICATE PLAIN/LOGIN work. The first login of a user creates INBOX and the special-use
 * folders Drafts, Sent, Trash and Junk (not subscribed), see {@link CYRUS_AUTO_FOLDERS}.
 *
 * Works as root (Cyrus runs as `nobody`, which owns the data) and as an unprivileged user (everything
 * runs as that user).
 *
 * See /work/shared/notes/components.md §3a for the measured behaviour this is built on.
 */
import { type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync } from 'node:fs';
import { chmod, chown, mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AutoFolder } from './fixture.js';
import { canBind, finishStop, freePort, imapUrl, type InboxNamespaceServer, killInstance, lookupPasswd, multiarchDirs, nobodyIds, notReadyReason, once, probe, retryPorts, run, signalInstance, spawnDetached, type Spawned, tail, untrackInstance, userDatabase, waitReady, watchInstance, withInstanceDir } from './server-process.js';

/** Where `scripts/fetch-cyrus.sh` unpacks the packages when called without arguments. */
export const DEFAULT_CYRUS_ROOT = fileURLToPath(new URL('../../.cache/cyrus/root', import.meta.url));

/** The message a test prints when it skips because the binaries are missing. */
export const CYRUS_MISSING = 'Cyrus IMAP is not unpacked in .cache/cyrus: run scripts/fetch-cyrus.sh';

/**
 * The folders Cyrus creates at a user's first login (`autocreate_inbox_folders` in the generated
 * imapd.conf), with `\Drafts`, `\Sent`, `\Trash`, `\Junk`. Unlike our Dovecot's, they are NOT subscribed.
 * Pass them as `autoFolders` to `expectedFromFixture` for an account read back from Cyrus.
 */
export const CYRUS_AUTO_FOLDERS: readonly AutoFolder[] = Object.freeze([
  { path: ['Drafts'], subscribed: false },
  { path: ['Sent'], subscribed: false },
  { path: ['Trash'], subscribed: false },
  { path: ['Junk'], subscribed: false },
]);

/** Options of {@link startCyrus}. */
export interface CyrusOptions {
  /** The folder `dpkg -x` unpacked into (it holds `usr/lib/cyrus/bin/master`). Default {@link DEFAULT_CYRUS_ROOT}. */
  root?: string;
}

/** A running throwaway Cyrus instance. Plain IMAP only (no STARTTLS). */
export interface CyrusServer extends InboxNamespaceServer {
  /** The instance's private directory (config, databases, spool, log). Removed by {@link CyrusServer.stop}. */
  dir: string;
  /** PID of the Cyrus master process (our direct child, leader of its own process group). */
  pid: number;
  /**
   * The master's stdout/stderr (its children inherit them). Cyrus itself logs only to syslog, and there
   * is no syslog socket on a test machine, so this holds only what reaches stderr: start-up failures
   * such as a missing shared library or an unreadable config. Included in startCyrus' errors.
   */
  logFile: string;
  /**
   * Adds a user to the instance's own SASL database (saslpasswd2). The user can log in as soon as the
   * promise resolves; the first login creates the mailbox. Names are lower-cased (Cyrus lower-cases
   * logins, `username_tolower`); adding a name twice throws.
   */
  addUser(user: string, password: string): Promise<void>;
  /**
   * SIGTERMs the instance (the master's own process group), SIGKILLs the group if the master has not
   * exited within 3 s, waits until the port is free, then removes {@link dir} unless the environment has
   * `KEEP_TEST_DIRS=1`. Takes 10-30 ms (measured, also with clients connected). Idempotent.
   */
  stop(): Promise<void>;
}

/** How long {@link startCyrus} waits for the greeting before giving up. */
const START_TIMEOUT_MS = 10_000;
/** How long stop() lets Cyrus shut down after SIGTERM before it SIGKILLs the group. */
const TERM_GRACE_MS = 3_000;
/** Attempts with a fresh port when another process grabbed the port between our probe and Cyrus' bind. */
const PORT_ATTEMPTS = 5;
/**
 * The SASL realm of every user: `servername` in imapd.conf and `saslpasswd2 -u`. Cyrus looks logins up
 * as user@servername; without an explicit name both sides would use the machine's host name, which
 * works until the host name changes between adding a user and logging in.
 */
const REALM = 'mailmover-cyrus';

// ---------------------------------------------------------------------------------------------
// Small utilities
// ---------------------------------------------------------------------------------------------

/** The unpacked binaries the helper runs. */
function binaries(root: string) {
  const bin = path.join(root, 'usr/lib/cyrus/bin');
  return {
    master: path.join(bin, 'master'),
    imapd: path.join(bin, 'imapd'),
    ctlCyrusdb: path.join(bin, 'ctl_cyrusdb'),
    saslpasswd2: path.join(root, 'usr/sbin/saslpasswd2'),
  };
}

/**
 * True if `scripts/fetch-cyrus.sh` has unpacked Cyrus into `root` (default {@link DEFAULT_CYRUS_ROOT}).
 * Only checks that the binaries exist; fetch-cyrus.sh already verified with ldd that their libraries
 * resolve, and a library removed since then shows up in startCyrus' error (the master's stderr).
 */
export function cyrusAvailable(root: string = DEFAULT_CYRUS_ROOT): boolean {
  return Object.values(binaries(root)).every((f) => existsSync(f));
}

/**
 * Environment for every Cyrus binary we run.
 * - LD_LIBRARY_PATH: the unpacked libraries (libpcre3, libical3, ... and, on a machine without them,
 *   libsasl2 and friends) before the system's. Our libraries are the same Debian release as the system's,
 *   so mixing is safe.
 * - SASL_PATH: libsasl2 loads its plugins (sasldb user database, PLAIN/LOGIN mechanisms) from a
 *   compiled-in /usr/lib/<triplet>/sasl2; when fetch-cyrus.sh had to unpack them, they are in our tree.
 *   Both folders are listed: libsasl2 skips a missing one, and fetch-cyrus.sh unpacks only plugin
 *   packages that are not installed, so no plugin is loaded twice. libsasl2 honours SASL_PATH because no
 *   binary here is set-uid (the master drops privileges itself, its children inherit the environment).
 */
function cyrusEnv(root: string): NodeJS.ProcessEnv {
  const libDirs = [...multiarchDirs(path.join(root, 'usr/lib')), ...multiarchDirs(path.join(root, 'lib'))];
  const saslDirs = [
    ...multiarchDirs(path.join(root, 'usr/lib')).map((d) => path.join(d, 'sasl2')),
    ...multiarchDirs('/usr/lib').map((d) => path.join(d, 'sasl2')),
  ].filter((d) => existsSync(d));
  const inherited = process.env.LD_LIBRARY_PATH ? [process.env.LD_LIBRARY_PATH] : [];
  return { ...process.env, LD_LIBRARY_PATH: [...libDirs, ...inherited].join(':'), SASL_PATH: saslDirs.join(':') };
}

// ---------------------------------------------------------------------------------------------
// Config
// ---------------------------------------------------------------------------------------------

interface Identity {
  /** True when we run as root: the master is then started as `cyrusUser` (uid/gid below). */
  root: boolean;
  /** `cyrus_user`: nobody as root (never root: Cyrus refuses), else ourselves. */
  cyrusUser: string;
  uid: number;
  gid: number;
}

function identity(): Identity {
  const uid = process.getuid?.() ?? -1;
  if (uid === 0) return { root: true, cyrusUser: 'nobody', ...nobodyIds() };
  // Unprivileged: the master cannot switch users, so cyrus_user must be us (it checks the name).
  const name = lookupPasswd((f) => Number(f[2]) === uid)?.[0] ?? os.userInfo().username;
  return { root: false, cyrusUser: name, uid, gid: process.getgid?.() ?? -1 };
}

/**
 * The instance's imapd.conf (Cyrus does not expand variables: every path is written out). Choices:
 * - every path that defaults to /var/lib/cyrus, /run/cyrus or /var/spool is in `dir`, so nothing of the
 *   system (or of another instance) is touched;
 * - Debian's namespace (`altnamespace: no`, `unixhierarchysep: no`): prefix `INBOX.`, separator `.`;
 * - users in a private sasldb (auxprop), plaintext LOGIN allowed on this TLS-less loopback server;
 * - autocreate: the first login creates INBOX (`autocreate_quota: 0` = unlimited) and the special-use
 *   folders, as a freshly provisioned Cyrus account has them;
 * - nothing here alters stored bytes.
 */
function renderImapdConf(dir: string, id: Identity): string {
  return `# throwaway test instance written by test/helpers/cyrus.ts
configdirectory: ${dir}/var
proc_path: ${dir}/run/proc
mboxname_lockpath: ${dir}/run/lock
lmtpsocket: ${dir}/run/socket/lmtp
idlesocket: ${dir}/run/socket/idle
notifysocket: ${dir}/run/socket/notify
defaultpartition: default
partition-default: ${dir}/spool
sievedir: ${dir}/var/sieve
servername: ${REALM}
cyrus_user: ${id.cyrusUser}
allowplaintext: yes
sasl_pwcheck_method: auxprop
sasl_auxprop_plugin: sasldb
sasl_sasldb_path: ${dir}/sasldb2
sasl_mech_list: PLAIN LOGIN
altnamespace: no
unixhierarchysep: no
autocreate_quota: 0
autocreate_post: 1
specialusealways: 1
autocreate_inbox_folders: Drafts | Sent | Trash | Junk
xlist-drafts: Drafts
xlist-sent: Sent
xlist-trash: Trash
xlist-junk: Junk
# Stock Cyrus replaces every 8-bit byte in the header of an APPENDed message by 'X' (munge8bit is on by
# default, and not only for lmtpd as imapd.conf(5) says). A migration test needs the server to keep
# the exact bytes it is given, like Dovecot does; raw UTF-8 headers (RFC 6532) are then stored as sent.
munge8bit: no
`;
}

/**
 * The instance's cyrus.conf: the mandatory `recover` start-up job and one plain IMAP service on the
 * loopback port. `prefork=0`: imapd is forked when a connection comes (start-up stays ~50 ms);
 * `maxchild=100`: migration engines open many connections per user (Debian's value). `imapd -T 2`: an
 * imapd whose connection has ended waits 2 s (not the default 60) for the next one before it exits.
 * It waits in accept() on the listening socket and does not notice a dead master, so after a hard kill
 * of the test process (see {@link spawnMaster}) the port stays taken only that long.
 */
function renderCyrusConf(dir: string, root: string, port: number): string {
  const b = binaries(root);
  const conf = `${dir}/imapd.conf`;
  return `# throwaway test instance written by test/helpers/cyrus.ts
START {
  recover cmd="${b.ctlCyrusdb} -C ${conf} -r"
}
SERVICES {
  imap cmd="${b.imapd} -C ${conf} -T 2" listen="127.0.0.1:${port}" prefork=0 maxchild=100
}
EVENTS {
}
DAEMON {
}
`;
}

// ---------------------------------------------------------------------------------------------
// Start / stop
// ---------------------------------------------------------------------------------------------

/**
 * Spawns `master -D` (foreground, keeps stdout/stderr) as our direct child, detached and with a
 * parent-death signal ({@link spawnDetached}). As root it is started as the Cyrus user right away
 * (spawn's uid/gid; libuv also drops the supplementary groups): Cyrus would switch to that user by
 * itself, and starting there keeps the parent-death signal, which the kernel clears when a process
 * changes its user. Its imapd children exit 2 s after their connection ends (see renderCyrusConf).
 */
function spawnMaster(root: string, dir: string, id: Identity, logFd: number): ChildProcess {
  const { master } = binaries(root);
  const args = ['-C', `${dir}/imapd.conf`, '-M', `${dir}/cyrus.conf`, '-p', `${dir}/run/master.pid`, '-D'];
  return spawnDetached(master, args, logFd, { env: cyrusEnv(root), ...(id.root ? { uid: id.uid, gid: id.gid } : {}) });
}

/**
 * Starts a throwaway Cyrus IMAP server (plain IMAP on a free loopback port) and resolves once imapd
 * answers `* OK`. Users are added with {@link CyrusServer.addUser}. Always call `stop()` (e.g. in
 * `after()`); a process-exit hook kills leftovers anyway.
 *
 * Throws if the binaries are missing (run scripts/fetch-cyrus.sh), and with the master's output if it
 * exits or does not greet within 10 s.
 */
export async function startCyrus(opts: CyrusOptions = {}): Promise<CyrusServer> {
  const root = path.resolve(opts.root ?? DEFAULT_CYRUS_ROOT);
  if (!cyrusAvailable(root)) throw new Error(`${CYRUS_MISSING} (looked in ${root})`);
  const id = identity();
  const keep = process.env.KEEP_TEST_DIRS === '1';

  const dir = await mkdtemp(path.join(os.tmpdir(), 'mailmover-cyrus-'));
  return withInstanceDir(dir, keep, async () => {
    // mkdtemp creates 0700; as root Cyrus runs as nobody and must traverse it. (The parent, os.tmpdir(),
    // is normally 1777; a custom TMPDIR must be traversable too.)
    if (id.root) await chmod(dir, 0o755);
    // var/socket: each imapd binds its IDLE notification socket there (idle.PID), and only logs the
    // failure (to syslog) when the folder is missing. var/log: Cyrus writes a protocol trace of every
    // session of USER into var/log/USER/ if that folder exists (create it, owned by the Cyrus user, to
    // debug a test; KEEP_TEST_DIRS=1 keeps it).
    const owned = ['var', 'var/sieve', 'var/socket', 'var/log', 'spool', 'run', 'run/proc', 'run/lock', 'run/socket'];
    for (const d of owned) await mkdir(path.join(dir, d));
    if (id.root) for (const d of owned) await chown(path.join(dir, d), id.uid, id.gid);
    await writeFile(path.join(dir, 'imapd.conf'), renderImapdConf(dir, id));

    const logFile = path.join(dir, 'master.log');
    return retryPorts<CyrusServer>('cyrus', PORT_ATTEMPTS, async () => {
      const port = await freePort();
      await writeFile(path.join(dir, 'cyrus.conf'), renderCyrusConf(dir, root, port));

      const logFd = openSync(logFile, 'a');
      const child = spawnMaster(root, dir, id, logFd);
      closeSync(logFd); // the child holds its own copy
      const master = watchInstance(child, 'the Cyrus master', dir, keep);

      if (await waitReady(master, START_TIMEOUT_MS, () => probe(port))) return { server: makeServer({ root, dir, port, logFile, master, keep }) };

      // Not ready: make sure our master is gone, collect evidence, then decide whether to retry.
      await killInstance(master);
      const error = new Error(`cyrus master (${dir}/cyrus.conf) ${notReadyReason(master, START_TIMEOUT_MS)}:\n${await tail(logFile)}`);
      // Cyrus reports a failed bind only to syslog (which we do not have), so look for ourselves:
      // with our master gone, a port that still cannot be bound belongs to someone else. Retry then.
      return { error, retry: !(await canBind(port)) };
    });
  });
}

interface ServerParts {
  root: string;
  dir: string;
  port: number;
  logFile: string;
  master: Spawned;
  keep: boolean;
}

function makeServer(p: ServerParts): CyrusServer {
  const { saslpasswd2 } = binaries(p.root);
  const env = cyrusEnv(p.root);
  const sasldb = path.join(p.dir, 'sasldb2');
  const id = identity();

  return {
    host: '127.0.0.1',
    port: p.port,
    dir: p.dir,
    pid: p.master.pid,
    separator: '.',
    prefix: 'INBOX.',
    logFile: p.logFile,

    // With unixhierarchysep off, '.' is the hierarchy separator and cannot be in a user name; '@'
    // would select a realm (virtual domains are off). Keep names to a safe, lower-case set.
    // saslpasswd2 rewrites one Berkeley DB file: run the calls one after another, never side by side.
    addUser: userDatabase(
      'saslpasswd2 -p',
      async (name, password) => {
        // -p: password from stdin, no prompt; -c: create; -u: the realm imapd looks users up in.
        await run(saslpasswd2, ['-p', '-c', '-u', REALM, '-f', sasldb, name], env, password);
        // Run as root, saslpasswd2 leaves the file root-owned 0640; imapd (nobody) must read it.
        if (id.root) await chown(sasldb, id.uid, id.gid);
      },
      (user) => user.toLowerCase(),
    ),

    url: (user) => imapUrl(user, p.port),

    stop: once(async () => {
      const { pid } = p.master;
      if (!p.master.exited()) {
        // Keep the event loop alive until the exit event arrives (the child was unref'ed).
        p.master.child.ref();
        // SIGTERM first: the master stops its children and exits cleanly (measured: 10-25 ms). The
        // group gets it too, so an imapd busy with a client ends at once instead of after the master.
        signalInstance(pid, 'SIGTERM');
        const timer = setTimeout(() => signalInstance(pid, 'SIGKILL'), TERM_GRACE_MS);
        await p.master.exitPromise;
        clearTimeout(timer);
        // Children that ignored SIGTERM (or were forked in between) must not keep the port or write
        // into the dir we are about to remove.
        signalInstance(pid, 'SIGKILL', true);
      }
      untrackInstance(pid);
      await finishStop([p.port], p.dir, p.keep);
    }),
  };
}
