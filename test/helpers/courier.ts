/**
 * A throwaway Courier IMAP 5.0 server for interoperability tests. Optional: see {@link courierEnabled}.
 *
 * Courier is not installed: its Debian package conflicts with dovecot-imapd, which the other tests need.
 * `scripts/fetch-courier.sh` unpacks the Debian 12 packages with `dpkg -x` into a folder (default
 * `.cache/courier/root` in the repository) and this helper runs the binaries from there, with
 * LD_LIBRARY_PATH pointing into that folder.
 *
 * Unlike Cyrus, Courier cannot be kept inside its folder: courier-authlib, the Debian tools and libgamin
 * have paths compiled in (the authdaemonrc, the authdaemon socket, the auth modules, the helper programs
 * such as makedatprog, and the gam_server that libgamin starts - without it every login and every APPEND
 * waits 1.2 s). So while an instance runs, five symlinks in system paths point into its
 * private directory ({@link SYSTEM_LINKS}):
 *
 *   /etc/courier              -> DIR/etc                 (authdaemonrc, userdb)
 *   /run/courier              -> DIR/run                 (authdaemon/socket)
 *   /usr/lib/courier-authlib  -> DIR/sys/courier-authlib -> ROOT/usr/lib/courier-authlib
 *   /usr/lib/courier          -> DIR/sys/courier         -> ROOT/usr/lib/courier
 *   /usr/libexec/gam_server   -> DIR/sys/gam_server      (a copy of ROOT/usr/libexec/gam_server)
 *
 * None of these paths exists on a machine with Dovecot and without Courier. {@link startCourier} creates
 * the links (each with one atomic symlink(2), which never replaces anything) and refuses to start if any
 * of the paths exists and is not a leftover link of an earlier instance of this helper whose test
 * process is gone - a real /etc/courier is never touched. {@link CourierServer.stop} (and the process-exit
 * hook) remove exactly the links this instance created, after checking that each still points where it
 * was made to point. The links make Courier a machine-wide singleton: only one instance can run at a time
 * on a machine, in this process or any other ({@link startCourier} says so when one runs).
 * That is why the tests using this helper run only when asked to (`MAILMOVER_TEST_COURIER=1`).
 *
 * Each instance has a private temp directory with its own authdaemonrc, userdb, Maildirs and runtime
 * socket; `authdaemond` (users from the userdb) and `couriertcpd` (imaplogin + imapd) run as children of
 * this process, each the leader of its own process group, `couriertcpd` on a free loopback port.
 * Courier's layout: every folder lives below `INBOX.`, the separator is `.`; no SPECIAL-USE, no
 * auto-created folders. Plain IMAP only (no STARTTLS offered); LOGIN works.
 *
 * Needs root (the links, and Courier switches to the mail user `nobody` at login).
 * See /work/shared/notes/components.md §3b for the measured behaviour this is built on.
 */
