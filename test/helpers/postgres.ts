/**
 * Throwaway PostgreSQL clusters for integration tests (the job queue).
 *
 * Each {@link startPostgres} call creates a private temp directory, runs `initdb` into `DIR/data`
 * (trust authentication, superuser `postgres`, UTF8, locale C.UTF-8, no fsync), starts `postgres` in
 * the foreground as a direct child of this process (detached in its own process group, like the other
 * helpers), listening on 127.0.0.1 on a free port and on a unix socket in DIR only, with durability
 * switched off (fsync, synchronous_commit, full_page_writes: test data is throwaway), and waits until
 * a connection gets through the whole start-up handshake and `psql -c 'select 1'` answers.
 * startPostgres() takes ~0.7 s (initdb ~0.6 s of it), stop() ~40 ms, kill() ~10 ms; several clusters
 * can run side by side.
 *
 * The server refuses to run as root, and so does initdb: when the tests run as root, the directory
 * belongs to the `postgres` system user (created by Debian's postgresql-15 package) and initdb and the
 * server run as that user; otherwise they run as the current user.
 *
 * The binaries come from /usr/lib/postgresql/VERSION/bin (Debian's layout; 15 preferred). Tests fail,
 * they do not skip, when they are missing: install postgresql-15.
 * See /work/shared/notes/components.md §5 for the measured behaviour this is built on.
 */
import { execFile, execFileSync } from 'node:child_process';
import { closeSync, existsSync, openSync, readdirSync, readFileSync } from 'node:fs';
import { chown, mkdtemp } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { atExit, canBind, finishStop, freePort, killInstance, lookupPasswd, notReadyReason, once, retryPorts, signalInstance, sleep, spawnDetached, type Spawned, tail, untrackInstance, waitReady, watchInstance, withInstanceDir } from './server-process.js';

/** Options for {@link startPostgres}. */
export interface PostgresOptions {
  /** Keep the private directory after {@link PostgresServer.stop} (also with `KEEP_TEST_DIRS=1`). */
  keep?: boolean;
}

/** A running throwaway PostgreSQL cluster. */
export interface PostgresServer {
  host: '127.0.0.1';
  /** TCP port on 127.0.0.1 (the unix socket `DIR/.s.PGSQL.PORT` has the same number). */
  port: number;
  /** PID of the postmaster (our direct child, leader of the cluster's process group). */
  pid: number;
  /** The private directory: `data/` (the cluster), `postgres.log`, the unix socket. */
  dir: string;
  /** `postgres://postgres@127.0.0.1:PORT/DATABASE`; database `postgres` by default. No password (trust). */
  url(database?: string): string;
  /** Creates a database (name: [a-z_][a-z0-9_]*, at most 63 characters) and resolves with its {@link url}. */
  createDatabase(name: string): Promise<string>;
  /**
   * SIGKILLs the postmaster and its children (a crash) and waits until all have exited and the port is
   * free. The directory stays until {@link stop}; the cluster cannot be started again. No-op when not running.
   */
  kill(): Promise<void>;
  /**
   * Fast shutdown (SIGINT: open sessions are ended, a final checkpoint is written), SIGKILL if that
   * takes over 5 s; then waits for the port to be free and removes the directory unless kept. Idempotent.
   */
  stop(): Promise<void>;
}

/** Where Debian installs the server binaries, one folder per major version. */
export const POSTGRES_LIB_DIR = '/usr/lib/postgresql';
/** The major version the project targets; used when installed, else the newest one found. */
const PREFERRED_VERSION = '15';
/** The programs a cluster needs, all from one version's bin folder. */
const PROGRAMS = ['initdb', 'postgres', 'psql'] as const;

/** How long a start waits for a connection before giving up. */
const START_TIMEOUT_MS = 15_000;
/** How long stop() waits for a fast shutdown before it SIGKILLs. */
const STOP_TIMEOUT_MS = 5_000;
/** Attempts with fresh ports when another process grabbed the port between our probe and the server's bind. */
const PORT_ATTEMPTS = 5;

