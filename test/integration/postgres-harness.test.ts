/**
 * Proves the PostgreSQL test harness (test/helpers/postgres.ts) against the real server: clusters
 * start, take databases and SQL through psql, run side by side without sharing anything, listen on
 * 127.0.0.1 only, and stop()/kill() leave nothing behind. If this file fails, failures of the
 * job-queue tests are not evidence against mailmover.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { childProcesses, findPostgresBin, processAlive, psql, startPostgres, type PostgresServer } from '../helpers/postgres.js';
import { canBind, lookupPasswd } from '../helpers/server-process.js';

/** The cluster's processes: the postmaster and its children. */
function clusterProcesses(pid: number): number[] {
  return [pid, ...childProcesses(pid).map((c) => c.pid)];
}

/** Process group of a process, from /proc/PID/stat ("PID (comm) STATE PPID PGRP ..."). */
function pgrpOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]);
}

/** The postmaster and its children as they are now, to check later that none survived. */
function snapshot(pid: number): { pid: number; start: string }[] {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return [{ pid, start: stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]! }, ...childProcesses(pid)];
}

/** Socket inodes open in any of `pids`. */
function socketInodes(pids: number[]): Set<string> {
  const inodes = new Set<string>();
  for (const pid of pids) {
    let fds: string[] = [];
    try {
      fds = readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      try {
        const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
        if (m) inodes.add(m[1]!);
      } catch {
        // closed meanwhile
      }
    }
  }
  return inodes;
}

/** `0100007F:1F90` (little-endian IPv4 of /proc/net/tcp) as `127.0.0.1:8080`; IPv6 addresses stay hex. */
function decodeAddress(hex: string): string {
  const [addr = '', port = ''] = hex.split(':');
  const host = addr.length === 8 ? [3, 2, 1, 0].map((i) => parseInt(addr.slice(i * 2, i * 2 + 2), 16)).join('.') : `[${addr}]`;
  return `${host}:${parseInt(port, 16)}`;
}

/**
 * What the cluster of postmaster `pid` has bound: TCP listeners and UDP sockets (per /proc/net/{tcp,
 * tcp6,udp,udp6}, `proto address:port`), and listening unix sockets (paths).
 */
function boundSockets(pid: number): { inet: string[]; unix: string[] } {
  const inodes = socketInodes(clusterProcesses(pid));
  const inet: string[] = [];
  for (const proto of ['tcp', 'tcp6', 'udp', 'udp6']) {
    for (const line of readFileSync(`/proc/net/${proto}`, 'utf8').trim().split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      // sl local rem st tx:rx tr:when retrnsmt uid timeout inode
      if (!inodes.has(f[9]!)) continue;
      const listening = proto.startsWith('udp') || f[3] === '0A';
      if (listening) inet.push(`${proto} ${decodeAddress(f[1]!)}`);
    }
  }
  const unix: string[] = [];
  for (const line of readFileSync('/proc/net/unix', 'utf8').trim().split('\n').slice(1)) {
    // Num RefCount Protocol Flags Type St Inode [Path]; flag 0x10000 = accepting connections.
    const f = line.trim().split(/\s+/);
    if (inodes.has(f[6]!) && (parseInt(f[3]!, 16) & 0x10000) !== 0) unix.push(f[7] ?? '(unnamed)');
  }
  return { inet: inet.sort(), unix: unix.sort() };
}

/** Real uid of a process, from /proc/PID/status; undefined once it has exited. */
function uidOf(pid: number): number | undefined {
  try {
    return Number(/^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]);
  } catch {
    return undefined; // a short-lived child (e.g. the backend of the readiness check) just ended
  }
}