import { type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, lstatSync, openSync, readdirSync, readFileSync, readlinkSync, rmdirSync, unlinkSync } from 'node:fs';
import { appendFile, chmod, chown, copyFile, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { atExit, canBind, findBinary, finishStop, freePort, imapUrl, type InboxNamespaceServer, multiarchDirs, nobodyIds, notReadyReason, once, probe, removeDirSync, retryPorts, run, signalInstance, sleep, spawnDetached, type Spawned, tail, userDatabase, waitReady, watchChild } from './server-process.js';

/** Where `scripts/fetch-courier.sh` unpacks the packages when called without arguments. */
export const DEFAULT_COURIER_ROOT = fileURLToPath(new URL('../../.cache/courier/root', import.meta.url));

/** The environment variable that turns the Courier tests on (value `1`). */
export const COURIER_SWITCH = 'MAILMOVER_TEST_COURIER';

/** The message a test prints when it skips because the switch is off. */
export const COURIER_DISABLED =
  `Courier IMAP tests are off: while they run they put symlinks into /etc, /run, /usr/lib and /usr/libexec ` +
  `(Courier has those paths compiled in). To run them, as root: ` +
  `${COURIER_SWITCH}=1 bash scripts/fetch-courier.sh && ${COURIER_SWITCH}=1 npm test`;

/** The message when the switch is on but the binaries are missing. */
export const COURIER_MISSING = 'Courier IMAP is not unpacked in .cache/courier: run scripts/fetch-courier.sh';

/** True when the environment asks for the Courier tests (`MAILMOVER_TEST_COURIER=1`). */
export function courierEnabled(): boolean {
  return process.env[COURIER_SWITCH] === '1';
}

/**
 * True if `scripts/fetch-courier.sh` has unpacked Courier into `root` (default
 * {@link DEFAULT_COURIER_ROOT}). Only checks that the binaries exist; fetch-courier.sh already verified
 * with ldd that their libraries resolve, and a library removed since then shows up in startCourier's error.
 */
export function courierAvailable(root: string = DEFAULT_COURIER_ROOT): boolean {
  return Object.values(binaries(root)).every((f) => existsSync(f));
}

/** Options of {@link startCourier}. */
export interface CourierOptions {
  /** The folder `dpkg -x` unpacked into (it holds `usr/bin/imapd`). Default {@link DEFAULT_COURIER_ROOT}. */
  root?: string;
}

/** A running throwaway Courier instance. Plain IMAP only (no STARTTLS). */
export interface CourierServer extends InboxNamespaceServer {
  /** The instance's private directory (config, userdb, Maildirs, logs). Removed by {@link CourierServer.stop}. */
  dir: string;
  /**
   * couriertcpd's and imapd's stderr: one line per connection, login and logout, and imapd's errors.
   * authdaemond writes to `authdaemond.log` beside it. The tail of both is in startCourier's errors.
   */
  logFile: string;
  /**
   * Adds a user to the instance's userdb (home and Maildir in {@link dir}, files owned by the mail user).
   * The user can log in as soon as the promise resolves. Adding a name twice throws.
   */
  addUser(user: string, password: string): Promise<void>;
  /**
   * Stops the instance: SIGTERM to both process groups (SIGKILL after 3 s), SIGKILL to anything left in
   * them and to the gam_server this instance started (found by its executable, the instance's own copy),
   * then removes the five links and, unless the environment has `KEEP_TEST_DIRS=1`, {@link dir}.
   * Idempotent.
   */
  stop(): Promise<void>;
}

/** One system path Courier needs, and where its link points inside an instance directory. */
interface SystemLink {
  /** The system path (compiled into courier-authlib, libgamin or the Debian packaging). */
  path: string;
  /** Where it points, relative to the instance directory. */
  target: string;
}

/** The five system paths, see the file comment. */
export const SYSTEM_LINKS: readonly SystemLink[] = Object.freeze([
  { path: '/etc/courier', target: 'etc' },
  { path: '/run/courier', target: 'run' },
  { path: '/usr/lib/courier-authlib', target: 'sys/courier-authlib' },
  { path: '/usr/lib/courier', target: 'sys/courier' },
  { path: '/usr/libexec/gam_server', target: 'sys/gam_server' },
]);

/** Instance directories are `mailmover-courier-XXXXXX` (mkdtemp) in the temp folder. */
const DIR_PREFIX = 'mailmover-courier-';

/** How long {@link startCourier} waits for authdaemond's socket and for the greeting. */
const START_TIMEOUT_MS = 10_000;
/** How long stop() lets the daemons shut down after SIGTERM before it SIGKILLs the groups. */
const TERM_GRACE_MS = 3_000;
/** Attempts with a fresh port when another process grabbed the port between our probe and the bind. */
const PORT_ATTEMPTS = 5;
/** `couriertcpd -maxprocs/-maxperip`: migration engines open many connections per user (Debian: 40/20). */
const MAX_CONNECTIONS = 100;

// ---------------------------------------------------------------------------------------------
// State and the process-exit safety net
// ---------------------------------------------------------------------------------------------

/** What must be undone for the running instance (at most one per process, see the file comment). */
interface Cleanup {
  dir: string;
  keep: boolean;
  /**
   * Process-group leaders we spawned detached (setsid): authdaemond with the worker processes it forks,
   * couriertcpd with one imaplogin/imapd per connection (imapd keeps the group after it switched to the
   * mail user). Nothing else is in these groups. Their groups are signalled, never the bare PIDs
   * ({@link signalGroup}).
   */
  groups: Set<number>;
  /** Links this instance created: system path -> the exact target it was given. */
  links: Map<string, string>;
  /** Parent folders of links that did not exist and were created for them (removed when empty). */
  createdDirs: string[];
  /** Unregisters the instance from the process-exit safety net ({@link guardAtExit}). */
  unguard: () => void;
}

/** The instance this process runs, or undefined. */
let current: Cleanup | undefined;

/**
 * Registers the instance with the process-exit safety net ({@link atExit}). If the test process ends
 * without stop(), the daemons would outlive us and, worse, the links would stay in the system paths.
 * 'exit' handlers must be synchronous, so: SIGKILL our own process groups and our gam_server (never
 * anything found by name), remove our links, best-effort remove the dir. A hard kill of the test process
 * skips 'exit': the daemons die with it (parent-death signal, see {@link spawnDetached}), and the next
 * startCourier recognises the links left behind as stale and removes them.
 */
function guardAtExit(c: Cleanup): void {
  c.unguard = atExit(() => {
    if (current !== c) return;
    current = undefined;
    for (const pid of c.groups) signalGroup(pid, 'SIGKILL');
    killStragglers(c.dir);
    removeLinks(c);
    if (!c.keep) removeDirSync(c.dir);
  });
}

/** Ends the instance's bookkeeping: no longer this process's instance, no longer in the exit safety net. */
function release(c: Cleanup): void {
  if (current === c) current = undefined;
  c.unguard();
}

// ---------------------------------------------------------------------------------------------
// Small utilities
// ---------------------------------------------------------------------------------------------

/** Signals the process group of a daemon we spawned ({@link Cleanup.groups}); nothing if it is gone. */
function signalGroup(pid: number, signal: NodeJS.Signals): void {
  signalInstance(pid, signal, true);
}

/** The instance's own copy of gam_server: the executable /usr/libexec/gam_server leads to. */
function gamServerCopy(dir: string): string {
  return path.join(dir, 'sys/gam_server');
}

/**
 * SIGKILLs the processes of an instance that are not in our process groups (or whose groups are gone),
 * found by paths inside the instance directory, never by name:
 * - gam_server: libgamin (in imapd, running as the mail user) forks it through /usr/libexec/gam_server
 *   and it detaches into a session of its own with init as parent, so neither our process groups nor
 *   the parent link finds it. Its /proc/PID/exe is the instance's own copy of the binary, a path no
 *   other program has.
 * - imapd: one per connection, in couriertcpd's group while that lives. After a hard kill of the test
 *   process (see {@link spawnDetached}) an imapd serving a connection outlives couriertcpd; it is the
 *   Courier imapd (exe `.../usr/bin/imapd`) with the user's Maildir, inside the instance dir, as argv.
 * Synchronous (also used by the exit hook).
 */
function killStragglers(dir: string): number {
  const gam = gamServerCopy(dir);
  let killed = 0;
  let pids: string[];
  try {
    pids = readdirSync('/proc').filter((d) => /^\d+$/.test(d) && Number(d) !== process.pid);
  } catch {
    return 0;
  }
  for (const pid of pids) {
    let exe: string;
    let argv: string[];
    try {
      exe = readlinkSync(`/proc/${pid}/exe`).replace(/ \(deleted\)$/, '');
      argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    } catch {
      continue; // gone, or a kernel thread
    }
    const ours = exe === gam || (exe.endsWith('/usr/bin/imapd') && argv.some((a) => a.startsWith(`${dir}/`)));
    if (!ours) continue;
    try {
      process.kill(Number(pid), 'SIGKILL');
      killed++;
    } catch {
      // already gone
    }
  }
  return killed;
}

/**
 * Removes the links an instance created, each only if it is still a symlink with the target it was
 * given (never whatever else may have replaced it), then the parent folders created for them if empty.
 * Synchronous (also used by the exit hook).
 */
function removeLinks(c: Cleanup): void {
  for (const [p, target] of c.links) {
    try {
      if (lstatSync(p).isSymbolicLink() && readlinkSync(p) === target) unlinkSync(p);
    } catch {
      // already gone
    }
  }
  c.links.clear();
  for (const d of c.createdDirs.reverse()) {
    try {
      rmdirSync(d);
    } catch {
      // not empty (something else was put there meanwhile) or gone: leave it
    }
  }
  c.createdDirs = [];
}

/** The start time of a process (clock ticks since boot, field 22 of /proc/PID/stat), or undefined if it is gone. */
function processStartTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) is in parentheses and may contain spaces: count from the last ')'.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