/**
 * The bin folder of the PostgreSQL server under `root` (`ROOT/VERSION/bin` holding initdb, postgres
 * and psql): version 15 if installed, else the highest version. Throws, saying to install
 * postgresql-15, when there is none.
 */
export function findPostgresBin(root: string = POSTGRES_LIB_DIR): string {
  let versions: string[] = [];
  try {
    versions = readdirSync(root).filter((v) => /^\d+(\.\d+)?$/.test(v));
  } catch {
    // no such folder: nothing installed
  }
  const complete = versions.filter((v) => PROGRAMS.every((p) => existsSync(path.join(root, v, 'bin', p))));
  complete.sort((a, b) => (a === PREFERRED_VERSION ? -1 : b === PREFERRED_VERSION ? 1 : Number(b) - Number(a)));
  const version = complete[0];
  if (version === undefined) {
    throw new Error(
      `PostgreSQL server binaries not found (looked for ${PROGRAMS.join(', ')} in ${root}/*/bin): ` +
        'install postgresql-15 (apt-get install postgresql-15)',
    );
  }
  return path.join(root, version, 'bin');
}

/** Whom initdb and the server run as: the `postgres` system user when we are root, else ourselves. */
interface RunAs {
  uid?: number;
  gid?: number;
}

function runAs(): RunAs {
  if (process.getuid?.() !== 0) return {};
  const entry = lookupPasswd((f) => f[0] === 'postgres');
  if (!entry) {
    throw new Error(
      'running as root, but there is no `postgres` system user to run initdb and the server as ' +
        '(PostgreSQL refuses to run as root): install postgresql-15, which creates it',
    );
  }
  return { uid: Number(entry[2]), gid: Number(entry[3]) };
}

/**
 * Our environment without the PG* variables (PGHOST, PGPORT, PGDATA, PGOPTIONS, ... would redirect
 * psql or change the server) and with one known locale, so messages are English (the port-race retry
 * matches one).
 */
function cleanEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (!key.startsWith('PG') && !key.startsWith('LC_') && key !== 'LANG' && key !== 'LANGUAGE') env[key] = value;
  }
  return { ...env, LC_ALL: 'C.UTF-8', ...extra };
}

/** Runs a program to completion; resolves with stdout, rejects with its output on failure or timeout. */
function exec(file: string, args: string[], opts: RunAs & { env: NodeJS.ProcessEnv; cwd?: string; input?: string; timeoutMs: number }): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      file,
      args,
      { env: opts.env, cwd: opts.cwd, uid: opts.uid, gid: opts.gid, timeout: opts.timeoutMs, killSignal: 'SIGKILL', maxBuffer: 64 * 1024 * 1024 },
      (err, stdout, stderr) => {
        if (err) reject(new Error(`${path.basename(file)} ${args.join(' ')} failed: ${err.message}\n${stdout}${stderr}`.trimEnd()));
        else resolve(stdout);
      },
    );
    // A program that exits without reading its input (psql that cannot connect) makes the write fail
    // with EPIPE: that must not become an uncaught exception; the exit status tells what went wrong.
    child.stdin?.on('error', () => undefined);
    child.stdin?.end(opts.input ?? '');
  });
}

/** `postgres://postgres@127.0.0.1:PORT/DATABASE`. */
export function postgresUrl(port: number, database = 'postgres'): string {
  return `postgres://postgres@127.0.0.1:${port}/${encodeURIComponent(database)}`;
}

/**
 * Runs SQL through `psql` against `url` (e.g. {@link PostgresServer.url}) and resolves with its
 * output: unaligned rows, `|` between columns, no headers, no command tags. Stops at the first
 * error and rejects with psql's message. For tests until the project has a client library.
 */
