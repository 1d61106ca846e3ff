/**
 * Bad input and hostile conditions: each gets a stable code, the documented exit code, a bounded
 * time, no password in the output, and nothing written at the destination when it should not be.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, type Server } from 'node:net';
import { startDovecot, type DovecotServer } from '../helpers/dovecot.js';
import { readMailbox, seedMailbox, type FixtureFolder } from '../helpers/fixture.js';
import { runCli } from '../helpers/cli.js';

const SECRET = 'Sup3r-s3cret-pw';
const documented = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8');

/** Asserts the run failed with `code`, exit `exit`, and that the code is documented. */
function assertFailure(run: { code: number | null; stdout: string; stderr: string }, exit: number, code: string): void {
  assert.equal(run.code, exit, `exit code; stderr: ${run.stderr}\nstdout: ${run.stdout}`);
  assert.ok((run.stdout + run.stderr).includes(code), `expected ${code} in output:\n${run.stderr}\n${run.stdout}`);
  assert.ok(documented.includes(`## ${code}`), `${code} is documented in docs/errors.md`);
  assert.ok(!(run.stdout + run.stderr).includes(SECRET), 'the password never appears in the output');
}

const small: FixtureFolder[] = [
  {
    path: ['INBOX'],
    subscribed: true,
    messages: [{ raw: Buffer.from('From: a@example.org\r\nSubject: one\r\nMessage-ID: <one@x>\r\n\r\nbody\r\n'), flags: ['\\Seen'], internalDate: new Date('2021-03-04T05:06:07Z') }],
  },
  {
    path: ['Keep', 'Me'],
    subscribed: true,
    messages: [{ raw: Buffer.from('From: a@example.org\r\nSubject: two\r\nMessage-ID: <two@x>\r\n\r\nbody\r\n'), flags: [], internalDate: new Date('2022-03-04T05:06:07Z') }],
  },
];