/**
 * An instance records the test process that owns it (PID and start time, so a reused PID does not
 * count) in DIR/owner. True if that process is still running.
 */
function ownerAlive(dir: string): { alive: boolean; pid?: number } {
  let owner: string;
  try {
    owner = readFileSync(path.join(dir, 'owner'), 'utf8');
  } catch {
    return { alive: false };
  }
  const [pid, start] = owner.trim().split(' ');
  const alive = !!pid && processStartTime(Number(pid)) === start;
  return { alive, pid: Number(pid) };
}

/** The unpacked binaries the helper runs (real paths inside the root, not through the links). */
function binaries(root: string) {
  return {
    couriertcpd: path.join(root, 'usr/sbin/couriertcpd'),
    imaplogin: path.join(root, 'usr/lib/courier/courier/imaplogin'),
    imapd: path.join(root, 'usr/bin/imapd'),
    authdaemond: path.join(root, 'usr/lib/courier/courier-authlib/authdaemond'),
    authuserdb: path.join(root, 'usr/lib/courier-authlib/libauthuserdb.so.0'),
    makedatprog: path.join(root, 'usr/lib/courier/courier-authlib/makedatprog'),
    userdbpw: path.join(root, 'usr/sbin/userdbpw'),
    gamServer: path.join(root, 'usr/libexec/gam_server'),
  };
}

