/**
 * `mailmover batch` against real Dovecot: 200 mailboxes reached through Dovecot's master user
 * (no user passwords), plus bad rows: a user that does not exist, a wrong password, a password
 * reference that cannot be resolved, and a mailbox with a message Dovecot cannot read. The good
 * mailboxes complete and arrive exactly; the bad ones are reported with their codes; the exit code
 * says partial. A rerun skips the complete mailboxes and resumes the rest.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startDovecot, type PlainDovecotServer } from '../helpers/dovecot.js';
import { readMailbox, seedMailbox, type FixtureFolder } from '../helpers/fixture.js';
import { runCli } from '../helpers/cli.js';

const USERS = 200;
const name = (i: number) => `u${String(i).padStart(3, '0')}`;
const mailbox = (i: number): FixtureFolder[] => [
  {
    path: ['INBOX'],
    subscribed: true,
    messages: Array.from({ length: 1 + (i % 3) }, (_, k) => ({
      raw: Buffer.from(`From: b@example.org\r\nSubject: ${name(i)} ${k}\r\nMessage-ID: <${name(i)}-${k}@batch.test>\r\n\r\nhello ${k}\r\n`),
      flags: k ? ['\\Seen'] : [],
      internalDate: new Date(Date.UTC(2023, 0, 1 + k)),
    })),
  },
  { path: ['Work'], subscribed: true, messages: [{ raw: Buffer.from(`Subject: work\r\nMessage-ID: <${name(i)}-w@batch.test>\r\n\r\nw\r\n`), flags: [], internalDate: new Date(Date.UTC(2023, 5, 1)) }] },
];

interface Report {
  status: string;
  totals: { mailboxes: number; complete: number; partial: number; failed: number; alreadyComplete: number; copied: number };
  warnings: string[];
  jobs: { line: number; source: string; status: string; code?: string; copied: number; alreadyComplete?: boolean; report?: string }[];
}

describe('mailmover batch', () => {
  let source: PlainDovecotServer;
  let dest: PlainDovecotServer;
  let dir: string;

  before(async () => {
    [source, dest] = await Promise.all([startDovecot({ tls: false }), startDovecot({ tls: false })]);
    dir = await mkdtemp(path.join(os.tmpdir(), 'mm-batch-'));
    for (let i = 1; i <= USERS; i++) {
      await source.addUser(name(i), `pw${i}`);
      await dest.addUser(name(i), `pw${i}`);
    }
    for (let i = 1; i <= USERS; i += 10) await Promise.all(Array.from({ length: 10 }, (_, k) => seedMailbox(source, name(i + k), `pw${i + k}`, mailbox(i + k))));
    // u050: one message file Dovecot cannot read (the mail processes are not root).
    for (const entry of await readdir(source.homeOf(name(50)), { recursive: true, withFileTypes: true })) {
      const file = path.join(entry.parentPath, entry.name);
      if (entry.isFile() && /\/cur$/.test(entry.parentPath) && (await readFile(file, 'latin1')).includes('<u050-1@batch.test>')) await chmod(file, 0o000);
    }
    await writeFile(
      path.join(dir, 'servers.yaml'),
      [
        'source:',
        `  url: imap://127.0.0.1:${source.port}`,
        '  master: { user: admin, password: env:MM_SOURCE_MASTER }',
        'destination:',
        `  url: imap://127.0.0.1:${dest.port}`,
        '  master: { user: admin, password: file:' + path.join(dir, 'dest-master') + ' }',
        'defaults: { connections: 1, retries: 2, retryDelaySeconds: 0.02 }',
        '',
      ].join('\n'),
    );
    await writeFile(path.join(dir, 'dest-master'), 'adminpw\n');
    const rows = ['source_user,destination_user,source_password'];
    for (let i = 1; i <= USERS; i++) rows.push(i === 10 ? `${name(i)},${name(i)},pw10` : `${name(i)},${name(i)},`);
    rows.push('nosuchuser,u001,', `${name(7)},${name(8)},env:MM_WRONG_PW`, `${name(9)},${name(11)},env:MM_NOT_SET`);
    await writeFile(path.join(dir, 'users.csv'), rows.join('\n') + '\n');
  });
  after(async () => {
    await Promise.all([source?.stop(), dest?.stop()]);
    await rm(dir, { recursive: true, force: true });
  });

  const run = (...extra: string[]) =>
    runCli(['batch', 'run', path.join(dir, 'users.csv'), '--config', path.join(dir, 'servers.yaml'), '--state', path.join(dir, 'state.db'), '--report-dir', path.join(dir, 'reports'), '--json', ...extra], {
      MM_SOURCE_MASTER: 'adminpw',
      MM_WRONG_PW: 'not-the-password',
    });

  test('200 mailboxes through master logins: the good ones complete and arrive exactly, bad rows are reported; exit 3; a rerun resumes', async () => {
    // A batch report left by someone else with a wider mode: replaced, and made private.
    await mkdir(path.join(dir, 'reports'), { recursive: true });
    await writeFile(path.join(dir, 'reports', 'batch-report.md'), 'old\n', { mode: 0o644 });
    await chmod(path.join(dir, 'reports', 'batch-report.md'), 0o644);
    const first = await run('--parallel', '8');
    assert.equal(first.code, 3, first.stderr);
    const r = JSON.parse(first.stdout) as Report;
    assert.equal(r.status, 'partial');
    assert.equal(r.totals.mailboxes, USERS + 3);
    assert.equal(r.totals.complete, USERS - 1);
    assert.equal(r.totals.partial, 1);
    assert.equal(r.totals.failed, 3);
    const byLine = (line: number) => r.jobs.find((j) => j.line === line)!;
    assert.equal(byLine(51).status, 'partial', 'u050 has one unreadable message');
    assert.equal(byLine(51).copied, 3);
    assert.equal(byLine(USERS + 2).code, 'MM-AUTH-FAILED', 'a user the source does not have');
    assert.equal(byLine(USERS + 3).code, 'MM-AUTH-FAILED', 'a wrong password');
    assert.equal(byLine(USERS + 4).code, 'MM-BATCH-SECRET', 'an unresolvable password reference');
    assert.ok(!first.stdout.includes('not-the-password') && !first.stderr.includes('not-the-password') && !first.stderr.includes('adminpw'));
    assert.match(first.stderr, /source_password is written in the file/, 'a literal password is warned about');
    for (const j of r.jobs.filter((x) => x.status === 'complete')) {
      const i = Number(/u(\d+)@/.exec(j.source)![1]);
      assert.equal(j.copied, 1 + (i % 3) + 1, j.source);
    }
    for (const i of [1, 10, 99, 150, 200]) assert.deepEqual(await readMailbox(dest, name(i), `pw${i}`), await readMailbox(source, name(i), `pw${i}`), name(i));
    // Reports name every user and server of the batch: only their owner may read them.
    for (const file of ['batch-report.json', 'batch-report.md', path.basename(byLine(2).report!)]) {
      assert.equal((await stat(path.join(dir, 'reports', file))).mode & 0o777, 0o600, file);
    }
    const md = await readFile(path.join(dir, 'reports', 'batch-report.md'), 'utf8');
    assert.match(md, /\| 203 \| imap:\/\/u007@.* \| failed \| poor \| 0 \| 0 \| MM-AUTH-FAILED \|/);

    const status = await runCli(['batch', 'status', path.join(dir, 'users.csv'), '--state', path.join(dir, 'state.db')], {});
    assert.match(status.stdout, /203 mailboxes: 0 not started, 0 queued, 0 running, 0 waiting, 0 interrupted, 199 complete, 1 partial, 3 failed/);

    const second = await run('--parallel', '4');
    assert.equal(second.code, 3, second.stderr);
    const r2 = JSON.parse(second.stdout) as Report;
    assert.equal(r2.totals.alreadyComplete, USERS - 1);
    assert.equal(r2.totals.copied, 0, 'nothing is copied twice');
    assert.equal(r2.jobs.find((j) => j.line === 51)!.status, 'partial');
  });

  test('a configuration or list with a mistake is refused with its line and field: exit 2', async () => {
    await writeFile(path.join(dir, 'bad.yaml'), ['source:', '  url: imap://127.0.0.1:143', 'destination:', '  url: ftp://example.org', ''].join('\n'));
    const bad = await runCli(['batch', 'run', path.join(dir, 'users.csv'), '--config', path.join(dir, 'bad.yaml'), '--state', path.join(dir, 'x.db')], {});
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /MM-BATCH-CONFIG: .*bad\.yaml:4:\d+: destination\.url must be imap:\/\/HOST/);
    await writeFile(path.join(dir, 'typo.yaml'), ['source:', '  url: imap://127.0.0.1:143', '  mastr: {}', 'destination:', '  url: imap://127.0.0.1:144', ''].join('\n'));
    const typo = await runCli(['batch', 'run', path.join(dir, 'users.csv'), '--config', path.join(dir, 'typo.yaml'), '--state', path.join(dir, 'x.db')], {});
    assert.match(typo.stderr, /typo\.yaml:3:\d+: unknown field source\.mastr/);
    await writeFile(path.join(dir, 'bad.csv'), 'source_user,destination_user\nalice,alice\n,bob\n');
    const csv = await runCli(['batch', 'run', path.join(dir, 'bad.csv'), '--config', path.join(dir, 'servers.yaml'), '--state', path.join(dir, 'x.db')], {});
    assert.equal(csv.code, 2);
    assert.match(csv.stderr, /MM-BATCH-CSV: .*bad\.csv:3: source_user is empty/);
    // Checked in full at load time: a bad rule and a fractional number, with line and field.
    const runWith = (list: string, config: string) => runCli(['batch', 'run', path.join(dir, list), '--config', path.join(dir, config), '--state', path.join(dir, 'x.db')], {});
    await writeFile(path.join(dir, 'rule.yaml'), ['source:', '  url: imap://127.0.0.1:143', 'destination:', '  url: imap://127.0.0.1:144', 'rules:', "  exclude: ['(Junk']", ''].join('\n'));
    const rule = await runWith('users.csv', 'rule.yaml');
    assert.equal(rule.code, 2);
    assert.match(rule.stderr, /MM-BATCH-CONFIG: .*rule\.yaml:6:\d+: rules\.exclude: .*not a valid regular expression/);
    await writeFile(path.join(dir, 'frac.yaml'), ['source:', '  url: imap://127.0.0.1:143', 'destination:', '  url: imap://127.0.0.1:144', 'defaults: { connections: 1.5 }', ''].join('\n'));
    assert.match((await runWith('users.csv', 'frac.yaml')).stderr, /MM-BATCH-CONFIG: .*frac\.yaml:5:\d+: defaults\.connections must be a whole number/);
    // Every bad row at once, each with its line; a literal master password is warned about once, with its line.
    await writeFile(path.join(dir, 'lit.yaml'), ['source:', '  url: imap://127.0.0.1:143', '  master: { user: admin, password: Lit3ral-master }', 'destination:', '  url: imap://127.0.0.1:144', ''].join('\n'));
    await writeFile(path.join(dir, 'rows.csv'), 'source_user,destination_user\n,a\nb c,b\nok,ok\nok,ok\n"#quoted",x\n# a comment\n');
    const rows = await runWith('rows.csv', 'lit.yaml');
    assert.equal(rows.code, 2);
    assert.match(rows.stderr, /MM-BATCH-CSV: 3 bad row\(s\) in \S*rows\.csv:\n {2}\S*rows\.csv:2: source_user is empty\n {2}\S*rows\.csv:3: .*whitespace\n {2}\S*rows\.csv:5: the mailbox ok -> ok is already on line 4\n/);
    assert.equal(rows.stderr.match(/lit\.yaml:3:\d+: source\.master\.password is written in the file/g)?.length, 1, rows.stderr);
    assert.ok(!rows.stderr.includes('Lit3ral-master'));
  });
  test('admin access with SASL PLAIN authorization identities (authzid) instead of USER*MASTER; migrate --from-authzid too', async () => {
    await writeFile(
      path.join(dir, 'authzid.yaml'),
      [
        'source:',
        `  url: imap://127.0.0.1:${source.port}`,
        '  master: { user: admin, password: env:MM_SOURCE_MASTER, method: authzid }',
        'destination:',
        `  url: imap://127.0.0.1:${dest.port}`,
        '  master: { user: admin, password: env:MM_SOURCE_MASTER, method: authzid }',
        '',
      ].join('\n'),
    );
    for (const i of [301, 302]) {
      await source.addUser(name(i), `pw${i}`);
      await dest.addUser(name(i), `pw${i}`);
      await seedMailbox(source, name(i), `pw${i}`, mailbox(i));
    }
    await writeFile(path.join(dir, 'authzid.csv'), `source_user\n${name(301)}\n`);
    const r = await runCli(['batch', 'run', path.join(dir, 'authzid.csv'), '--config', path.join(dir, 'authzid.yaml'), '--state', path.join(dir, 'authzid.db'), '--report-dir', path.join(dir, 'r2'), '--json'], {
      MM_SOURCE_MASTER: 'adminpw',
    });
    assert.equal(r.code, 0, r.stderr + r.stdout);
    assert.deepEqual(await readMailbox(dest, name(301), 'pw301'), await readMailbox(source, name(301), 'pw301'));
    // The ledger's record of that mailbox is found under the same names: the admin URL and the user acted as.
    const audit = await runCli([
      'report',
      '--from', `imap://admin@127.0.0.1:${source.port}`, '--from-authzid', name(301),
      '--to', `imap://admin@127.0.0.1:${dest.port}`, '--to-authzid', name(301),
      '--state', path.join(dir, 'authzid.db'), '--json',
    ]);
    assert.equal(audit.code, 0, audit.stderr);
    const copies = (JSON.parse(audit.stdout) as { folders: { copies: number }[] }).folders.reduce((n, f) => n + f.copies, 0);
    assert.equal(copies, (await readMailbox(source, name(301), 'pw301')).reduce((n, f) => n + f.messages.length, 0));
    const m = await runCli(
      ['migrate', '--from', `imap://admin@127.0.0.1:${source.port}`, '--from-authzid', name(302), '--to', `imap://admin@127.0.0.1:${dest.port}`, '--to-authzid', name(302), '--no-state', '--json'],
      { MAILMOVER_FROM_PASSWORD: 'adminpw', MAILMOVER_TO_PASSWORD: 'adminpw' },
    );
    assert.equal(m.code, 0, m.stderr);
    assert.match((JSON.parse(m.stdout) as { source: { url: string } }).source.url, /\(as u302\)$/);
    assert.deepEqual(await readMailbox(dest, name(302), 'pw302'), await readMailbox(source, name(302), 'pw302'));
  });
});