export function psql(url: string, sql: string): Promise<string> {
  const bin = path.join(findPostgresBin(), 'psql');
  return exec(bin, ['-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-d', url, '-f', '-'], {
    env: cleanEnv({ PGCONNECT_TIMEOUT: '5' }),
    input: sql,
    timeoutMs: 30_000,
  });
}

/**
 * True when a client gets through the start-up handshake on 127.0.0.1:PORT as `postgres` (trust)
 * up to ReadyForQuery. Written against the wire protocol (v3) directly: while the server starts or
 * recovers, it accepts connections and answers with an error, so an accepted connection proves nothing.
 */
function handshake(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect({ host: '127.0.0.1', port });
    let buf = Buffer.alloc(0);
    let settled = false;
    const done = (ok: boolean) => {
      if (settled) return;
      settled = true;
      if (ok) sock.end(Buffer.from([0x58, 0, 0, 0, 4])); // Terminate
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(1000, () => done(false));
    sock.on('error', () => done(false));
    sock.on('close', () => done(false));
    sock.on('connect', () => {
      const params = Buffer.from('user\0postgres\0database\0postgres\0\0', 'latin1');
      const head = Buffer.alloc(8);
      head.writeInt32BE(8 + params.length, 0);
      head.writeInt32BE(3 << 16, 4); // protocol 3.0
      sock.write(Buffer.concat([head, params]));
    });
    sock.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      // Messages: a type byte, then a length that counts itself. 'Z' ReadyForQuery, 'E' an error.
      while (buf.length >= 5) {
        const type = String.fromCharCode(buf[0]!);
        const end = 1 + buf.readInt32BE(1);
        if (buf.length < end) break;
        if (type === 'Z') return done(true);
        if (type === 'E') return done(false);
        if (type === 'R' && buf.readInt32BE(5) !== 0) return done(false); // a password is wanted: not our trust cluster
        buf = buf.subarray(end);
      }
    });
  });
}

// ---------------------------------------------------------------------------------------------
// Killing a cluster
// ---------------------------------------------------------------------------------------------

/** A process, told apart from a later one with the same PID by its start time. */
interface ProcessId {
  pid: number;
  /** Field 22 of /proc/PID/stat (clock ticks after boot). */
  start: string;
}

/** State, parent and start time of a process from /proc/PID/stat; undefined when there is none. */
function procStat(pid: number): { state: string; ppid: number; start: string } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // "PID (comm) STATE PPID PGRP ... STARTTIME ..."; comm may hold spaces and parentheses.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { state: f[0] ?? '', ppid: Number(f[1]), start: f[19] ?? '' };
  } catch {
    return undefined;
  }
}

/** The children of `pid` (the postmaster's backends and auxiliary processes). */
export function childProcesses(pid: number): ProcessId[] {
  const children: ProcessId[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const s = procStat(Number(entry));
    if (s?.ppid === pid) children.push({ pid: Number(entry), start: s.start });
  }
  return children;
}

/** True while the process runs (not exited, not a zombie, and its PID not taken by another process). */
export function processAlive(p: ProcessId): boolean {
  const s = procStat(p.pid);
  return s !== undefined && s.start === p.start && s.state !== 'Z' && s.state !== 'X';
}

/**
 * SIGKILLs a running postmaster and its children; returns the children. Why not just the process group
 * like the other helpers: every child of the postmaster calls setsid() (a session and process group of
 * its own), so the group holds the postmaster alone. The postmaster is stopped (SIGSTOP) first: it then
 * reaps no child, so the PIDs listed stay those of its children (alive or zombies) until they are
 * signalled. Children would notice the postmaster's death and exit on their own, but not at once.
 * Then removes the System V shared memory segment the postmaster leaves behind: PostgreSQL keeps a
 * small one as an interlock and removes it only on a clean shutdown; the one `data/postmaster.pid`
 * names, and only if this postmaster created it (it is deleted when the last child detaches).
 * Synchronous, so the process-exit hook can use it. The postmaster must not have been reaped yet.
 */