/**
 * LD_LIBRARY_PATH for every Courier binary: the unpacked libraries (libcourierauth* in usr/lib, the
 * auth modules, libcourier-unicode, libgamin, and on a machine without them libgdbm, libglib, ...)
 * before the system's. They are the same Debian release as the system's, so mixing is safe. No Courier
 * binary is set-uid, so the variable reaches imapd after imaplogin switched to the mail user, and
 * gam_server forked from it.
 */
function libraryPath(root: string): string {
  const dirs = [
    path.join(root, 'usr/lib'),
    path.join(root, 'usr/lib/courier-authlib'),
    ...multiarchDirs(path.join(root, 'usr/lib')),
    ...multiarchDirs(path.join(root, 'lib')),
  ];
  if (process.env.LD_LIBRARY_PATH) dirs.push(process.env.LD_LIBRARY_PATH);
  return dirs.join(':');
}

// ---------------------------------------------------------------------------------------------
// The system links
// ---------------------------------------------------------------------------------------------

/** What is at a system path now. */
type LinkState =
  | { kind: 'absent' }
  | { kind: 'foreign'; what: string }
  | { kind: 'ours'; dir: string; target: string; alive: boolean; pid?: number };

function inspect(link: SystemLink): LinkState {
  let st;
  try {
    st = lstatSync(link.path);
  } catch {
    return { kind: 'absent' };
  }
  if (!st.isSymbolicLink()) return { kind: 'foreign', what: st.isDirectory() ? 'a directory' : 'a file' };
  const target = readlinkSync(link.path);
  // A link of this helper points to INSTANCE_DIR/<target> with INSTANCE_DIR = .../mailmover-courier-XXXXXX.
  const suffix = `/${link.target}`;
  const dir = target.endsWith(suffix) ? target.slice(0, -suffix.length) : '';
  if (!path.isAbsolute(dir) || !path.basename(dir).startsWith(DIR_PREFIX)) {
    return { kind: 'foreign', what: `a symlink to ${target}` };
  }
  return { kind: 'ours', dir, target, ...ownerAlive(dir) };
}

/**
 * Checks the five system paths before anything is created. Throws if one is taken by something that is
 * not this helper's (a real Courier installation, another tool's link), or by a running instance of
 * this helper (in this process or another). Links left by an instance whose test process is gone (hard
 * kill, no 'exit' hook) are removed, together with a gam_server of that instance that may still run.
 */