describe('bad input', () => {
  let server: DovecotServer;
  before(async () => {
    server = await startDovecot();
    await server.addUser('src', SECRET);
    await server.addUser('dst', 'dst-pw');
    await seedMailbox(server, 'src', SECRET, small);
  });
  after(async () => server?.stop());

  test('wrong password: MM-AUTH-FAILED, exit 4, nothing written at the destination', async () => {
    await server.addUser('empty', 'empty-pw');
    const before = await readMailbox(server, 'empty', 'empty-pw');
    const log = join(mkdtempSync(join(tmpdir(), 'mm-log-')), 'run.log');
    const run = await runCli(['migrate', '--from', server.url('src'), '--to', server.url('empty'), '--from-tls-insecure', '--to-tls-insecure', '--log', log], {
      MAILMOVER_FROM_PASSWORD: SECRET + 'x',
      MAILMOVER_TO_PASSWORD: 'empty-pw',
    });
    assertFailure(run, 4, 'MM-AUTH-FAILED');
    // The structured log is JSON lines, names the failure, and never holds a password.
    const lines = readFileSync(log, 'utf8').trim().split('\n');
    const entries = lines.map((l) => JSON.parse(l) as { msg?: string; code?: string; status?: string });
    assert.ok(entries.some((e) => e.status === 'failed'), 'the log records the outcome');
    assert.ok(!readFileSync(log, 'utf8').includes(SECRET), 'no password in the log');
    assert.deepEqual(await readMailbox(server, 'empty', 'empty-pw'), before);
    // And the same when the destination password is the wrong one.
    const run2 = await runCli(['migrate', '--from', server.url('src'), '--to', server.url('empty'), '--from-tls-insecure', '--to-tls-insecure'], {
      MAILMOVER_FROM_PASSWORD: SECRET,
      MAILMOVER_TO_PASSWORD: 'nope',
    });
    assertFailure(run2, 4, 'MM-AUTH-FAILED');
    assert.deepEqual(await readMailbox(server, 'empty', 'empty-pw'), before);
  });

  test('nothing listening: MM-CONNECT-REFUSED, exit 5, quickly', async () => {
    const port = await freePort();
    const run = await runCli(['migrate', '--from', `imap://src@127.0.0.1:${port}`, '--to', server.url('dst')], { MAILMOVER_FROM_PASSWORD: SECRET, MAILMOVER_TO_PASSWORD: 'dst-pw' });
    assertFailure(run, 5, 'MM-CONNECT-REFUSED');
    assert.ok(run.ms < 15_000, `took ${run.ms} ms`);
  });

  test('a server that accepts but never greets: MM-CONNECT-TIMEOUT within --timeout', async () => {
    const silent: Server = createServer(() => undefined);
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const port = (silent.address() as { port: number }).port;
    try {
      const run = await runCli(['migrate', '--from', `imap://src@127.0.0.1:${port}`, '--to', server.url('dst'), '--timeout', '2', '--to-tls-insecure'], {
        MAILMOVER_FROM_PASSWORD: SECRET,
        MAILMOVER_TO_PASSWORD: 'dst-pw',
      });
      assertFailure(run, 5, 'MM-CONNECT-TIMEOUT');
      assert.ok(run.ms < 15_000, `took ${run.ms} ms`);
    } finally {
      silent.close();
    }
  });

  test('an unverifiable certificate: MM-TLS-CERT; trusting the CA makes it work', async () => {
    const args = ['migrate', '--from', server.url('src', { tls: true }), '--to', server.url('dst', { tls: true }), '--json'];
    const env = { MAILMOVER_FROM_PASSWORD: SECRET, MAILMOVER_TO_PASSWORD: 'dst-pw' };
    assertFailure(await runCli(args, env), 5, 'MM-TLS-CERT');
    const ok = await runCli(args, { ...env, NODE_EXTRA_CA_CERTS: server.caFile });
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal((JSON.parse(ok.stdout) as { totals: { copied: number } }).totals.copied, 2);
  });

  test('usage and configuration errors exit 2 and say what to fix', async () => {
    const env = { MAILMOVER_FROM_PASSWORD: SECRET, MAILMOVER_TO_PASSWORD: 'dst-pw' };
    assertFailure(await runCli(['migrate', '--from', 'alice@host', '--to', server.url('dst')], env), 2, 'MM-CONFIG-URL');
    assertFailure(await runCli(['migrate', '--from', 'pop3://a@h', '--to', server.url('dst')], env), 2, 'MM-CONFIG-URL');
    const portZero = await runCli(['migrate', '--from', 'imap://src@127.0.0.1:0', '--to', server.url('dst')], env);
    assertFailure(portZero, 2, 'MM-CONFIG-URL');
    assert.match(portZero.stderr, /port 0 is not a TCP port/);
    assertFailure(await runCli(['migrate', '--from', 'imap://src@127.0.0.1:65536', '--to', server.url('dst')], env), 2, 'MM-CONFIG-URL');
    const inUrl = await runCli(['migrate', '--from', `imap://src:${SECRET}@127.0.0.1:${server.port}`, '--to', server.url('dst')], env);
    assertFailure(inUrl, 2, 'MM-CONFIG-PASSWORD-IN-URL');
    const noPw = await runCli(['migrate', '--from', server.url('src'), '--to', server.url('dst')], { MAILMOVER_TO_PASSWORD: 'dst-pw' });
    assertFailure(noPw, 2, 'MM-CONFIG-NO-PASSWORD');
    assert.match(noPw.stderr, /--from-password-file/);
    assertFailure(await runCli(['migrate', '--from', server.url('src'), '--to', server.url('dst'), '--from-password-file', '/nonexistent/pw'], env), 2, 'MM-CONFIG-PASSWORD-FILE');
    assertFailure(await runCli(['migrate', '--to', server.url('dst')], env), 2, 'MM-USAGE');
    assertFailure(await runCli(['migrate', '--from', server.url('src'), '--to', server.url('dst'), '--connections', 'lots'], env), 2, 'MM-CONFIG-OPTION');
    const ends = ['--from', server.url('src'), '--to', server.url('dst')];
    for (const bad of [
      ['--scan', 'http://127.0.0.1:3310'],
      ['--scan', 'clamd://127.0.0.1'],
      ['--scan', 'clamd://relative/sock'],
      ['--scan-policy', 'skip'],
      ['--scan-fail-open'],
      ['--scan', 'clamd://127.0.0.1:3310', '--scan-policy', 'quarantine', '--quarantine-dir', '/tmp/x'],
      ['--scan', 'clamd://127.0.0.1:3310', '--scan-policy', 'skip', '--quarantine-dir', '/etc/passwd/quarantine'],
      ['--max-message-size', 'huge'],
      ['--bad-item-limit', '-1'],
      ['--retries', '0'],
      ['--retry-delay', 'soon'],
    ]) {
      assertFailure(await runCli(['migrate', ...ends, ...bad], env), 2, 'MM-CONFIG-OPTION');
    }
    const policy = await runCli(['migrate', ...ends, '--scan', 'clamd://127.0.0.1:3310', '--scan-policy', 'delete'], env);
    assert.equal(policy.code, 2, policy.stderr);
  });
});

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}
