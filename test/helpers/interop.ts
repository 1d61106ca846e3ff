/**
 * What the interoperability tests (test/integration/cyrus.test.ts, courier.test.ts) share: the real CLI
 * migrates between a throwaway server of another vendor and a throwaway Dovecot, these helpers run it,
 * read its `--json` report and compare what the destination holds with what it must hold.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { after, before } from 'node:test';
import { fileURLToPath } from 'node:url';
import { runCli, type CliResult } from './cli.js';
import { startDovecot, type DovecotServer } from './dovecot.js';
import { buildFixture, type FixtureFolder, type NamespaceInfo, type ReadBackFolder, readMailbox, seedMailbox } from './fixture.js';
import type { TestServer } from './server-process.js';

/** The part of the JSON report these tests look at. */
export interface Report {
  status: string;
  totals: { messages: number; copied: number; alreadyPresent: number; skipped: number };
  folders: { source: string; destination: string; copied: number; error?: { code: string; message: string; serverResponse?: string } }[];
  items: { folder: string; uid: number; code: string; reason: string }[];
  error?: { code: string; message: string };
}

/** The personal namespace of the throwaway Dovecot (test/helpers/dovecot.ts defaults). */
export const DOVECOT_NS: NamespaceInfo = { prefix: '', delimiter: '/' };

/** The servers and the fixture of one interoperability describe(), set by its before(). */
export interface InteropSuite<S extends TestServer> {
  /** The other vendor's server (Cyrus, Courier). */
  other: S;
  dovecot: DovecotServer;
  /** The whole fixture, with a 1 MiB message. */
  full: FixtureFolder[];
  /** The part of it the other server stores as given (`compatible(full)`). */
  fixture: FixtureFolder[];
}

/**
 * Registers, in the calling describe(), a before() that starts the other vendor's server (`start`) and
 * a Dovecot side by side and builds the fixture, and an after() that stops both. Returns the object
 * before() fills in.
 */
export function interopSuite<S extends TestServer>(start: () => Promise<S>, compatible: (full: FixtureFolder[]) => FixtureFolder[]): InteropSuite<S> {
  const s = {} as InteropSuite<S>;
  before(async () => {
    [s.other, s.dovecot] = await Promise.all([start(), startDovecot()]);
    s.full = buildFixture({ bigMessageBytes: 1024 * 1024 });
    s.fixture = compatible(s.full);
  });
  after(async () => {
    await Promise.all([s.other?.stop(), s.dovecot?.stop()]);
  });
  return s;
}

/**
 * Runs `scripts/NAME` (one of the idempotent fetch scripts) with its output on ours; returns its exit
 * status (null if it was killed after 10 min).
 */
export function runFetchScript(name: string): number | null {
  const script = fileURLToPath(new URL(`../../scripts/${name}`, import.meta.url));
  return spawnSync('bash', [script], { stdio: 'inherit', timeout: 600_000 }).status;
}

/** Parses `--json` output; on failure the assertion message shows what the CLI printed. */
export function reportOf(run: CliResult): Report {
  assert.equal(run.code, 0, `exit ${run.code}\nstderr: ${run.stderr}\nstdout: ${run.stdout.slice(0, 4000)}`);
  try {
    return JSON.parse(run.stdout) as Report;
  } catch {
    assert.fail(`--json printed no JSON:\n${run.stdout.slice(0, 2000)}\n${run.stderr}`);
  }
}

/** Asserts a complete first run that copied every fixture message, with the report in the message. */
export function assertCompleteCopy(r: Report, total: number): void {
  const detail = JSON.stringify({ status: r.status, totals: r.totals, error: r.error, items: r.items.slice(0, 5), failed: r.folders.filter((f) => f.error) }, null, 1);
  assert.equal(r.status, 'complete', detail);
  assert.equal(r.totals.messages, total, detail);
  assert.equal(r.totals.copied, total, detail);
  assert.equal(r.totals.skipped, 0, detail);
  assert.deepEqual(r.items, [], detail);
}

/**
 * deepEqual, with a short list of the differences as the message: the full diff of two 40-folder trees
 * is thousands of lines, and this says which folder and which message (by size, flags, date) differ.
 */