function claimSystemPaths(): void {
  const foreign: string[] = [];
  const running = new Map<string, number | undefined>();
  const stale: { link: SystemLink; state: Extract<LinkState, { kind: 'ours' }> }[] = [];
  for (const link of SYSTEM_LINKS) {
    const s = inspect(link);
    if (s.kind === 'foreign') foreign.push(`${link.path} exists (${s.what})`);
    else if (s.kind === 'ours' && s.alive) running.set(s.dir, s.pid);
    else if (s.kind === 'ours') stale.push({ link, state: s });
  }
  if (foreign.length) {
    throw new Error(
      `startCourier: refusing to start, Courier needs these system paths and they are taken by something ` +
        `that is not this helper's (nothing was changed):\n  ${foreign.join('\n  ')}\n` +
        `Is Courier installed on this machine? The Courier tests need a machine without it.`,
    );
  }
  if (running.size) {
    const who = [...running].map(([dir, pid]) => `${dir} (test process ${pid})`).join(', ');
    throw new Error(
      `startCourier: a Courier instance of this helper is already running: ${who}. Only one can run at a ` +
        `time on a machine (its links in /etc, /run, /usr/lib, /usr/libexec are machine-wide); stop it first.`,
    );
  }
  for (const { link, state } of stale) {
    try {
      if (readlinkSync(link.path) === state.target) unlinkSync(link.path);
    } catch {
      // gone meanwhile
    }
  }
  for (const dir of new Set(stale.map((s) => s.state.dir))) {
    const killed = killStragglers(dir);
    const links = stale.filter((s) => s.state.dir === dir).map((s) => s.link.path);
    process.stderr.write(
      `startCourier: removed the stale links ${links.join(', ')} of ${dir} (its test process is gone${killed ? `; killed ${killed} leftover process(es)` : ''}; the dir itself is left as it is)\n`,
    );
  }
}

/**
 * Creates the five links for an instance. symlink(2) fails with EEXIST instead of replacing anything,
 * so a path taken since {@link claimSystemPaths} looked is never overwritten: the links made so far are
 * removed again and startCourier fails.
 */
async function createLinks(c: Cleanup): Promise<void> {
  for (const link of SYSTEM_LINKS) {
    const parent = path.dirname(link.path);
    if (!existsSync(parent)) {
      // /usr/libexec is missing on some minimal systems; /etc, /run and /usr/lib always exist.
      await mkdir(parent);
      c.createdDirs.push(parent);
    }
    const target = path.join(c.dir, link.target);
    try {
      await symlink(target, link.path);
    } catch (e) {
      removeLinks(c);
      throw new Error(`startCourier: could not create the link ${link.path} -> ${target}: ${(e as Error).message}`);
    }
    c.links.set(link.path, target);
  }
}

// ---------------------------------------------------------------------------------------------
// Config
// ---------------------------------------------------------------------------------------------

/** The mail user: every Maildir belongs to it and imapd runs as it after login. */
interface MailUser {
  uid: number;
  gid: number;
}

function mailUser(): MailUser {
  return nobodyIds();
}

/**
 * The instance's authdaemonrc (read by authdaemond from the compiled-in /etc/courier/authdaemonrc):
 * only the userdb module (Debian's default is PAM, i.e. the machine's accounts), two worker processes,
 * the compiled-in socket folder (/run/courier/authdaemon, i.e. DIR/run/authdaemon).
 */
const AUTHDAEMONRC = `# throwaway test instance written by test/helpers/courier.ts
authmodulelist="authuserdb"
daemons=2
authdaemonvar=/run/courier/authdaemon
DEBUG_LOGIN=0
DEFAULTOPTIONS=""
`;

/**
 * imapd's settings. Debian's /etc/courier/imapd is a shell file that its init script sources before it
 * starts couriertcpd; these are its values, passed as the environment instead. Notes:
 * - no STARTTLS (imapd-ssl's IMAPDSTARTTLS is not set): plain IMAP on loopback, like the Cyrus helper;
 * - IMAP_EMPTYTRASH `Trash:7` (Debian's) purges from Trash, at login and logout, the messages whose
 *   file CTIME is 7 days old - the time they were moved there, not their INTERNALDATE (Debian's comment
 *   on it), so a message just migrated into Trash stays;
 * - IMAP_KEYWORDS=1: keywords are stored.
 * Nothing here alters stored bytes.
 */
