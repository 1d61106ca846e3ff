/**
 * Notifications when a batch ends, against real parts: a small batch between two real Dovecot
 * servers, a real SMTP receiver (smtp-server on loopback, with AUTH) and a real HTTP webhook
 * (node:http on loopback). The received e-mail carries the summary and the batch reports as they
 * are on disk; the webhook gets the same JSON. A dead SMTP port and a webhook answering 500 twice
 * change nothing of the batch's outcome: stderr names MM-NOTIFY-FAILED and no secret appears.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer as createHttpServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { SMTPServer } from 'smtp-server';
import { startDovecot, type PlainDovecotServer } from '../helpers/dovecot.js';
import { seedMailbox } from '../helpers/fixture.js';
import { runCli } from '../helpers/cli.js';

const SMTP_PW = 'smtp-secret-7c1e9a';
const HOOK_TOKEN = 'Bearer hook-secret-42b8d0';

interface Mail {
  from: string;
  to: string[];
  raw: string;
}

/** The parts of a multipart message: headers (lower-cased names) and decoded body. */
function parts(raw: string): { headers: Record<string, string>; body: Buffer }[] {
  const [head] = raw.split('\r\n\r\n', 1);
  const boundary = /boundary="?([^";\r\n]+)"?/i.exec(head!)?.[1];
  assert.ok(boundary, 'the message is multipart');
  return raw
    .split(`--${boundary}`)
    .slice(1, -1)
    .map((p) => {
      const at = p.indexOf('\r\n\r\n');
      const headers: Record<string, string> = {};
      for (const line of p.slice(0, at).replace(/\r\n[ \t]+/g, ' ').trim().split('\r\n')) {
        const i = line.indexOf(':');
        headers[line.slice(0, i).toLowerCase()] = line.slice(i + 1).trim();
      }
      const text = p.slice(at + 4).replace(/\r\n$/, '');
      const enc = (headers['content-transfer-encoding'] ?? '7bit').toLowerCase();
      const body =
        enc === 'base64'
          ? Buffer.from(text.replace(/\s+/g, ''), 'base64')
          : enc === 'quoted-printable'
            ? Buffer.from(text.replace(/=\r\n/g, '').replace(/=([0-9A-F]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16))), 'latin1')
            : Buffer.from(text, 'utf8');
      return { headers, body };
    });
}

