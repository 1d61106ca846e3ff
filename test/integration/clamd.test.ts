/**
 * The clamd client against a real clamd (EICAR-only signatures, see test/helpers/clamd.ts) over TCP
 * and its unix socket: verdicts, the size limit, a crash and a restart; against sockets of the test's
 * own for what a real clamd does not do on demand (silence, an unknown answer, a close without one);
 * and scan-URL parsing.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { ClamdClient, describeAddress, parseScanUrl, type ClamdAddress } from '../../src/scan/clamd.js';
import { isMigrateError, type MigrateError } from '../../src/core/errors.js';
import { EICAR, eicarMessage, startClamd, type ClamdServer } from '../helpers/clamd.js';
import { freePort } from '../helpers/server-process.js';

/** A clean message of about `bytes` bytes: headers, then lines of text. */
function cleanMessage(bytes: number, id = 'clean'): Buffer {
  const head = `From: a@example.org\r\nTo: b@example.org\r\nSubject: clean ${id}\r\nMessage-ID: <${id}@example.org>\r\n\r\n`;
  const line = 'All quiet on the loopback interface, nothing to see here.\r\n';
  return Buffer.from(head + line.repeat(Math.max(1, Math.ceil((bytes - head.length) / line.length))), 'latin1');
}

/** Asserts a rejection is MM-SCAN-UNAVAILABLE for `address` (scope mailbox, retry later) with `what` in its message. */
function unavailable(address: ClamdAddress, what: RegExp): (err: unknown) => boolean {
  return (err) => {
    assert.ok(isMigrateError(err), `expected a MigrateError, got ${String(err)}`);
    const e = err as MigrateError;
    assert.equal(e.code, 'MM-SCAN-UNAVAILABLE');
    assert.equal(e.scope, 'mailbox');
    assert.equal(e.retry, 'later');
    assert.ok(e.message.startsWith(`${describeAddress(address)}: `), e.message);
    assert.match(e.message, what);
    return true;
  };
}