function imapdEnv(root: string): NodeJS.ProcessEnv {
  const capability = 'IMAP4rev1 UIDPLUS CHILDREN NAMESPACE THREAD=ORDEREDSUBJECT THREAD=REFERENCES SORT QUOTA IDLE';
  return {
    PATH: '/usr/bin:/bin',
    LD_LIBRARY_PATH: libraryPath(root),
    MAILDIRPATH: 'Maildir',
    IMAP_CAPABILITY: capability,
    IMAP_CAPABILITY_TLS: `${capability} AUTH=PLAIN`,
    IMAP_KEYWORDS: '1',
    IMAP_ACL: '1',
    IMAP_PROXY: '0',
    IMAP_IDLE_TIMEOUT: '60',
    IMAP_MAILBOX_SANITY_CHECK: '1',
    IMAP_DISABLETHREADSORT: '0',
    IMAP_CHECK_ALL_FOLDERS: '0',
    IMAP_OBSOLETE_CLIENT: '0',
    IMAP_UMASK: '022',
    IMAP_ULIMITD: '131072',
    IMAP_USELOCKS: '1',
    IMAP_SHAREDINDEXFILE: '/etc/courier/shared/index',
    IMAP_ENHANCEDIDLE: '0',
    IMAP_TRASHFOLDERNAME: 'Trash',
    IMAP_EMPTYTRASH: 'Trash:7',
    IMAP_MOVE_EXPUNGE_TO_TRASH: '0',
  };
}

// ---------------------------------------------------------------------------------------------
// Start / stop
// ---------------------------------------------------------------------------------------------

/** A spawned daemon (see {@link spawnDetached}: leader of its own process group) and how it ended. */
interface Daemon extends Spawned {
  name: 'authdaemond' | 'couriertcpd';
}

/** Watches a daemon just spawned and adds its process group to the instance's ({@link Cleanup.groups}). */
function track(c: Cleanup, child: ChildProcess, name: Daemon['name']): Daemon {
  const d = watchChild(child, name);
  c.groups.add(d.pid);
  return { name, ...d };
}

/** The other members of a process group we lead (field 5 of /proc/PID/stat is the group). */
function groupMembers(leader: number): number[] {
  const out: number[] = [];
  let pids: string[];
  try {
    pids = readdirSync('/proc').filter((d) => /^\d+$/.test(d) && Number(d) !== leader);
  } catch {
    return out;
  }
  for (const pid of pids) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const [state, , pgid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(pgid) === leader && state !== 'Z') out.push(Number(pid));
    } catch {
      // gone
    }
  }
  return out;
}

/**
 * Stops one daemon and everything in its process group. authdaemond, on SIGTERM, stops and reaps its
 * workers itself. couriertcpd, on SIGTERM, exits without reaping its imapd children, which would then
 * linger as zombies of init: so its children (one imapd per open connection) are SIGKILLed first, while
 * it still reaps them, and it is SIGTERMed after. SIGKILL to the group if the daemon has not exited
 * within the grace time, and to whatever is left in the group at the end (nothing, normally).
 */
async function stopDaemon(c: Cleanup, d: Daemon): Promise<void> {
  if (!d.exited()) {
    d.child.ref();
    if (d.name === 'couriertcpd') {
      const children = groupMembers(d.pid);
      for (const pid of children) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
      const until = Date.now() + 500;
      while (Date.now() < until && children.some((pid) => existsSync(`/proc/${pid}`))) await sleep(2);
    }
    try {
      process.kill(d.pid, 'SIGTERM');
    } catch {
      // exited meanwhile
    }
    const timer = setTimeout(() => signalGroup(d.pid, 'SIGKILL'), TERM_GRACE_MS);
    await d.exitPromise;
    clearTimeout(timer);
  }
  // Children that ignored SIGTERM or were forked in between must not keep the port or write into the dir
  // we are about to remove.
  signalGroup(d.pid, 'SIGKILL');
  c.groups.delete(d.pid);
}

/**
 * Starts a throwaway Courier IMAP server (plain IMAP on a free loopback port) and resolves once imapd
 * answers `* OK`. Users are added with {@link CourierServer.addUser}. Always call `stop()` (e.g. in
 * `after()`); a process-exit hook cleans up anyway.
 *
 * Throws, before anything is changed, if not run as root, if the binaries are missing (run
 * scripts/fetch-courier.sh), if an instance of this helper is running (in this process or another), or if
 * one of the five system paths is taken by something else; and with the daemons' logs if they exit or do
 * not get ready within 10 s.
 */