describe('batch notifications', () => {
  let source: PlainDovecotServer;
  let dest: PlainDovecotServer;
  let dir: string;
  let smtp: SMTPServer;
  let smtpPort: number;
  let hook: Server;
  let hookPort: number;
  let hookStatus = 200;
  const mails: Mail[] = [];
  const auths: { user: string; pass: string }[] = [];
  const posts: { headers: IncomingHttpHeaders; body: string }[] = [];

  before(async () => {
    [source, dest] = await Promise.all([startDovecot({ tls: false }), startDovecot({ tls: false })]);
    dir = await mkdtemp(path.join(os.tmpdir(), 'mm-notify-'));
    for (const u of ['n1', 'n2']) {
      await source.addUser(u, `pw-${u}`);
      await dest.addUser(u, `pw-${u}`);
      await seedMailbox(source, u, `pw-${u}`, [
        { path: ['INBOX'], subscribed: true, messages: [{ raw: Buffer.from(`Subject: ${u}\r\nMessage-ID: <${u}@notify.test>\r\n\r\nhello\r\n`), flags: [], internalDate: new Date(Date.UTC(2024, 0, 1)) }] },
      ]);
    }
    // The receiver: plain SMTP on loopback (no STARTTLS offered), AUTH accepted and recorded.
    smtp = new SMTPServer({
      hideSTARTTLS: true,
      allowInsecureAuth: true,
      logger: false,
      onAuth(auth, _session, cb) {
        auths.push({ user: auth.username ?? '', pass: auth.password ?? '' });
        cb(null, { user: auth.username });
      },
      onData(stream, session, cb) {
        const chunks: Buffer[] = [];
        stream.on('data', (c: Buffer) => chunks.push(c));
        stream.on('end', () => {
          const from = session.envelope.mailFrom;
          mails.push({ from: from ? from.address : '', to: session.envelope.rcptTo.map((r) => r.address), raw: Buffer.concat(chunks).toString('utf8') });
          cb();
        });
      },
    });
    await new Promise<void>((resolve) => smtp.listen(0, '127.0.0.1', resolve));
    smtpPort = (smtp.server.address() as AddressInfo).port;
    hook = createHttpServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        posts.push({ headers: req.headers, body });
        res.statusCode = hookStatus;
        res.end(hookStatus === 200 ? 'ok' : 'broken');
      });
    });
    await new Promise<void>((resolve) => hook.listen(0, '127.0.0.1', resolve));
    hookPort = (hook.address() as AddressInfo).port;
    await writeFile(path.join(dir, 'users.csv'), 'source_user,destination_user\nn1,n1\nn2,n2\nnosuchuser,n1\n');
  });
  after(async () => {
    await Promise.all([source?.stop(), dest?.stop(), new Promise((r) => smtp?.close(() => r(undefined))), new Promise((r) => hook?.close(() => r(undefined)))]);
    await rm(dir, { recursive: true, force: true });
  });

  const config = (notify: string[]) =>
    writeFile(
      path.join(dir, 'servers.yaml'),
      [
        'source:',
        `  url: imap://127.0.0.1:${source.port}`,
        '  master: { user: admin, password: env:MM_MASTER }',
        'destination:',
        `  url: imap://127.0.0.1:${dest.port}`,
        '  master: { user: admin, password: env:MM_MASTER }',
        'defaults: { connections: 1, retries: 1 }',
        ...notify,
        '',
      ].join('\n'),
    );
  const run = (reports: string, ...extra: string[]) =>
    runCli(['batch', 'run', path.join(dir, 'users.csv'), '--config', path.join(dir, 'servers.yaml'), '--state', path.join(dir, 'state.db'), '--report-dir', path.join(dir, reports), '--again', ...extra], {
      MM_MASTER: 'adminpw',
      MM_SMTP_PW: SMTP_PW,
      MM_HOOK_TOKEN: HOOK_TOKEN,
    });

  test('--notify-email and --notify-webhook: the summary and both reports arrive by e-mail, the webhook gets the JSON report', async () => {
    await config([]);
    const r = await run(
      'reports-1',
      '--notify-email', 'ops@example.com,lead@example.com',
      '--notify-smtp', `smtp://notifier@127.0.0.1:${smtpPort}`,
      '--notify-smtp-password', 'env:MM_SMTP_PW',
      '--notify-from', 'mailmover@example.com',
      '--notify-webhook', `http://127.0.0.1:${hookPort}/hook`,
    );
    assert.equal(r.code, 3, r.stderr);
    assert.doesNotMatch(r.stderr, /MM-NOTIFY-FAILED/);
    const onDisk = await readFile(path.join(dir, 'reports-1', 'batch-report.json'), 'utf8');
    const report = JSON.parse(onDisk) as { status: string; totals: { complete: number; failed: number } };
    assert.equal(report.status, 'partial');
    assert.deepEqual([report.totals.complete, report.totals.failed], [2, 1]);

    assert.deepEqual(auths, [{ user: 'notifier', pass: SMTP_PW }]);
    assert.equal(mails.length, 1);
    const mail = mails[0]!;
    assert.equal(mail.from, 'mailmover@example.com');
    assert.deepEqual(mail.to.sort(), ['lead@example.com', 'ops@example.com']);
    const subject = /^Subject: (.*(?:\r\n[ \t].*)*)/m.exec(mail.raw)![1]!.replace(/\r\n[ \t]+/g, ' ');
    // RFC 2047 encoded words (the quotes in the subject make nodemailer encode it).
    const decoded = subject.replace(/=\?UTF-8\?Q\?(.*?)\?=\s*/gi, (_, q: string) => Buffer.from(q.replace(/_/g, ' ').replace(/=([0-9A-F]{2})/g, (__, h: string) => String.fromCharCode(parseInt(h, 16))), 'latin1').toString('utf8'));
    assert.equal(decoded, 'mailmover batch "users.csv": partial');
    const p = parts(mail.raw);
    const text = p.find((x) => x.headers['content-type']?.startsWith('text/plain'))!.body.toString('utf8');
    assert.match(text, /Mailboxes: 3 \(complete 2, of which 0 from an earlier run; partial 0; failed 1\)/);
    assert.match(text, /Messages copied: 2;/);
    assert.match(text, /line 4: imap:\/\/nosuchuser@127\.0\.0\.1:\d+ -> .*: failed MM-[A-Z-]+/);
    const attached = (name: string) => p.find((x) => (x.headers['content-disposition'] ?? '').includes(`filename=${name}`) || (x.headers['content-disposition'] ?? '').includes(`filename="${name}"`))?.body.toString('utf8');
    assert.deepEqual(JSON.parse(attached('batch-report.json') ?? 'null'), JSON.parse(onDisk));
    assert.equal(attached('batch-report.md'), await readFile(path.join(dir, 'reports-1', 'batch-report.md'), 'utf8'));

    assert.equal(posts.length, 1);
    assert.equal(posts[0]!.headers['content-type'], 'application/json');
    assert.deepEqual(JSON.parse(posts[0]!.body), JSON.parse(onDisk));
    for (const out of [r.stdout, r.stderr]) assert.ok(!out.includes(SMTP_PW));
  });

  test('notify: in the YAML, a dead SMTP port and a webhook answering 500 twice: same outcome and exit code, MM-NOTIFY-FAILED on stderr and in the log, no secret', async () => {
    const dead = createNetServer();
    await new Promise<void>((resolve) => dead.listen(0, '127.0.0.1', resolve));
    const deadPort = (dead.address() as AddressInfo).port;
    await new Promise((resolve) => dead.close(resolve));
    await config([
      'notify:',
      `  email: { to: [ops@example.com], from: mailmover@example.com, smtp: "smtp://notifier@127.0.0.1:${deadPort}", password: env:MM_SMTP_PW }`,
      `  webhook: { url: "http://127.0.0.1:${hookPort}/hook", header: { Authorization: env:MM_HOOK_TOKEN } }`,
    ]);
    hookStatus = 500;
    posts.length = 0;
    const mailsBefore = mails.length;
    const log = path.join(dir, 'notify.log');
    const r = await run('reports-2', '--log', log);
    assert.equal(r.code, 3, r.stderr);
    const report = JSON.parse(await readFile(path.join(dir, 'reports-2', 'batch-report.json'), 'utf8')) as { status: string; totals: { complete: number; failed: number } };
    assert.deepEqual([report.status, report.totals.complete, report.totals.failed], ['partial', 2, 1]);
    assert.match(r.stderr, /MM-NOTIFY-FAILED: the e-mail to ops@example\.com via smtp:\/\/127\.0\.0\.1:\d+ failed: .*ECONNREFUSED/);
    assert.match(r.stderr, /MM-NOTIFY-FAILED: the webhook http:\/\/127\.0\.0\.1:\d+\/… failed: the POST failed \(2 attempts\): HTTP 500/);
    assert.equal(posts.length, 2, 'one retry after a 5xx');
    assert.equal(posts[0]!.headers.authorization, HOOK_TOKEN);
    assert.equal(mails.length, mailsBefore);
    const logText = await readFile(log, 'utf8');
    assert.match(logText, /MM-NOTIFY-FAILED/);
    for (const out of [r.stdout, r.stderr, logText]) {
      assert.ok(!out.includes(SMTP_PW), 'no SMTP password');
      assert.ok(!out.includes('hook-secret-42b8d0'), 'no webhook token');
    }
  });

  test('a bad notify: part is refused at load with its line and field (MM-BATCH-CONFIG), before anything runs', async () => {
    await config(['notify:', '  email: { to: [not-an-address] }']);
    const r = await run('reports-3');
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /MM-BATCH-CONFIG/);
    assert.match(r.stderr, /servers\.yaml:9:\d+: notify\.email\.to: "not-an-address" is not an e-mail address/);
    await config(['notify:', '  webhook: { url: "ftp://hooks.example.com/x" }']);
    const r2 = await run('reports-3');
    assert.match(r2.stderr, /servers\.yaml:9:\d+: notify\.webhook\.url: the webhook URL must be http:\/\/ or https:\/\//);
  });
});
