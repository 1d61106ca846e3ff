/**
 * Plumbing shared by the throwaway-server helpers (Dovecot, Cyrus, Courier): free loopback ports,
 * readiness probes, signalling our own process groups, and the process-exit safety net. Each
 * helper starts its server detached (its own process group) and registers it here; nothing is
 * ever found or killed by name.
 */
import { rmSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import net from 'node:net';

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

/** Instances started and not yet stopped: master PID -> its dir (`keep`: do not remove it). */
const live = new Map<number, { dir: string; keep: boolean }>();
let exitHookInstalled = false;

/**
 * Registers a running instance with the process-exit safety net: if the test process ends without
 * stop() (a test threw before its `after()`), the servers would outlive us and keep their ports
 * and temp dirs. 'exit' handlers must be synchronous, so: SIGKILL our own process groups and
 * best-effort remove the dirs. A hard kill of the test process skips 'exit'; the helpers cover that
 * with a parent-death signal (setpriv --pdeathsig).
 */
export function trackInstance(pid: number, dir: string, keep: boolean): void {
  live.set(pid, { dir, keep });
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const [p, { dir: d, keep: k }] of live) {
      signalInstance(p, 'SIGKILL');
      if (!k) {
        try {
          // Children of the killed master may still be writing for a few ms: retry on ENOTEMPTY.
          rmSync(d, { recursive: true, force: true, maxRetries: 5, retryDelay: 20 });
        } catch {
          // best effort; a leftover dir in /tmp is harmless
        }
      }
    }
    live.clear();
  });
}

/** Removes an instance from the safety net (after its own stop()). */
export function untrackInstance(pid: number): void {
  live.delete(pid);
}
