/**
 * A throwaway Dovecot 2.3 instance for the benchmark: its own config, directories and port on
 * 127.0.0.1, started in the foreground (`dovecot -F -c CONF`) as our child so we own its PID and
 * stop exactly that PID. Plain IMAP only (no TLS), Maildir with '/' as separator (LAYOUT=fs),
 * passwd-file users with {PLAIN} passwords, `mail_fsync` left at its default.
 *
 * Self-contained on purpose (the recipe is components.md §1): the benchmark does not depend on
 * the test helpers.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, chown, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { createConnection, createServer } from 'node:net';
import { userInfo } from 'node:os';
import { join } from 'node:path';

export const INSTALL_HINT = 'apt-get install -y dovecot-imapd isync';

/** Finds an executable by absolute candidates first, then on $PATH. */
export function findExecutable(name: string, candidates: string[] = []): string | undefined {
  for (const c of candidates) if (existsSync(c)) return c;
  for (const dir of (process.env.PATH ?? '').split(':')) {
    if (dir && existsSync(join(dir, name))) return join(dir, name);
  }
  return undefined;
}

export interface DovecotOptions {
  /** Working directory (created if missing; must be traversable by the mail user). */
  dir: string;
  /** user -> password ({PLAIN} in the passwd-file). */
  users: Record<string, string>;
  /** System user that owns the mail files when we run as root (default 'nobody'). */
  mailUser?: string;
  /** Milliseconds to wait until the port greets (default 15000). */
  startTimeoutMs?: number;
}

export interface DovecotInstance {
  readonly host: '127.0.0.1';
  readonly port: number;
  readonly pid: number;
  readonly dir: string;
  readonly logPath: string;
  /** The user's home; its Maildir is `<home>/Maildir`. */
  homeOf(user: string): string;
  /** Rewrites the passwd-file (Dovecot re-reads it when it changes). */
  setUsers(users: Record<string, string>): Promise<void>;
  /** True until the master process has exited. */
  isRunning(): boolean;
  /** SIGTERM to our master PID, SIGKILL after `graceMs` (default 6000). Idempotent. */
  stop(graceMs?: number): Promise<void>;
  /** Synchronous last resort for process 'exit' handlers: SIGKILL to our master PID. */
  killNow(): void;
}

function configText(dir: string, port: number, mail: { uid: number; gid: number; userConf: string }): string {
  // Dovecot 2.3 does not accept one-line blocks: every { ... } spans lines.
  return `# throwaway benchmark instance (mailmover bench) -- generated, do not edit
base_dir = ${dir}/run
state_dir = ${dir}/state
instance_name = mailmover-bench-${port}
listen = 127.0.0.1
protocols = imap
log_path = ${dir}/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
first_valid_uid = 1
mail_location = maildir:${dir}/mail/%u/Maildir:LAYOUT=fs
mail_uid = ${mail.uid}
mail_gid = ${mail.gid}
${mail.userConf}
service anvil {
  chroot =
}
service imap-login {
  chroot =
  inet_listener imap {
    address = 127.0.0.1
    port = ${port}
  }
  inet_listener imaps {
    port = 0
  }
}
service stats {
  unix_listener stats-writer {
    mode = 0666
  }
}
passdb {
  driver = passwd-file
  args = scheme=PLAIN ${dir}/users
}
userdb {
  driver = static
  args = home=${dir}/mail/%u
}
namespace inbox {
  inbox = yes
  separator = /
  prefix =
  mailbox Drafts {
    special_use = \\Drafts
  }
  mailbox Sent {
    special_use = \\Sent
  }
  mailbox Trash {
    special_use = \\Trash
  }
  mailbox Junk {
    special_use = \\Junk
  }
  mailbox Archive {
    special_use = \\Archive
  }
}
protocol imap {
  mail_max_userip_connections = 100
}
`;
}

function usersText(users: Record<string, string>): string {
  return Object.entries(users)
    .map(([u, p]) => {
      if (/[:\s]/.test(u) || /[\r\n]/.test(p)) throw new Error(`bad user/password for the passwd-file: ${u}`);
      return `${u}:{PLAIN}${p}\n`;
    })
    .join('');
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => (port ? resolve(port) : reject(new Error('no free port'))));
    });
  });
}