export async function startCourier(opts: CourierOptions = {}): Promise<CourierServer> {
  const root = path.resolve(opts.root ?? DEFAULT_COURIER_ROOT);
  if (!courierAvailable(root)) throw new Error(`${COURIER_MISSING} (looked in ${root})`);
  if (process.getuid?.() !== 0) {
    throw new Error('startCourier needs root: it links /etc/courier, /run/courier, /usr/lib/courier(-authlib) and /usr/libexec/gam_server');
  }
  if (current) {
    throw new Error(`startCourier: this process already runs a Courier instance (${current.dir}); only one can run at a time on a machine, stop it first`);
  }
  claimSystemPaths();

  const keep = process.env.KEEP_TEST_DIRS === '1';
  const dir = await mkdtemp(path.join(os.tmpdir(), DIR_PREFIX));
  const c: Cleanup = { dir, keep, groups: new Set(), links: new Map(), createdDirs: [], unguard: () => undefined };
  current = c;
  guardAtExit(c);
  const daemons: Daemon[] = [];
  try {
    if (/[\s|=]/.test(dir)) throw new Error(`the temp dir ${dir} must not contain spaces, '|' or '=' (userdb syntax)`);
    // mkdtemp creates 0700; imapd runs as the mail user and must traverse it to reach mail/.
    await chmod(dir, 0o755);
    await writeFile(path.join(dir, 'owner'), `${process.pid} ${processStartTime(process.pid)}\n`);
    for (const d of ['etc', 'etc/shared', 'run', 'run/authdaemon', 'mail', 'sys']) await mkdir(path.join(dir, d));
    await writeFile(path.join(dir, 'etc/authdaemonrc'), AUTHDAEMONRC);
    // userdb: the text file makeuserdb compiles (0600: it holds the password hashes; makeuserdb insists).
    await writeFile(path.join(dir, 'etc/userdb'), '', { mode: 0o600 });
    const b = binaries(root);
    await symlink(path.join(root, 'usr/lib/courier-authlib'), path.join(dir, 'sys/courier-authlib'));
    await symlink(path.join(root, 'usr/lib/courier'), path.join(dir, 'sys/courier'));
    // A copy, not a link: /proc/PID/exe of a gam_server started through it is then this file, which
    // identifies the gam_server processes of this instance (see killStragglers).
    await copyFile(b.gamServer, gamServerCopy(dir));
    await chmod(gamServerCopy(dir), 0o755);
    await createLinks(c);
    await compileUserdb(root, dir);

    const authLog = path.join(dir, 'authdaemond.log');
    const logFile = path.join(dir, 'imapd.log');
    const evidence = async () => [`authdaemond.log:\n${await tail(authLog)}`, `imapd.log:\n${await tail(logFile)}`].join('\n');

    // authdaemond first: imaplogin asks it at every LOGIN, through /run/courier/authdaemon/socket.
    const authFd = openSync(authLog, 'a');
    const auth = track(c, spawnDetached(b.authdaemond, [], authFd, { env: { PATH: '/usr/bin:/bin', LD_LIBRARY_PATH: libraryPath(root) } }), 'authdaemond');
    closeSync(authFd);
    daemons.push(auth);
    const socket = path.join(dir, 'run/authdaemon/socket');
    const deadline = Date.now() + START_TIMEOUT_MS;
    while (!existsSync(socket) && !auth.exited() && Date.now() < deadline) await sleep(5);
    if (!existsSync(socket)) {
      throw new Error(`authdaemond ${auth.exited() ? `exited (${JSON.stringify(auth.exited())})` : `made no socket within ${START_TIMEOUT_MS} ms`}:\n${await evidence()}`);
    }

    return await retryPorts<CourierServer>('couriertcpd', PORT_ATTEMPTS, async () => {
      const port = await freePort();
      const logFd = openSync(logFile, 'a');
      const args = [
        '-address=127.0.0.1', '-nodnslookup', '-noidentlookup', `-maxprocs=${MAX_CONNECTIONS}`, `-maxperip=${MAX_CONNECTIONS}`,
        String(port), b.imaplogin, b.imapd, 'Maildir',
      ];
      const tcpd = track(c, spawnDetached(b.couriertcpd, args, logFd, { env: imapdEnv(root) }), 'couriertcpd');
      closeSync(logFd);

      // The greeting means couriertcpd accepted, forked imaplogin, and imaplogin (with its libraries) greets.
      if (await waitReady(tcpd, START_TIMEOUT_MS, () => probe(port))) {
        daemons.push(tcpd);
        return { server: makeServer({ root, dir, port, logFile, c, daemons }) };
      }
      await stopDaemon(c, tcpd);
      const error = new Error(`couriertcpd ${notReadyReason(tcpd, START_TIMEOUT_MS)}:\n${await evidence()}`);
      // Lost the race for the port: try again with a new one. Anything else is a real failure.
      return { error, retry: !(await canBind(port)) };
    });
  } catch (e) {
    for (const d of daemons) await stopDaemon(c, d);
    for (const pid of c.groups) signalGroup(pid, 'SIGKILL');
    killStragglers(dir);
    removeLinks(c);
    release(c);
    if (!keep) await rm(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 20 });
    throw e;
  }
}

