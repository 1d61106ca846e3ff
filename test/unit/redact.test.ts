/**
 * The secret registry and scrub(): every form a server could echo (the value, quoted forms, SASL
 * PLAIN, XOAUTH2 and OAUTHBEARER blobs, base64 fragments inside blobs built with a user or host
 * we were not told), overlapping and nested secrets, regex metacharacters, short secrets ignored,
 * and MigrateError scrubbing its message and server response.
 */
import { beforeEach, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { clearSecrets, MASK, registerSecret, registeredForms, scrub, scrubStream } from '../../src/core/redact.js';
import { ERROR_CODES, MigrateError } from '../../src/core/errors.js';

const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');

beforeEach(() => clearSecrets());

test('the value itself, everywhere it occurs; text without secrets is unchanged', () => {
  assert.equal(scrub('nothing registered yet: hunter22'), 'nothing registered yet: hunter22');
  registerSecret('hunter22');
  assert.equal(scrub('NO [AUTHENTICATIONFAILED] bad password hunter22 for alice, hunter22!'), `NO [AUTHENTICATIONFAILED] bad password ${MASK} for alice, ${MASK}!`);
  assert.equal(scrub('hunter2 is not it'), 'hunter2 is not it');
  assert.equal(scrub(''), '');
});

test('secrets shorter than 4 characters are ignored (they would match everywhere)', () => {
  registerSecret('abc');
  registerSecret('');
  registerSecret(undefined);
  assert.equal(registeredForms(), 0);
  assert.equal(scrub('abc abcd'), 'abc abcd');
  registerSecret('abcd');
  assert.equal(scrub('abc abcd'), `abc ${MASK}`);
});

test('SASL PLAIN blobs for the user and authzid combinations, XOAUTH2 and OAUTHBEARER blobs', () => {
  registerSecret('pa55word', { user: 'admin', authzid: 'alice' });
  registerSecret('ya29.tokenTOKEN', { user: 'bob@example.com' });
  for (const blob of [
    b64('alice\0admin\0pa55word'),
    b64('\0admin\0pa55word'),
    b64('admin\0admin\0pa55word'),
    b64('user=bob@example.com\x01auth=Bearer ya29.tokenTOKEN\x01\x01'),
    b64('n,a=bob@example.com,\x01auth=Bearer ya29.tokenTOKEN\x01\x01'),
  ]) {
    assert.equal(scrub(`NO [AUTHENTICATIONFAILED] you sent ${blob} (bad)`), `NO [AUTHENTICATIONFAILED] you sent ${MASK} (bad)`, blob);
  }
});

test('blobs built with a user, authzid or host we were not told lose every character that depends on the secret', () => {
  const secret = 'Corr3ct-Horse-Battery';
  registerSecret(secret);
  const apart = (s: string) => ![...Array(Math.max(0, secret.length - 3)).keys()].some((i) => s.toLowerCase().includes(secret.slice(i, i + 4).toLowerCase()));
  const leaks = (text: string) => {
    const out = scrub(text);
    assert.ok(out.includes(MASK), `scrubbed: ${text}`);
    // What is left cannot give the secret back: decoding the unmasked parts never yields 4 of its characters in a row.
    for (const part of out.split(MASK)) {
      const decoded = Buffer.from(part.replace(/[^A-Za-z0-9+/=]/g, ''), 'base64').toString('latin1');
      for (let i = 0; i + 4 <= secret.length; i++) assert.ok(!decoded.includes(secret.slice(i, i + 4)), `"${secret.slice(i, i + 4)}" survives in ${out}`);
    }
  };
  fc.assert(
    // A user or host that itself holds 4 characters of the secret in a row (a host "tter" against
    // "Battery") would show them in the clear without any leak: such inputs are not generated.
    fc.property(
      fc.string({ maxLength: 12 }).filter(apart),
      fc.string({ maxLength: 12 }).filter(apart),
      fc.string({ minLength: 1, maxLength: 20 }).filter(apart),
      fc.integer({ min: 1, max: 65535 }),
      (authzid, user, host, port) => {
      leaks(b64(`${authzid}\0${user}\0${secret}`));
      leaks(b64(`user=${user}\x01auth=Bearer ${secret}\x01\x01`));
      leaks(b64(`n,a=${user},\x01host=${host}\x01port=${port}\x01auth=Bearer ${secret}\x01\x01`));
      leaks(`x ${b64(`${user}${secret}${host}`)} y`);
      },
    ),
    { numRuns: 300 },
  );
});

test('quoted, JSON-escaped and URL-encoded forms', () => {
  const secret = 'p"w\\x y/z%';
  registerSecret(secret);
  assert.equal(scrub(`LOGIN alice "p\\"w\\\\x y/z%"`), `LOGIN alice "${MASK}"`);
  assert.equal(scrub(JSON.stringify({ message: `got ${secret}` })), JSON.stringify({ message: `got ${MASK}` }));
  assert.equal(scrub(`imap://alice:${encodeURIComponent(secret)}@host`), `imap://alice:${MASK}@host`);
});

test('regex metacharacters in secrets are plain text', () => {
  const secret = '.*+?^${}()|[]\\/';
  registerSecret(secret);
  assert.equal(scrub(`a ${secret} b`), `a ${MASK} b`);
  assert.equal(scrub('abcdefgh .* nothing else'), 'abcdefgh .* nothing else');
  registerSecret('(a|b)*');
  assert.equal(scrub('aaaa bbbb (a|b)*'), `aaaa bbbb ${MASK}`);
});

test('overlapping and nested secrets leave no part of either', () => {
  registerSecret('abcdef');
  registerSecret('defghi');
  registerSecret('cdef');
  assert.equal(scrub('xx abcdefghi yy'), `xx ${MASK} yy`);
  assert.equal(scrub('xx cdefghi yy'), `xx ${MASK} yy`);
  assert.equal(scrub('xx abcdef yy cdef'), `xx ${MASK} yy ${MASK}`);
  registerSecret('aaaa');
  assert.equal(scrub('aaaaaaa'), MASK);
});

test('many secrets stay fast (a worker sees thousands of mailboxes)', () => {
  for (let i = 0; i < 5000; i++) registerSecret(`password-${i}-x`, { user: `user${i}` });
  const text = 'NO [AUTHENTICATIONFAILED] '.repeat(40) + 'password-4321-x';
  const t0 = performance.now();
  for (let i = 0; i < 100; i++) assert.ok(scrub(text).endsWith(MASK));
  assert.ok(performance.now() - t0 < 2000, `took ${performance.now() - t0} ms`);
});

test('MigrateError scrubs its message and server response, so reports and JSON are clean', () => {
  registerSecret('S3cret-Value', { user: 'alice' });
  const blob = b64('\0alice\0S3cret-Value');
  const e = new MigrateError(ERROR_CODES.AUTH_FAILED, `Login refused: NO bad S3cret-Value ${blob}`, { scope: 'mailbox', serverResponse: `NO [AUTHENTICATIONFAILED] S3cret-Value ${blob}` });
  const all = JSON.stringify(e.toJSON()) + e.message + String(e.serverResponse) + String(e.stack);
  assert.ok(!all.includes('S3cret-Value') && !all.includes(blob), all);
  assert.equal(e.serverResponse, `NO [AUTHENTICATIONFAILED] ${MASK} ${MASK}`);
});

test('scrubStream scrubs what is written and passes everything else through', () => {
  registerSecret('tok-12345');
  const lines: string[] = [];
  const stream = scrubStream({ write: (s: string) => lines.push(s), extra: 7 });
  stream.write(JSON.stringify({ msg: 'got tok-12345' }) + '\n');
  assert.equal(lines[0], `{"msg":"got ${MASK}"}\n`);
  assert.equal(stream.extra, 7);
});

test('a pino log written through scrubStream holds no registered secret, in any form', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'mm-redact-'));
  try {
    registerSecret('Sekr1t"pw\\x', { user: 'alice' });
    const file = path.join(dir, 'run.log');
    const blob = b64('\0alice\0Sekr1t"pw\\x');
    const log = pino({ base: { pid: process.pid } }, scrubStream(pino.destination({ dest: file, sync: true, mkdir: true })));
    log.info({ err: 'NO bad Sekr1t"pw\\x', nested: { blob } }, 'got Sekr1t"pw\\x');
    log.child({ mailbox: 'x' }).warn(`again ${blob}`);
    log.flush();
    const text = readFileSync(file, 'utf8');
    const lines = text.trim().split('\n').map((l) => JSON.parse(l) as { msg: string; err?: string; nested?: { blob: string } });
    assert.equal(lines.length, 2);
    assert.deepEqual([lines[0]!.msg, lines[0]!.err, lines[0]!.nested?.blob, lines[1]!.msg], [`got ${MASK}`, `NO bad ${MASK}`, MASK, `again ${MASK}`]);
    assert.ok(!text.includes('Sekr1t') && !text.includes(blob), text);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