function killClusterSync(pid: number, dataDir: string): ProcessId[] {
  try {
    process.kill(pid, 'SIGSTOP');
  } catch {
    return []; // gone
  }
  const children = childProcesses(pid);
  for (const child of children) {
    try {
      process.kill(child.pid, 'SIGKILL');
    } catch {
      // exited meanwhile (a zombie, since the stopped postmaster does not reap it)
    }
  }
  signalInstance(pid, 'SIGKILL');
  try {
    // Line 7 of postmaster.pid: "KEY SHMID". /proc/sysvipc/shm columns: key shmid perms size cpid ...
    const shmid = readFileSync(path.join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[6]?.trim().split(/\s+/)[1];
    const row = readFileSync('/proc/sysvipc/shm', 'utf8')
      .split('\n')
      .map((line) => line.trim().split(/\s+/))
      .find((f) => f[1] === shmid);
    if (shmid && row && Number(row[4]) === pid) execFileSync('ipcrm', ['-m', shmid], { stdio: 'ignore', timeout: 5000 });
  } catch {
    // best effort: a leftover segment of ~60 bytes is harmless
  }
  return children;
}

/** A postmaster we spawned, with its crash-style kill. */
interface Postmaster {
  spawned: Spawned;
  /** SIGKILLs postmaster and children, waits until all have exited and the port is free. Idempotent. */
  kill(): Promise<void>;
}

/** Waits until nothing listens on `port` any more (at most 3 s). */
async function portReleased(port: number): Promise<void> {
  const deadline = Date.now() + 3000;
  while (Date.now() < deadline && !(await canBind(port))) await sleep(10);
}

// ---------------------------------------------------------------------------------------------
// Start / stop
// ---------------------------------------------------------------------------------------------

interface Cluster {
  bin: string;
  dir: string;
  dataDir: string;
  logFile: string;
  runAs: RunAs;
  env: NodeJS.ProcessEnv;
  keep: boolean;
}

/** Spawns the postmaster on `port` and waits until it answers; kills it again if it does not come up. */
async function launch(c: Cluster, port: number): Promise<{ postmaster: Postmaster } | { error: Error; evidence: string }> {
  const logFd = openSync(c.logFile, 'a');
  const args = [
    '-D', c.dataDir,
    '-p', String(port),
    '-k', c.dir,
    '-c', 'listen_addresses=127.0.0.1',
    // Throwaway data: no durability.
    '-c', 'fsync=off',
    '-c', 'synchronous_commit=off',
    '-c', 'full_page_writes=off',
  ];
  const child = spawnDetached(path.join(c.bin, 'postgres'), args, logFd, { env: c.env, ...c.runAs });
  closeSync(logFd); // the child holds its own copy
  // Registered before watchInstance, so at process exit it runs first: the children too are killed
  // (the shared hook SIGKILLs the postmaster's group only) and the shared memory is removed.
  const pid = child.pid;
  const unhook = pid === undefined ? () => undefined : atExit(() => void killClusterSync(pid, c.dataDir));
  child.once('exit', unhook);
  const spawned = watchInstance(child, 'postgres', c.dir, c.keep);

  let killing: Promise<void> | undefined;
  const postmaster: Postmaster = {
    spawned,
    kill: () =>
      (killing ??= (async () => {
        if (spawned.exited()) return;
        // exited() is false, so the 'exit' event has not come: the postmaster is not reaped, its PID is its own.
        const children = killClusterSync(spawned.pid, c.dataDir);
        await killInstance(spawned);
        untrackInstance(spawned.pid);
        const deadline = Date.now() + 3000;
        while (Date.now() < deadline && children.some(processAlive)) await sleep(5);
        await portReleased(port);
      })()),
  };

  if (await waitReady(spawned, START_TIMEOUT_MS, () => handshake(port))) {
    try {
      await psql(postgresUrl(port), 'select 1');
      return { postmaster };
    } catch (e) {
      await postmaster.kill();
      return { error: e as Error, evidence: '' };
    }
  }
  await postmaster.kill();
  const evidence = await tail(c.logFile);
  return { error: new Error(`postgres (${c.dataDir}) ${notReadyReason(spawned, START_TIMEOUT_MS)}:\n${evidence}`), evidence };
}

/**
 * Creates and starts a throwaway PostgreSQL cluster on a free loopback port; resolves once it
 * accepts connections. Always call `stop()` (e.g. in `after()`); a process-exit hook kills leftovers
 * anyway. Throws when PostgreSQL is not installed, with initdb's output when it fails, and with the
 * tail of the server log when the server exits or does not answer within 15 s.
 */
export async function startPostgres(options: PostgresOptions = {}): Promise<PostgresServer> {
  const bin = findPostgresBin();
  const as = runAs();
  const keepByEnv = process.env.KEEP_TEST_DIRS === '1';
  const keep = keepByEnv || options.keep === true;

  const dir = await mkdtemp(path.join(os.tmpdir(), 'mailmover-postgres-'));
  return withInstanceDir(dir, keep, async () => {
    // mkdtemp made it 0700 and ours; as root, hand it to the postgres user (initdb creates data/ in it,
    // the server its socket and lock files). Its parent must be traversable by that user (/tmp is).
    if (as.uid !== undefined && as.gid !== undefined) await chown(dir, as.uid, as.gid);
    const c: Cluster = {
      bin,
      dir,
      dataDir: path.join(dir, 'data'),
      logFile: path.join(dir, 'postgres.log'),
      runAs: as,
      // HOME: the postgres user cannot read root's home; nothing should look there anyway.
      env: cleanEnv({ HOME: dir }),
      keep,
    };
    await exec(
      path.join(bin, 'initdb'),
      ['--no-sync', '--no-instructions', '-A', 'trust', '-U', 'postgres', '-E', 'UTF8', '--locale=C.UTF-8', '-D', c.dataDir],
      { env: c.env, cwd: dir, ...as, timeoutMs: 120_000 },
    );
    return retryPorts<PostgresServer>('postgres', PORT_ATTEMPTS, async () => {
      const port = await freePort();
      const started = await launch(c, port);
      if ('postmaster' in started) return { server: makeServer(c, port, started.postmaster, keepByEnv) };
      // Lost the race for the port: try again with a new one (the cluster is reused). Anything else is a real failure.
      return { error: started.error, retry: /Address already in use/.test(started.evidence) };
    });
  });
}

function makeServer(c: Cluster, port: number, postmaster: Postmaster, keepByEnv: boolean): PostgresServer {
  const master = postmaster.spawned;
  return {
    host: '127.0.0.1',
    port,
    pid: master.pid,
    dir: c.dir,
    url: (database?: string) => postgresUrl(port, database),
    async createDatabase(name: string): Promise<string> {
      // Only plain lower-case identifiers: no quoting needed, and the name in the URL is the name in the catalog.
      if (!/^[a-z_][a-z0-9_]{0,62}$/.test(name)) throw new Error(`database name ${JSON.stringify(name)} must match [a-z_][a-z0-9_]{0,62}`);
      await psql(postgresUrl(port), `create database ${name}`);
      return postgresUrl(port, name);
    },
    kill: postmaster.kill,
    stop: once(async () => {
      if (!master.exited()) {
        master.child.ref(); // keep the event loop alive while we wait for the exit (watchChild unref'ed it)
        // Fast shutdown: the postmaster ends its children, writes a checkpoint, removes its shared
        // memory, socket and pid files, and exits last.
        signalInstance(master.pid, 'SIGINT');
        let timer: NodeJS.Timeout | undefined;
        const timedOut = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), STOP_TIMEOUT_MS)));
        const slow = await Promise.race([master.exitPromise.then(() => false), timedOut]);
        clearTimeout(timer);
        if (slow) await postmaster.kill();
      }
      untrackInstance(master.pid);
      await finishStop([port], c.dir, c.keep, keepByEnv);
    }),
  };
}