export function assertSameMailbox(actual: ReadBackFolder[], expected: ReadBackFolder[], what: string): void {
  const key = (f: ReadBackFolder) => f.path.join(' / ');
  const msg = (m: ReadBackFolder['messages'][number]) => `${m.size} B [${m.flags.join(' ')}] ${new Date(m.internalDate).toISOString()} ${m.sha256.slice(0, 12)}`;
  const got = new Map(actual.map((f) => [key(f), f]));
  const want = new Map(expected.map((f) => [key(f), f]));
  const lines: string[] = [];
  for (const k of new Set([...want.keys(), ...got.keys()])) {
    const a = got.get(k);
    const e = want.get(k);
    if (!a || !e) {
      const f = (a ?? e)!;
      lines.push(`${a ? 'unexpected' : 'missing'} folder "${k}" (subscribed ${f.subscribed}, noSelect ${f.noSelect}, ${f.messages.length} messages)`);
      continue;
    }
    if (a.subscribed !== e.subscribed) lines.push(`"${k}": subscribed ${a.subscribed}, expected ${e.subscribed}`);
    if (a.noSelect !== e.noSelect) lines.push(`"${k}": noSelect ${a.noSelect}, expected ${e.noSelect}`);
    const rest = a.messages.map(msg);
    for (const m of e.messages.map(msg)) {
      const i = rest.indexOf(m);
      if (i === -1) lines.push(`"${k}": missing message ${m}`);
      else rest.splice(i, 1);
    }
    for (const m of rest) lines.push(`"${k}": unexpected message ${m}`);
  }
  assert.deepEqual(actual, expected, `${what}:\n${lines.slice(0, 40).join('\n')}${lines.length > 40 ? `\n... ${lines.length - 40} more` : ''}`);
}

/** A user on one of the servers; `name` is the server's name in assertion messages ('Cyrus', 'Dovecot'). */
export interface Account {
  server: TestServer;
  name: string;
  user: string;
  password: string;
}

/** `user` on `server`, with the password `USER-NAME-pw` (e.g. `alice-cyrus-pw`) unless one is given. */
export function account(server: TestServer, name: string, user: string, password = `${user}-${name.toLowerCase()}-pw`): Account {
  return { server, name, user, password };
}

/**
 * The real CLI's `migrate --json` from one account to the other, the passwords in the environment.
 * The side on `dovecot` has STARTTLS with the throwaway test CA, which mailmover is told not to verify
 * (`--from-tls-insecure` or `--to-tls-insecure`); the other servers offer no STARTTLS.
 */
export function cliMigration(from: Omit<Account, 'name'>, to: Omit<Account, 'name'>, dovecot: TestServer) {
  const tls = from.server === dovecot ? '--from-tls-insecure' : '--to-tls-insecure';
  const args = ['migrate', '--from', from.server.url(from.user), '--to', to.server.url(to.user), tls, '--json'];
  const env = { MAILMOVER_FROM_PASSWORD: from.password, MAILMOVER_TO_PASSWORD: to.password };
  return {
    /** Runs the migration; the report of a run that exited 0 ({@link reportOf}). */
    run: async () => reportOf(await runCli(args, env)),
    /** Reads the destination back, independently of mailmover. */
    read: () => readMailbox(to.server, to.user, to.password),
  };
}

/**
 * One direction of the round trip every interoperability file runs: adds the user on both servers
 * and seeds `folders` into the source; with `expected.source`, checks that the source holds them so
 * (or a difference below would not be mailmover's); migrates with the real CLI and asserts a complete
 * copy of every message, that the destination holds exactly `expected.destination`, and that a rerun
 * copies nothing (every message already present) and leaves the destination as it was.
 */
export async function assertExactMigration(
  from: Account,
  to: Account,
  dovecot: TestServer,
  folders: FixtureFolder[],
  expected: { source?: ReadBackFolder[]; destination: ReadBackFolder[] },
): Promise<void> {
  const total = folders.reduce((n, f) => n + f.messages.length, 0);
  await from.server.addUser(from.user, from.password);
  await seedMailbox(from.server, from.user, from.password, folders);
  if (expected.source) {
    assertSameMailbox(await readMailbox(from.server, from.user, from.password), expected.source, `${from.name} did not store the fixture as given`);
  }
  await to.server.addUser(to.user, to.password);
  const migration = cliMigration(from, to, dovecot);
  assertCompleteCopy(await migration.run(), total);

  const copied = await migration.read();
  assertSameMailbox(copied, expected.destination, `${to.name} (destination) does not hold the fixture`);

  const again = await migration.run();
  assert.equal(again.totals.copied, 0, JSON.stringify(again.totals));
  assert.equal(again.totals.alreadyPresent, total, JSON.stringify(again.totals));
  assertSameMailbox(await migration.read(), copied, 'a rerun changed the destination');
}