describe('throwaway PostgreSQL clusters', () => {
  let a: PostgresServer;
  let b: PostgresServer;

  before(async () => {
    const started = Date.now();
    [a, b] = await Promise.all([startPostgres(), startPostgres()]);
    process.stderr.write(`# two clusters created and started in parallel: ${Date.now() - started} ms\n`);
  });
  after(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
  });

  test('the postmaster is our child, leads a process group of its own, and nothing runs as root', () => {
    assert.equal(a.host, '127.0.0.1');
    assert.ok(existsSync(path.join(a.dir, 'data', 'PG_VERSION')));
    assert.equal(a.url(), `postgres://postgres@127.0.0.1:${a.port}/postgres`);
    assert.equal(a.url('jobs'), `postgres://postgres@127.0.0.1:${a.port}/jobs`);
    assert.equal(pgrpOf(a.pid), a.pid);
    const procs = clusterProcesses(a.pid);
    // checkpointer, background writer, walwriter, autovacuum launcher, logical replication launcher
    assert.ok(procs.length > 1, `cluster ${a.pid}: ${procs.join(' ')}`);
    for (const pid of procs) assert.notEqual(uidOf(pid), 0, `pid ${pid} runs as root`);
    // As root: the `postgres` system user; otherwise: ourselves.
    const expected = process.getuid?.() === 0 ? Number(lookupPasswd((f) => f[0] === 'postgres')?.[2]) : process.getuid?.();
    assert.equal(uidOf(a.pid), expected);
  });

  test('createDatabase, then create table, insert and select through psql', async () => {
    const url = await a.createDatabase('harness_jobs');
    assert.equal(url, a.url('harness_jobs'));
    const out = await psql(
      url,
      `create table jobs (id serial primary key, name text not null, payload jsonb);
       insert into jobs (name, payload) values ('migrate-mailbox', '{"user": "alice"}'), ('ünïcödé ✓', '{"n": 2}');
       select id, name, payload->>'user', current_database() from jobs order by id;`,
    );
    assert.equal(out, '1|migrate-mailbox|alice|harness_jobs\n2|ünïcödé ✓||harness_jobs\n');
    // The settings the helper asks for are the ones in force.
    const settings = await psql(
      a.url(),
      "select current_setting('server_encoding'), current_setting('lc_collate'), current_setting('listen_addresses'), " +
        "current_setting('fsync'), current_setting('synchronous_commit'), current_setting('full_page_writes'), current_user",
    );
    assert.equal(settings, 'UTF8|C.UTF-8|127.0.0.1|off|off|off|postgres\n');
  });

  test('createDatabase refuses unsafe names and duplicates; psql errors reject', async () => {
    await assert.rejects(a.createDatabase('Bad-Name'), /must match/);
    await assert.rejects(a.createDatabase('x; drop database postgres'), /must match/);
    await a.createDatabase('harness_twice');
    await assert.rejects(a.createDatabase('harness_twice'), /already exists/);
    await assert.rejects(psql(a.url(), 'select * from no_such_table'), /does not exist/);
  });

  test('two clusters run at once on different ports and share nothing', async () => {
    assert.notEqual(a.port, b.port);
    assert.notEqual(a.pid, b.pid);
    assert.notEqual(a.dir, b.dir);
    // The same database name in both: separate catalogs.
    const [ua, ub] = await Promise.all([a.createDatabase('harness_same'), b.createDatabase('harness_same')]);
    await psql(ua, "create table only_in_a (x int); insert into only_in_a values (42)");
    assert.equal(await psql(ua, 'select x from only_in_a'), '42\n');
    assert.equal(await psql(ub, "select coalesce(to_regclass('only_in_a')::text, 'absent')"), 'absent\n');
    assert.equal(await psql(a.url(), 'select inet_server_port()'), `${a.port}\n`);
    assert.equal(await psql(b.url(), 'select inet_server_port()'), `${b.port}\n`);
  });

  test('nothing listens on anything but 127.0.0.1 (and the unix socket in its own dir)', () => {
    for (const s of [a, b]) {
      const bound = boundSockets(s.pid);
      assert.deepEqual(bound.inet, [`tcp 127.0.0.1:${s.port}`]);
      assert.deepEqual(bound.unix, [path.join(s.dir, `.s.PGSQL.${s.port}`)]);
    }
  });
});

