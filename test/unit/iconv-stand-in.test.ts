/**
 * The CLI bundle's stand-in for iconv-lite (scripts/stand-ins/iconv-lite.mjs): folder names in
 * modified UTF-7 without loading iconv-lite's charset tables, and otherwise exactly what
 * iconv-lite gives (imapflow cannot tell the difference).
 */
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { test } from 'node:test';

const require = createRequire(import.meta.url);
// iconv-lite's charset tables (its encodings/ modules: what the stand-in saves). Under tsx the
// package's index may be in the cache already; its tables are loaded only by a conversion.
const loaded = () => Object.keys(require.cache).some((k) => k.includes('/node_modules/iconv-lite/encodings/'));

test('folder names in modified UTF-7 go both ways without iconv-lite, as iconv-lite would have them', async () => {
  assert.equal(loaded(), false, 'nothing in this test process converted with iconv-lite before');
  const stand = (await import(new URL('../../scripts/stand-ins/iconv-lite.mjs', import.meta.url).href)).default;
  const names = ['INBOX', 'Archive/2023/Q4/Rechnungen & Belege', '&', 'a&&b', 'Grüße aus Köln', '日本語のメール/東京オフィス', 'emoji 😀 here', 'Ω', 'a\u00a0b', 'x&y&z-', '-&-', 'tab\there', '\u0001ctl'];
  const wire = names.map((n) => stand.encode(n, 'utf-7-imap').toString());
  const back = wire.map((w) => stand.decode(Buffer.from(w), 'utf-7-imap'));
  assert.equal(loaded(), false, "the stand-in used iconv-lite's tables for well-formed names");
  assert.deepEqual(back, names);
  assert.equal(wire[4], 'Gr&APwA3w-e aus K&APY-ln');
  assert.equal(wire[2], '&-');

  const real = require('iconv-lite');
  assert.deepEqual(wire, names.map((n) => real.encode(n, 'utf-7-imap').toString()));
  // Malformed names (a hostile server's), names sent raw in UTF-8, other spellings and charsets:
  // whatever iconv-lite answers, the stand-in answers.
  const odd = ['&', '&AOQ', '&AOQ-x', '&Jjo!-', '&,,,-', '&ZeVnLIqeMG4w4TD8MOs', '&-&-', '&2D3eAA-', '&A-', '&AO-', 'Grüße', '&AOQ-\u00e4'];
  for (const s of odd) assert.equal(stand.decode(Buffer.from(s), 'utf-7-imap'), real.decode(Buffer.from(s), 'utf-7-imap'), JSON.stringify(s));
  assert.equal(stand.decode(Buffer.from('&AOQ-'), 'UTF-7-IMAP'), 'ä');
  assert.equal(stand.decode(Buffer.from([0xe4]), 'latin1'), 'ä');
  assert.deepEqual([...stand.encode('ä', 'iso-8859-1')], [0xe4]);
  assert.equal(typeof stand.decodeStream, 'function');
});
