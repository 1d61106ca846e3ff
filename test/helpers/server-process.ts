/**
 * Plumbing shared by the throwaway-server helpers (Dovecot, Cyrus, Courier): free loopback ports,
 * readiness probes, spawning and watching our server processes, signalling our own process groups,
 * the process-exit safety net, and small lookups (binaries, /etc/passwd, library folders). Each
 * helper starts its server detached (its own process group) and registers it here; nothing is ever
 * found or killed by name.
 */
import { execFile, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';

// ---------------------------------------------------------------------------------------------
// The server objects the helpers return
// ---------------------------------------------------------------------------------------------

/** What every throwaway server offers a test, whatever the IMAP server behind it. */
export interface TestServer {
  host: '127.0.0.1';
  /** Plain IMAP port; plaintext LOGIN is allowed. */
  port: number;
  /** Adds a user; the user can log in as soon as the promise resolves. Adding a name twice throws. */
  addUser(user: string, password: string): Promise<void>;
  /** `imap://user@127.0.0.1:PORT`. */
  url(user: string): string;
  /** Stops the instance and removes its private directory (unless kept). Idempotent. */
  stop(): Promise<void>;
}

/**
 * A {@link TestServer} with the namespace of Debian's Cyrus and of Courier: every folder lives below
 * `INBOX.`, the separator is `.`.
 */
export interface InboxNamespaceServer extends TestServer {
  /** Hierarchy separator of the personal namespace. */
  separator: '.';
  /** Personal namespace prefix: every folder, INBOX's children and top-level ones alike, is below it. */
  prefix: 'INBOX.';
}

/** `imap://user@127.0.0.1:PORT`: a server's plain IMAP URL for a user. */
export function imapUrl(user: string, port: number): string {
  return `imap://${encodeURIComponent(user)}@127.0.0.1:${port}`;
}

/**
 * Runs jobs one after another, never side by side: for the tools that rewrite a whole user database
 * (makeuserdb, saslpasswd2). Each call resolves or rejects with its own job; a failed job does not stop
 * the ones queued after it.
 */
export function serialQueue(): (job: () => Promise<void>) => Promise<void> {
  let queue: Promise<void> = Promise.resolve();
  return (job) => {
    const done = queue.then(job);
    queue = done.catch(() => undefined);
    return done;
  };
}

/**
 * addUser() of a server whose users `tool` writes into a database of the instance's own: checks the
 * name (after `normalise`, e.g. lower-casing) against a safe set, [A-Za-z0-9][A-Za-z0-9_-]*, and the
 * password (non-empty, one line: the tool reads one line), refuses a name added before, and runs
 * `add(name, password)` for one user after another ({@link serialQueue}).
 */
export function userDatabase(
  tool: string,
  add: (name: string, password: string) => Promise<void>,
  normalise: (user: string) => string = (user) => user,
): (user: string, password: string) => Promise<void> {
  const users = new Set<string>();
  const serial = serialQueue();
  return (user, password) => {
    const name = normalise(user);
    if (!/^[A-Za-z0-9][A-Za-z0-9_-]*$/.test(name)) {
      return Promise.reject(new Error(`user name ${JSON.stringify(user)} must match [A-Za-z0-9][A-Za-z0-9_-]*`));
    }
    if (!password || /[\r\n]/.test(password)) {
      return Promise.reject(new Error(`password must be non-empty and contain no newlines (${tool} reads one line)`));
    }
    if (users.has(name)) return Promise.reject(new Error(`user ${name} was already added`));
    users.add(name);
    return serial(() => add(name, password));
  };
}

/** Makes stop() idempotent: the first call runs `fn`, every call returns that same promise. */
export function once(fn: () => Promise<void>): () => Promise<void> {
  let result: Promise<void> | undefined;
  return () => (result ??= fn());
}

// ---------------------------------------------------------------------------------------------
// Ports and probes
// ---------------------------------------------------------------------------------------------

/** Sleeps `ms` milliseconds. */
export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * A free TCP port on 127.0.0.1: bind port 0, read what the kernel chose, close. Another process
 * can take the port before the server binds it; the helpers retry with new ports in that case.
 */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen({ host: '127.0.0.1', port: 0, exclusive: true }, () => {
      const addr = srv.address();
      srv.close(() => (addr && typeof addr === 'object' ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

/** True if nothing listens on the port (we can bind it; closed again at once). */
export function canBind(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen({ host: '127.0.0.1', port, exclusive: true }, () => srv.close(() => resolve(true)));
  });
}

/** Last `lines` lines of a file, or '' if it does not exist yet. */
export async function tail(file: string, lines = 30): Promise<string> {
  try {
    return (await readFile(file, 'utf8')).trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

/**
 * Resolves true when a TCP connection to the port succeeds and, if `expectGreeting`, the server's
 * first line starts with `* OK`. A bare accept is not enough: listener sockets exist a moment
 * before the login process can talk, and the greeting proves the whole path is up.
 */
export function probe(port: number, expectGreeting = true): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect({ host: '127.0.0.1', port });
    let buf = '';
    const done = (ok: boolean) => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(1000, () => done(false));
    sock.on('error', () => done(false));
    sock.on('connect', () => {
      if (!expectGreeting) done(true);
    });
    sock.on('data', (d) => {
      buf += d.toString('latin1');
      if (buf.includes('\n')) done(buf.startsWith('* OK'));
    });
    sock.on('close', () => resolve(false));
  });
}

// ---------------------------------------------------------------------------------------------
// Small lookups and a runner
// ---------------------------------------------------------------------------------------------

/** First existing file among candidates: /usr/sbin is often not on an unprivileged user's PATH. */
export function findBinary(name: string): string | undefined {
  for (const dir of ['/usr/bin', '/usr/sbin', '/bin', ...(process.env.PATH ?? '').split(':')]) {
    if (!dir) continue;
    const candidate = path.join(dir, name);
    if (existsSync(candidate)) return candidate;
  }
  return undefined;
}

/** Looks up a user entry in /etc/passwd (name:x:uid:gid:...). */
export function lookupPasswd(match: (fields: string[]) => boolean): string[] | undefined {
  for (const line of readFileSync('/etc/passwd', 'utf8').split('\n')) {
    const fields = line.split(':');
    if (fields.length >= 4 && match(fields)) return fields;
  }
  return undefined;
}

/** uid and primary gid of `nobody` (nogroup on Debian), from /etc/passwd; 65534 if it has no entry. */
export function nobodyIds(): { uid: number; gid: number } {
  const nobody = lookupPasswd((f) => f[0] === 'nobody');
  return { uid: Number(nobody?.[2] ?? 65534), gid: Number(nobody?.[3] ?? 65534) };
}

/** Multiarch library folders (e.g. `usr/lib/x86_64-linux-gnu`) under a root, existing ones only. */
export function multiarchDirs(base: string): string[] {
  try {
    return readdirSync(base)
      .filter((d) => d.endsWith('-linux-gnu'))
      .map((d) => path.join(base, d));
  } catch {
    return [];
  }
}

/** Runs a program with stdin text; resolves with its stdout, rejects with its output on a non-zero exit. */
export function run(cmd: string, args: string[], env: NodeJS.ProcessEnv, input: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(cmd, args, { env, timeout: 10_000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${path.basename(cmd)} ${args.join(' ')} failed: ${err.message}\n${stdout}${stderr}`));
      else resolve(stdout);
    });
    child.stdin?.end(input);
  });
}

// ---------------------------------------------------------------------------------------------
// Spawning and watching our server processes
// ---------------------------------------------------------------------------------------------

/**
 * Spawns a server in the foreground as our direct child, so the PID we hold is the server's, with
 * stdout and stderr going to `logFd` (the caller may close its copy right after). `detached: true`
 * makes it a session and process-group leader, see {@link signalInstance}. (A side effect: Ctrl-C in a
 * terminal no longer reaches the server directly; the exit hook and pdeathsig cover it.)
 * It is wrapped in `setpriv --pdeathsig KILL` when available: setpriv execs the server in place (same
 * PID), and the kernel SIGKILLs it if this process dies without running 'exit' handlers (test-runner
 * timeout, SIGKILL, crash). `options` can set the environment and the user to start as (`uid`, `gid`).
 */
export function spawnDetached(cmd: string, args: string[], logFd: number, options: Pick<SpawnOptions, 'env' | 'uid' | 'gid'> = {}): ChildProcess {
  const setpriv = findBinary('setpriv');
  const [file, argv] = setpriv ? [setpriv, ['--pdeathsig', 'KILL', '--', cmd, ...args]] : [cmd, args];
  return spawn(file, argv, { stdio: ['ignore', logFd, logFd], detached: true, ...options });
}

/** How a process ended, as its 'exit' event tells. */
export interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** A server process we spawned (our direct child) and how it ended. */
export interface Spawned {
  child: ChildProcess;
  pid: number;
  /** Resolves when the process has exited. */
  exitPromise: Promise<void>;
  /** How the process ended; undefined while it runs. */
  exited: () => ExitStatus | undefined;
}

/**
 * Watches a process just spawned: throws `failed to spawn NAME` if it has no PID, records how it ends
 * and calls `onExit` (synchronously, in the 'exit' event) when it does.
 */
export function watchChild(child: ChildProcess, name: string, onExit?: () => void): Spawned {
  const pid = child.pid;
  if (pid === undefined) throw new Error(`failed to spawn ${name}`);
  let exited: ExitStatus | undefined;
  const exitPromise = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => {
      exited = { code, signal };
      onExit?.();
      resolve();
    });
  });
  // Do not keep the test process alive just because a server is running: a forgotten stop() must not
  // hang the test file (the exit hook cleans up). stop() re-refs while it waits for the exit.
  child.unref();
  return { child, pid, exitPromise, exited: () => exited };
}

/**
 * {@link watchChild} for the master of an instance, registered with the process-exit safety net
 * ({@link trackInstance}) until it exits.
 */
export function watchInstance(child: ChildProcess, name: string, dir: string, keep: boolean): Spawned {
  const s = watchChild(child, name, () => untrackInstance(s.pid));
  trackInstance(s.pid, dir, keep);
  return s;
}

/**
 * Polls `ready` every 10 ms until it resolves true (then true), or the process has exited or
 * `timeoutMs` has passed (then false).
 */
export async function waitReady(s: Pick<Spawned, 'exited'>, timeoutMs: number, ready: () => Promise<boolean>): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!s.exited() && Date.now() < deadline) {
    if (await ready()) return true;
    await sleep(10);
  }
  return false;
}

/**
 * Why a process that {@link waitReady} gave up on is not ready: `exited (...)` with its exit status,
 * or `did not greet within N ms` while it runs or after our own SIGKILL (which is what a timeout ends with).
 */
export function notReadyReason(s: Pick<Spawned, 'exited'>, timeoutMs: number): string {
  const e = s.exited();
  return e && e.signal !== 'SIGKILL' ? `exited (${JSON.stringify(e)})` : `did not greet within ${timeoutMs} ms`;
}

/**
 * SIGKILLs an instance (its process group, see {@link signalInstance}) unless its master has exited,
 * and waits for the master's exit. The child is re-ref'ed first: the exit event must keep the event
 * loop alive (the child was unref'ed by {@link watchChild}).
 */
export async function killInstance(s: Spawned): Promise<void> {
  if (s.exited()) return;
  s.child.ref();
  signalInstance(s.pid, 'SIGKILL');
  await s.exitPromise;
}

/** One attempt to start a server on fresh ports: the server, or why not and whether new ports may help. */
export type StartAttempt<T> = { server: T } | { error: Error; retry: boolean };

/**
 * Runs `attempt` up to `attempts` times and returns the first server it starts. Another process can
 * take a port between {@link freePort} and the server's bind: an attempt that lost that race says
 * `retry`, and the next one uses new ports. Anything else is a real failure: the attempt's error is
 * thrown at once.
 */
export async function retryPorts<T>(name: string, attempts: number, attempt: () => Promise<StartAttempt<T>>): Promise<T> {
  let lastError: Error | undefined;
  for (let i = 1; i <= attempts; i++) {
    const r = await attempt();
    if ('server' in r) return r.server;
    lastError = r.error;
    if (!r.retry) break;
  }
  throw lastError ?? new Error(`${name} did not start`);
}

/**
 * Runs the start-up of an instance in its fresh private directory; if it throws, removes the directory
 * (unless `keep`) and rethrows. Children of a killed server may still write into it for a moment: the
 * removal retries on ENOTEMPTY.
 */
export async function withInstanceDir<T>(dir: string, keep: boolean, start: () => Promise<T>): Promise<T> {
  try {
    return await start();
  } catch (e) {
    if (!keep) await rm(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 20 });
    throw e;
  }
}

/**
 * What every stop() ends with, once the instance's processes have been signalled and the master has
 * exited: waits (at most 3 s) until `ports` can be bound again, then removes `dir` unless `keep` (saying
 * so on stderr when `sayKept`). Normally the ports are free at once. Safety net for a child that escaped
 * the group: until it exits the ports stay bound (connects may even hang), and a test asserting "server
 * gone" or expecting ECONNREFUSED would be racy. A connect probe cannot tell "dying" from "gone"; a bind
 * can. The master's children exit by themselves right after it; one of them may still write into the
 * dir for a moment, hence the retries on ENOTEMPTY.
 */
export async function finishStop(ports: number[], dir: string, keep: boolean, sayKept = keep): Promise<void> {
  const allFree = async () => {
    for (const port of ports) if (!(await canBind(port))) return false;
    return true;
  };
  const deadline = Date.now() + 3000;
  while (Date.now() < deadline && !(await allFree())) await sleep(10);
  if (keep) {
    if (sayKept) process.stderr.write(`KEEP_TEST_DIRS=1: kept ${dir}\n`);
    return;
  }
  await rm(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 20 });
}

/**
 * Signals one server instance: the process group led by its master, which was spawned detached
 * (setsid), so the group holds exactly the master and what it forked - nothing else. The group,
 * not just the master, because children serving connections (imap-login, imapd) keep listening
 * sockets or sessions alive after the master is gone. With `groupOnly`, no fallback to the bare
 * PID: after the master was reaped its PID may belong to someone else.
 */
export function signalInstance(pid: number, signal: NodeJS.Signals, groupOnly = false): void {
  try {
    process.kill(-pid, signal);
  } catch {
    if (groupOnly) return;
    try {
      process.kill(pid, signal);
    } catch {
      // already gone
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Process-exit safety net
// ---------------------------------------------------------------------------------------------

/** Clean-ups of running instances, run by the 'exit' handler in the order they were registered. */
const exitCleanups = new Set<() => void>();
let exitHookInstalled = false;

/**
 * Registers a clean-up with the process-exit safety net; returns the function that unregisters it
 * (call it when the instance was stopped the normal way). If the test process ends without stop() (a
 * test threw before its `after()`), the servers would outlive us and keep their ports and temp dirs.
 * 'exit' handlers must be synchronous, so a clean-up must be too: SIGKILL our own process groups and
 * best-effort remove the dirs ({@link removeDirSync}). A hard kill of the test process skips 'exit';
 * the helpers cover that with a parent-death signal (setpriv --pdeathsig, see {@link spawnDetached}).
 */
export function atExit(cleanup: () => void): () => void {
  exitCleanups.add(cleanup);
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.on('exit', () => {
      for (const c of exitCleanups) c();
      exitCleanups.clear();
    });
  }
  return () => {
    exitCleanups.delete(cleanup);
  };
}

/** Best-effort synchronous removal of an instance dir, for the exit hook. */
export function removeDirSync(dir: string): void {
  try {
    // Children of the killed master may still be writing for a few ms: retry on ENOTEMPTY.
    rmSync(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 20 });
  } catch {
    // best effort; a leftover dir in /tmp is harmless
  }
}

/** Instances started and not yet stopped: master PID -> unregisters its clean-up. */
const live = new Map<number, () => void>();

/**
 * Registers a running instance with the process-exit safety net ({@link atExit}): at exit its process
 * group is SIGKILLed and its dir removed unless `keep`.
 */
export function trackInstance(pid: number, dir: string, keep: boolean): void {
  live.get(pid)?.();
  live.set(
    pid,
    atExit(() => {
      signalInstance(pid, 'SIGKILL');
      if (!keep) removeDirSync(dir);
    }),
  );
}

/** Removes an instance from the safety net (after its own stop()). */
export function untrackInstance(pid: number): void {
  live.get(pid)?.();
  live.delete(pid);
}