/**
 * Compiles DIR/etc/userdb into userdb.dat and userdbshadow.dat with Courier's own makeuserdb (perl,
 * from perl-base), which reads /etc/courier/userdb by default - here the instance's file, named
 * explicitly. authuserdb notices the new files at the next lookup.
 */
async function compileUserdb(root: string, dir: string): Promise<void> {
  const perl = findBinary('perl');
  if (!perl) throw new Error('perl not found (makeuserdb is a perl script; perl-base provides /usr/bin/perl)');
  await run(perl, [path.join(root, 'usr/sbin/makeuserdb'), '-f', path.join(dir, 'etc/userdb')], { PATH: '/usr/bin:/bin', LD_LIBRARY_PATH: libraryPath(root) }, '');
}

interface ServerParts {
  root: string;
  dir: string;
  port: number;
  logFile: string;
  c: Cleanup;
  daemons: Daemon[];
}

function makeServer(p: ServerParts): CourierServer {
  const { userdbpw } = binaries(p.root);
  const env = { PATH: '/usr/bin:/bin', LD_LIBRARY_PATH: libraryPath(p.root) };
  const id = mailUser();

  return {
    host: '127.0.0.1',
    port: p.port,
    dir: p.dir,
    separator: '.',
    prefix: 'INBOX.',
    logFile: p.logFile,

    // The name is a userdb key and a folder name: keep it to a safe set (no tab, '|', '/', '.').
    // makeuserdb rewrites the whole database: one call after another, never side by side.
    addUser: userDatabase('userdbpw', async (user, password) => {
      const home = path.join(p.dir, 'mail', user);
      const maildir = path.join(home, 'Maildir');
      // A Maildir is cur/new/tmp (what maildirmake does); imapd creates the folders' own inside it.
      for (const d of [home, maildir, ...['cur', 'new', 'tmp'].map((s) => path.join(maildir, s))]) {
        await mkdir(d, { mode: 0o700 });
        await chown(d, id.uid, id.gid);
      }
      // MD5-crypt hash, as Courier's own tools make it.
      const hash = (await run(userdbpw, ['-md5'], env, `${password}\n`)).trim();
      if (!hash.startsWith('$1$')) throw new Error(`userdbpw printed no MD5-crypt hash: ${JSON.stringify(hash)}`);
      await appendFile(path.join(p.dir, 'etc/userdb'), `${user}\tuid=${id.uid}|gid=${id.gid}|home=${home}|mail=${maildir}|systempw=${hash}\n`);
      await compileUserdb(p.root, p.dir);
    }),

    url: (user) => imapUrl(user, p.port),

    stop: once(async () => {
      // couriertcpd (and every imapd) first, then authdaemond, then the gam_server imapd started.
      for (const d of [...p.daemons].reverse()) await stopDaemon(p.c, d);
      killStragglers(p.dir);
      removeLinks(p.c);
      release(p.c);
      await finishStop([p.port], p.dir, p.c.keep);
    }),
  };
}