/** Resolves when the port answers with an IMAP greeting, rejects after `ms`. */
async function waitForGreeting(port: number, ms: number, alive: () => boolean): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (!alive()) throw new Error('dovecot exited during start');
    const ok = await new Promise<boolean>((resolve) => {
      const sock = createConnection({ host: '127.0.0.1', port });
      const timer = setTimeout(() => done(false), 1000);
      let buf = '';
      function done(v: boolean) {
        clearTimeout(timer);
        sock.destroy();
        resolve(v);
      }
      sock.on('data', (d) => {
        buf += d.toString('latin1');
        if (buf.includes('\n')) done(buf.startsWith('* OK'));
      });
      sock.on('error', () => done(false));
      sock.on('close', () => done(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`port ${port} did not greet within ${ms} ms`);
}

async function tail(file: string, bytes = 2000): Promise<string> {
  try {
    const t = await readFile(file, 'utf8');
    return t.slice(-bytes);
  } catch {
    return '';
  }
}

/** Starts Dovecot; retries with another port when the chosen one was taken meanwhile. */
export async function startDovecot(opts: DovecotOptions): Promise<DovecotInstance> {
  const dovecot = findExecutable('dovecot', ['/usr/sbin/dovecot']);
  if (!dovecot) throw new Error(`dovecot not found (looked in /usr/sbin and $PATH). Install it: ${INSTALL_HINT}`);
  const doveconf = findExecutable('doveconf', ['/usr/bin/doveconf', '/usr/sbin/doveconf']);
  const dir = opts.dir;
  const isRoot = process.getuid?.() === 0;
  let uid: number;
  let gid: number;
  let userConf: string;
  if (isRoot) {
    const mailUser = opts.mailUser ?? 'nobody';
    const entry = (await readFile('/etc/passwd', 'utf8')).split('\n').find((l) => l.split(':')[0] === mailUser)?.split(':');
    uid = Number(entry?.[2]);
    gid = Number(entry?.[3]);
    if (!entry || !uid || !Number.isInteger(gid)) throw new Error(`mail user "${mailUser}" missing from /etc/passwd or root; mail files must be owned by a non-root user`);
    userConf = '# root: default_internal_user=dovecot, default_login_user=dovenull (Debian defaults)';
  } else {
    const me = userInfo();
    uid = me.uid;
    gid = me.gid;
    const group = (await readFile('/etc/group', 'utf8')).split('\n').find((l) => l.split(':')[2] === String(me.gid))?.split(':')[0] ?? me.username;
    userConf = `default_internal_user = ${me.username}\ndefault_login_user = ${me.username}\ndefault_internal_group = ${group}`;
  }
  await mkdir(dir, { recursive: true });
  await chmod(dir, 0o755); // the mail user must be able to traverse it (mkdtemp makes 0700)
  for (const sub of ['run', 'state', 'mail']) await mkdir(join(dir, sub), { recursive: true });
  if (isRoot) await chown(join(dir, 'mail'), uid, gid);
  const usersFile = join(dir, 'users');
  const writeUsers = async (users: Record<string, string>) => {
    const tmp = `${usersFile}.tmp`;
    await writeFile(tmp, usersText(users), { mode: 0o644 });
    await rename(tmp, usersFile);
  };
  await writeUsers(opts.users);
  const conf = join(dir, 'dovecot.conf');
  const logPath = join(dir, 'dovecot.log');

  let lastError: unknown;
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freePort();
    await writeFile(conf, configText(dir, port, { uid, gid, userConf }));
    if (doveconf) {
      const check = spawnSync(doveconf, ['-n', '-c', conf], { encoding: 'utf8', timeout: 15000 });
      if (check.status !== 0) throw new Error(`doveconf rejected ${conf}:\n${check.stderr || check.stdout || String(check.error)}`);
    }
    const child: ChildProcess = spawn(dovecot, ['-F', '-c', conf], { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    const keep = (d: Buffer) => {
      output = (output + d.toString('utf8')).slice(-4000);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    let exited = false;
    const exitPromise = new Promise<void>((resolve) => {
      child.once('exit', () => {
        exited = true;
        resolve();
      });
      child.once('error', (err) => {
        output += String(err);
        exited = true;
        resolve();
      });
    });
    try {
      await waitForGreeting(port, opts.startTimeoutMs ?? 15000, () => !exited);
    } catch (err) {
      if (!exited && child.pid) {
        try {
          process.kill(child.pid, 'SIGKILL');
        } catch {
          /* already gone */
        }
        await exitPromise;
      }
      const log = await tail(logPath);
      lastError = new Error(`dovecot did not start on 127.0.0.1:${port}: ${(err as Error).message}\n${output}${log}`);
      if (/in use/i.test(output + log)) continue; // lost the race for the port: try another one
      throw lastError;
    }
    const pid = child.pid!;
    let stopping: Promise<void> | undefined;
    const instance: DovecotInstance = {
      host: '127.0.0.1',
      port,
      pid,
      dir,
      logPath,
      homeOf: (user) => join(dir, 'mail', user),
      setUsers: writeUsers,
      isRunning: () => !exited,
      killNow: () => {
        if (exited) return;
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          /* gone */
        }
      },
      stop: (graceMs = 6000) => {
        stopping ??= (async () => {
          if (exited) return;
          try {
            process.kill(pid, 'SIGTERM');
          } catch {
            return;
          }
          const timer = setTimeout(() => instance.killNow(), graceMs);
          await exitPromise;
          clearTimeout(timer);
        })();
        return stopping;
      },
    };
    return instance;
  }
  throw lastError instanceof Error ? lastError : new Error('dovecot did not start');
}
