/**
 * TLS failures say what happened, against a real Dovecot (STARTTLS on the plain port, a test CA's
 * certificate for localhost and 127.0.0.1):
 * - a required STARTTLS (a host name that is not loopback by name: this machine's own host name,
 *   which resolves to a loopback address, so no traffic leaves the machine) meeting a certificate
 *   for another name, or from an unknown CA, is MM-TLS-CERT with the certificate's problem, never
 *   MM-CONFIG-PLAINTEXT's "pass --allow-plaintext";
 * - the same mapping for a real handshake error produced by imapflow directly;
 * - imaps:// to the plain port is MM-TLS-FAILED "this port speaks plain IMAP".
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { lookup } from 'node:dns/promises';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { ImapFlow } from 'imapflow';
import { isLoopbackHost, parseEndpoint } from '../../src/core/endpoint.js';
import { connectError } from '../../src/stores/imap/imap-errors.js';
import { startDovecot, type DovecotServer } from '../helpers/dovecot.js';
import { runCli } from '../helpers/cli.js';

describe('TLS failures', () => {
  let server: DovecotServer;
  const env = { MAILMOVER_FROM_PASSWORD: 'src-pw', MAILMOVER_TO_PASSWORD: 'dst-pw' };
  const host = os.hostname().toLowerCase();
  let hostIsLoopback = false;

  before(async () => {
    server = await startDovecot();
    await server.addUser('src', 'src-pw');
    await server.addUser('dst', 'dst-pw');
    const found = await lookup(host, { all: true }).catch(() => []);
    hostIsLoopback = !isLoopbackHost(host) && found.length > 0 && found.every((a) => isLoopbackHost(a.address));
  });
  after(async () => server?.stop());

  test('a required STARTTLS meeting a certificate for another name: MM-TLS-CERT about the name, never --allow-plaintext', async (t) => {
    if (!hostIsLoopback) return t.skip(`the host name "${host}" does not resolve to loopback only`);
    const run = await runCli(['migrate', '--no-state', '--from', `imap://src@${host}:${server.port}`, '--to', server.url('dst'), '--to-tls-insecure'], { ...env, NODE_EXTRA_CA_CERTS: server.caFile });
    assert.equal(run.code, 5, run.stderr + run.stdout);
    const out = run.stdout + run.stderr;
    assert.match(out, /MM-TLS-CERT/);
    assert.match(out, /is for another name/);
    assert.match(out, /--from-tls-insecure/);
    assert.doesNotMatch(out, /MM-CONFIG-PLAINTEXT|allow-plaintext/);
  });

  test('a required STARTTLS meeting a certificate from an unknown CA: MM-TLS-CERT with NODE_EXTRA_CA_CERTS', async (t) => {
    if (!hostIsLoopback) return t.skip(`the host name "${host}" does not resolve to loopback only`);
    const run = await runCli(['migrate', '--no-state', '--from', `imap://src@${host}:${server.port}`, '--to', server.url('dst'), '--to-tls-insecure'], env);
    assert.equal(run.code, 5, run.stderr + run.stdout);
    const out = run.stdout + run.stderr;
    assert.match(out, /MM-TLS-CERT/);
    assert.match(out, /CA this machine does not (know|trust)/);
    assert.match(out, /NODE_EXTRA_CA_CERTS/);
    assert.doesNotMatch(out, /allow-plaintext/);
  });

  test('the mapping of a real STARTTLS handshake error (name mismatch) when STARTTLS was required', async () => {
    const client = new ImapFlow({
      host: '127.0.0.1',
      port: server.port,
      secure: false,
      doSTARTTLS: true,
      auth: { user: 'src', pass: 'src-pw' },
      tls: { ca: [readFileSync(server.caFile)], servername: 'mail.example.test' },
      logger: false,
    });
    client.on('error', () => undefined);
    const err = await client.connect().then(
      () => undefined,
      (e: unknown) => e,
    );
    client.close();
    assert.ok(err, 'the handshake failed');
    const mapped = connectError(err, parseEndpoint('imap://src@mail.example.test:143', 'from'), 'source', { requireStartTls: true });
    assert.equal(mapped.code, 'MM-TLS-CERT', mapped.message);
    assert.match(mapped.message, /is for another name/);
    assert.doesNotMatch(mapped.message, /allow-plaintext/);
  });

  test('imaps:// to the plain IMAP port: MM-TLS-FAILED "this port speaks plain IMAP"', async () => {
    const run = await runCli(['migrate', '--no-state', '--from', `imaps://src@127.0.0.1:${server.port}`, '--to', server.url('dst'), '--to-tls-insecure'], env);
    assert.equal(run.code, 5, run.stderr + run.stdout);
    const out = run.stdout + run.stderr;
    assert.match(out, /MM-TLS-FAILED/);
    assert.match(out, /this port speaks plain IMAP: use imap:\/\/ \(STARTTLS\) or port 993/);
  });

  test('a server that offers no STARTTLS at all is still MM-CONFIG-PLAINTEXT; an expired certificate says so', async (t) => {
    const err = Object.assign(new Error('Server does not support STARTTLS'), { tlsFailed: true });
    const endpoint = parseEndpoint('imap://src@mail.example.test', 'from');
    assert.equal(connectError(err, endpoint, 'source', { requireStartTls: true }).code, 'MM-CONFIG-PLAINTEXT');
    const expired = Object.assign(new Error('certificate has expired'), { code: 'CERT_HAS_EXPIRED', tlsFailed: true });
    const e = connectError(expired, endpoint, 'source', { requireStartTls: true });
    assert.equal(e.code, 'MM-TLS-CERT');
    assert.match(e.message, /has expired/);
    assert.doesNotMatch(e.message, /allow-plaintext/);
    if (!hostIsLoopback) return t.skip('no non-loopback name for a real server without STARTTLS');
    const plain = await startDovecot({ tls: false });
    try {
      await plain.addUser('src', 'src-pw');
      const run = await runCli(['migrate', '--no-state', '--from', `imap://src@${host}:${plain.port}`, '--to', server.url('dst'), '--to-tls-insecure'], env);
      assert.match(run.stdout + run.stderr, /MM-CONFIG-PLAINTEXT/);
    } finally {
      await plain.stop();
    }
  });
});