describe('stopping PostgreSQL clusters', () => {
  let stopped: PostgresServer;
  let killed: PostgresServer;
  let kept: PostgresServer;

  before(async () => {
    [stopped, killed, kept] = await Promise.all([startPostgres(), startPostgres(), startPostgres({ keep: true })]);
  });
  after(async () => {
    await Promise.all([stopped?.stop(), killed?.stop(), kept?.stop()]);
    if (kept) await rm(kept.dir, { recursive: true, force: true });
  });

  test('stop() shuts down fast, frees the port and removes the dir; a second stop() is a no-op', async () => {
    const { port, pid, dir } = stopped;
    const procs = snapshot(pid);
    await psql(stopped.url(), 'create table t (x int); insert into t select generate_series(1, 1000)');
    const started = Date.now();
    await stopped.stop();
    const took = Date.now() - started;
    process.stderr.write(`# stop(): ${took} ms\n`);
    assert.ok(took < 3000, `stop took ${took} ms`);
    assert.deepEqual(procs.filter(processAlive), []);
    assert.equal(existsSync(dir), false);
    assert.equal(await canBind(port), true);
    await assert.rejects(psql(stopped.url(), 'select 1'), /Connection refused|could not connect/);
    await stopped.stop();
  });

  test('kill() SIGKILLs the postmaster and its children and keeps the dir; no shared memory is left; stop() then removes the dir', async () => {
    const { port, pid, dir } = killed;
    // A session in the middle of a query: its backend must die too, and the client hear of it.
    const sleeping = psql(killed.url(), 'select pg_sleep(30)');
    const settled = sleeping.then(() => 'answered', (e: Error) => e.message);
    const active = "select count(*) from pg_stat_activity where query = 'select pg_sleep(30)' and state = 'active'";
    while ((await psql(killed.url(), active)) !== '1\n') await new Promise((r) => setTimeout(r, 10));
    const procs = snapshot(pid);
    await killed.kill();
    assert.deepEqual(procs.filter(processAlive), []);
    assert.match(await settled, /server closed the connection|terminated/);
    assert.equal(await canBind(port), true);
    assert.ok(existsSync(path.join(dir, 'data', 'PG_VERSION')));
    // /proc/sysvipc/shm: key shmid perms size cpid ...; no segment created by the dead postmaster.
    const leftovers = readFileSync('/proc/sysvipc/shm', 'utf8').trim().split('\n').slice(1).filter((l) => l.trim().split(/\s+/)[4] === String(pid));
    assert.deepEqual(leftovers, []);
    await assert.rejects(psql(killed.url(), 'select 1'), /Connection refused|could not connect/);
    await killed.kill(); // no-op once dead
    await killed.stop();
    assert.equal(existsSync(dir), false);
  });

  test('keep: true leaves the cluster directory after stop()', async () => {
    const procs = snapshot(kept.pid);
    await kept.stop();
    assert.deepEqual(procs.filter(processAlive), []);
    assert.ok(existsSync(path.join(kept.dir, 'data', 'PG_VERSION')));
    assert.ok(existsSync(path.join(kept.dir, 'postgres.log')));
  });
});

describe('finding the PostgreSQL binaries', () => {
  let root: string;
  before(async () => {
    root = await mkdtemp(path.join(os.tmpdir(), 'mailmover-pgbin-'));
  });
  after(async () => {
    await rm(root, { recursive: true, force: true });
  });

  async function fakeVersion(version: string, programs = ['initdb', 'postgres', 'psql']): Promise<void> {
    await mkdir(path.join(root, version, 'bin'), { recursive: true });
    for (const p of programs) await writeFile(path.join(root, version, 'bin', p), '');
  }

  test('none installed: the error says to install postgresql-15', async () => {
    assert.throws(() => findPostgresBin(path.join(root, 'missing')), /install postgresql-15/);
    await fakeVersion('16', ['psql']); // a client-only install is not enough
    assert.throws(() => findPostgresBin(root), /install postgresql-15/);
  });

  test('prefers 15, else the newest', async () => {
    await fakeVersion('14');
    await fakeVersion('16');
    assert.equal(findPostgresBin(root), path.join(root, '16', 'bin'));
    await fakeVersion('15');
    assert.equal(findPostgresBin(root), path.join(root, '15', 'bin'));
  });

  test('this machine has one', () => {
    assert.ok(existsSync(path.join(findPostgresBin(), 'postgres')));
  });
});