/** A loopback server of the test's own; `onConnection` decides what it does with each client besides reading. */
async function fakeClamd(onConnection: (socket: Socket) => void): Promise<{ address: ClamdAddress; sockets: Socket[]; close: () => Promise<void> }> {
  const sockets: Socket[] = [];
  const server: Server = createServer((socket) => {
    sockets.push(socket);
    socket.on('error', () => undefined);
    onConnection(socket);
    // Read (and drop) what the client sends: a paused socket would never notice the client's close.
    socket.resume();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    address: { kind: 'tcp', host: '127.0.0.1', port },
    sockets,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Resolves when the server side of a connection has closed (the client destroyed its socket). */
const closed = (socket: Socket) => new Promise<void>((resolve) => (socket.closed ? resolve() : socket.once('close', () => resolve())));

describe('clamd client against a real clamd', () => {
  let small: ClamdServer; // StreamMaxLength 1M
  let large: ClamdServer; // StreamMaxLength 10M

  before(async () => {
    [small, large] = await Promise.all([startClamd({ streamMaxLength: '1M' }), startClamd({ streamMaxLength: '10M' })]);
  });
  after(async () => {
    await Promise.all([small?.stop(), large?.stop()]);
  });

  for (const transport of ['tcp', 'unix'] as const) {
    const client = (server: ClamdServer) => new ClamdClient(parseScanUrl(transport === 'tcp' ? server.url() : server.socketUrl()));

    describe(`over ${transport === 'tcp' ? 'TCP' : 'the unix socket'}`, () => {
      test('PING answers PONG', async () => {
        await client(small).ping();
      });

      test('a clean message is clean', async () => {
        assert.deepEqual(await client(small).scan(cleanMessage(20_000)), { status: 'clean' });
      });

      test('EICAR as the text body is infected', async () => {
        const verdict = await client(small).scan(eicarMessage('inline', `inline-${transport}`));
        assert.equal(verdict.status, 'infected');
        assert.match(verdict.status === 'infected' ? verdict.signature : '', /EICAR/);
      });

      test('EICAR as a base64 attachment is infected', async () => {
        const verdict = await client(small).scan(eicarMessage('attachment', `attachment-${transport}`));
        assert.equal(verdict.status, 'infected');
        assert.match(verdict.status === 'infected' ? verdict.signature : '', /EICAR/);
      });

      test('2 MB against StreamMaxLength 1M is too large, every time', async () => {
        const body = cleanMessage(2 * 1024 * 1024);
        // Several rounds: the answer races with the client's writes failing (EPIPE), see src/scan/clamd.ts.
        for (let i = 0; i < 30; i++) {
          assert.deepEqual(await client(small).scan(body), { status: 'too-large', reply: 'INSTREAM size limit exceeded. ERROR' });
        }
      });

      test('5 MB under StreamMaxLength 10M streams through and is clean', async () => {
        assert.deepEqual(await client(large).scan(cleanMessage(5 * 1024 * 1024)), { status: 'clean' });
      });
    });
  }

  test('parallel scans on one client each get their own verdict', async () => {
    const c = new ClamdClient(parseScanUrl(small.url()), { chunkBytes: 4096 });
    const verdicts = await Promise.all([c.scan(cleanMessage(300_000)), c.scan(eicarMessage('attachment', 'par')), c.scan(cleanMessage(1_500_000))]);
    assert.deepEqual(verdicts.map((v) => v.status), ['clean', 'infected', 'too-large']);
  });
});

describe("clamd's MaxFileSize and MaxScanSize (within StreamMaxLength)", () => {
  let silent: ClamdServer; // MaxFileSize 1M, no AlertExceedsMax
  let alerting: { file: ClamdServer; scan: ClamdServer }; // AlertExceedsMax yes

  before(async () => {
    const limits = { streamMaxLength: '10M' };
    let file: ClamdServer;
    let scan: ClamdServer;
    [silent, file, scan] = await Promise.all([
      startClamd({ ...limits, limits: { maxFileSize: '1M' } }),
      startClamd({ ...limits, limits: { maxFileSize: '1M', alertExceedsMax: true } }),
      startClamd({ ...limits, limits: { maxScanSize: '1M', alertExceedsMax: true } }),
    ]);
    alerting = { file, scan };
  });
  after(async () => {
    await Promise.all([silent?.stop(), alerting?.file.stop(), alerting?.scan.stop()]);
  });

  /** 3 MB with the test virus in its first bytes. */
  const infectedBig = () => Buffer.concat([eicarMessage('inline', 'big-infected'), cleanMessage(3 * 1024 * 1024)]);

  test('without AlertExceedsMax, clamd answers OK for a message over MaxFileSize it did not scan (what README warns of)', async () => {
    assert.deepEqual(await new ClamdClient(parseScanUrl(silent.url())).scan(infectedBig()), { status: 'clean' });
  });

  test('with AlertExceedsMax, Heuristics.Limits.Exceeded is too large, not a finding', async () => {
    for (const [server, limit] of [[alerting.file, 'MaxFileSize'], [alerting.scan, 'MaxScanSize']] as const) {
      const c = new ClamdClient(parseScanUrl(server.url()));
      for (const body of [infectedBig(), cleanMessage(3 * 1024 * 1024)]) {
        assert.deepEqual(await c.scan(body), { status: 'too-large', reply: `stream: Heuristics.Limits.Exceeded.${limit} FOUND` });
      }
      assert.equal((await c.scan(eicarMessage('inline', 'small'))).status, 'infected', 'a small one is still scanned');
    }
  });
});

describe('clamd crash and restart', () => {
  let server: ClamdServer;

  before(async () => {
    server = await startClamd();
  });
  after(async () => {
    await server?.stop();
  });

  test('a killed clamd is MM-SCAN-UNAVAILABLE on both transports; after restart scans work again', async () => {
    const tcp = new ClamdClient(parseScanUrl(server.url()));
    const unix = new ClamdClient(parseScanUrl(server.socketUrl()));
    const firstPid = server.pid;
    await server.kill();
    await assert.rejects(tcp.scan(cleanMessage(1000)), unavailable(tcp.address, /connection refused/));
    // The socket file stays behind after SIGKILL: refused, not missing.
    await assert.rejects(unix.scan(cleanMessage(1000)), unavailable(unix.address, /connection refused/));
    await assert.rejects(unix.ping(), unavailable(unix.address, /connection refused/));

    await server.restart();
    assert.notEqual(server.pid, firstPid);
    assert.deepEqual(await tcp.scan(cleanMessage(1000)), { status: 'clean' });
    assert.equal((await unix.scan(eicarMessage('inline', 'after-restart'))).status, 'infected');
  });
});

describe('clamd client failures', () => {
  test('nothing listening: connection refused', async () => {
    const address: ClamdAddress = { kind: 'tcp', host: '127.0.0.1', port: await freePort() };
    await assert.rejects(new ClamdClient(address).scan(cleanMessage(100)), unavailable(address, /connection refused/));
  });

  test('no socket file: says so', async () => {
    const address: ClamdAddress = { kind: 'unix', path: '/nonexistent/mailmover/clamd.sock' };
    await assert.rejects(new ClamdClient(address).ping(), unavailable(address, /does not exist/));
  });

  test('a server that accepts and never answers times out quickly (the scan, then the PING that asks whether it is up), and the sockets are closed', async () => {
    const fake = await fakeClamd(() => undefined);
    try {
      const started = Date.now();
      await assert.rejects(new ClamdClient(fake.address, { timeoutMs: 300 }).scan(cleanMessage(200_000)), unavailable(fake.address, /timed out/));
      assert.ok(Date.now() - started < 2000, `took ${Date.now() - started} ms`);
      assert.equal(fake.sockets.length, 2);
      await Promise.all(fake.sockets.map(closed));
    } finally {
      await fake.close();
    }
  });

  test('a scan that stays silent after the whole message while the server answers PING is unscanned, not a dead scanner', async () => {
    const fake = await fakeClamd((socket) =>
      socket.once('data', (d: Buffer) => {
        if (d.toString('latin1').startsWith('zPING\0')) socket.end('PONG\0');
      }),
    );
    try {
      const verdict = await new ClamdClient(fake.address, { timeoutMs: 300 }).scan(cleanMessage(1000));
      assert.equal(verdict.status, 'unscanned');
      assert.match((verdict as { reason: string }).reason, /no verdict within 300 ms after the whole message was sent/);
    } finally {
      await fake.close();
    }
  });

  test('an abort rejects with the signal reason and closes the socket; an aborted signal connects nowhere', async () => {
    const fake = await fakeClamd(() => undefined);
    try {
      const controller = new AbortController();
      const reason = new Error('stop now');
      const pending = new ClamdClient(fake.address).scan(cleanMessage(200_000), controller.signal);
      setTimeout(() => controller.abort(reason), 50);
      await assert.rejects(pending, (err) => err === reason);
      await closed(fake.sockets[0]!);

      await assert.rejects(new ClamdClient(fake.address).scan(cleanMessage(10), AbortSignal.abort(reason)), (err) => err === reason);
      await assert.rejects(new ClamdClient(fake.address).ping(AbortSignal.abort()), { name: 'AbortError' });
      assert.equal(fake.sockets.length, 1);
    } finally {
      await fake.close();
    }
  });

  test('a close without an answer (what a killed clamd looks like) is a failure, never clean', async () => {
    const fake = await fakeClamd((socket) => socket.once('data', () => setTimeout(() => socket.end(), 20)));
    try {
      await assert.rejects(new ClamdClient(fake.address).scan(cleanMessage(1000)), unavailable(fake.address, /without an answer/));
    } finally {
      await fake.close();
    }
  });

  test("clamd's error answer for a stream is an unscanned verdict carrying the answer", async () => {
    const answer = "stream: Can't allocate memory ERROR";
    const fake = await fakeClamd((socket) => socket.once('data', () => socket.end(`${answer}\0`)));
    try {
      assert.deepEqual(await new ClamdClient(fake.address).scan(cleanMessage(1000)), { status: 'unscanned', reason: `clamd answered ${JSON.stringify(answer)}`, reply: answer });
    } finally {
      await fake.close();
    }
  });

  test('an answer that is not clamd\'s is a failure carrying the answer', async () => {
    const answer = 'HTTP/1.1 400 Bad Request';
    const fake = await fakeClamd((socket) => socket.once('data', () => socket.end(`${answer}\0`)));
    try {
      await assert.rejects(new ClamdClient(fake.address).scan(cleanMessage(1000)), (err) => {
        unavailable(fake.address, /instead of a verdict/)(err);
        assert.equal((err as MigrateError).serverResponse, answer);
        return true;
      });
    } finally {
      await fake.close();
    }
  });

  test('an answer without NUL is read until the close', async () => {
    const fake = await fakeClamd((socket) => socket.once('data', () => socket.end('stream: Some.Thing FOUND\n')));
    try {
      assert.deepEqual(await new ClamdClient(fake.address).scan(cleanMessage(1000)), { status: 'infected', signature: 'Some.Thing' });
    } finally {
      await fake.close();
    }
  });
});

describe('parseScanUrl', () => {
  test('accepts clamd://HOST:PORT and clamd:///PATH', () => {
    assert.deepEqual(parseScanUrl('clamd://127.0.0.1:3310'), { kind: 'tcp', host: '127.0.0.1', port: 3310 });
    assert.deepEqual(parseScanUrl('clamd://localhost:1'), { kind: 'tcp', host: 'localhost', port: 1 });
    assert.deepEqual(parseScanUrl('clamd://av-1.example.org:65535'), { kind: 'tcp', host: 'av-1.example.org', port: 65535 });
    assert.deepEqual(parseScanUrl('clamd://[::1]:3310'), { kind: 'tcp', host: '::1', port: 3310 });
    assert.deepEqual(parseScanUrl('clamd://[2001:db8::5]:10'), { kind: 'tcp', host: '2001:db8::5', port: 10 });
    assert.deepEqual(parseScanUrl('clamd:///run/clamav/clamd.ctl'), { kind: 'unix', path: '/run/clamav/clamd.ctl' });
    assert.deepEqual(parseScanUrl('clamd:///tmp/a dir/clamd.sock'), { kind: 'unix', path: '/tmp/a dir/clamd.sock' });
  });

  for (const bad of [
    '',
    '127.0.0.1:3310',
    'tcp://127.0.0.1:3310',
    'clamd:/run/clamd.sock',
    'clamd://',
    'clamd://127.0.0.1',
    'clamd://127.0.0.1:',
    'clamd://127.0.0.1:0',
    'clamd://127.0.0.1:65536',
    'clamd://127.0.0.1:33x',
    'clamd://127.0.0.1:3310/',
    'clamd://:3310',
    'clamd://::1:3310',
    'clamd://[::1]',
    'clamd://[not-v6]:3310',
    'clamd://user@host:3310',
    'clamd://bad_host:3310',
    'clamd://relative/clamd.sock',
    'clamd:///run/clamav/',
    `clamd:///${'x'.repeat(120)}`,
  ]) {
    test(`refuses ${JSON.stringify(bad.length > 40 ? `${bad.slice(0, 40)}...` : bad)}`, () => {
      assert.throws(() => parseScanUrl(bad), (err) => {
        assert.ok(isMigrateError(err));
        assert.equal(err.code, 'MM-CONFIG-OPTION');
        assert.equal(err.scope, 'config');
        assert.match(err.message, /clamd:\/\/HOST:PORT/);
        assert.match(err.message, /clamd:\/\/\/ABSOLUTE\/PATH/);
        return true;
      });
    });
  }

  test('describeAddress', () => {
    assert.equal(describeAddress(parseScanUrl('clamd://127.0.0.1:3310')), 'clamd at 127.0.0.1:3310');
    assert.equal(describeAddress(parseScanUrl('clamd://[::1]:3310')), 'clamd at [::1]:3310');
    assert.equal(describeAddress(parseScanUrl('clamd:///run/clamd.sock')), 'clamd at /run/clamd.sock');
  });
});

describe('EICAR test material', () => {
  test('is the 68-byte string, and no file of ours holds it or its signature part whole', () => {
    assert.equal(EICAR.length, 68);
    const mark = ['EICAR', 'STANDARD', 'ANTIVIRUS'].join('-');
    for (const rel of ['../../src/scan/clamd.ts', '../helpers/clamd.ts', './clamd.test.ts']) {
      const text = readFileSync(fileURLToPath(new URL(rel, import.meta.url)), 'latin1');
      assert.ok(!text.includes(EICAR) && !text.includes(mark), rel);
    }
  });

  test('messages are RFC 5322 with CRLF line ends and the given Message-ID', () => {
    for (const kind of ['inline', 'attachment'] as const) {
      const text = eicarMessage(kind, `m-${kind}`).toString('latin1');
      assert.ok(!/[^\r]\n/.test(text), `${kind}: bare LF`);
      const [head = '', body = ''] = text.split('\r\n\r\n');
      assert.match(head, new RegExp(`^Message-ID: <m-${kind}@eicar\\.test>$`, 'm'));
      for (const field of ['From', 'To', 'Date', 'Subject']) assert.match(head, new RegExp(`^${field}: \\S`, 'm'));
      if (kind === 'inline') assert.ok(body.includes(EICAR));
      else assert.ok(text.replace(/\r\n/g, '').includes(Buffer.from(EICAR, 'latin1').toString('base64')) && !text.includes(EICAR));
    }
  });
});
