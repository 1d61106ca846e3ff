/**
 * The mbox parser and writer (stores/mbox/mbox-index.ts, messages.ts, status-headers.ts) on files
 * written here: mboxrd, mboxo and mboxcl2 files, `>From ` quoting, Content-Length honoured only
 * when it is consistent, a cut-off tail, CRLF and LF files, an empty file, a file that is no mbox,
 * the store's own header fields (flags, keywords, X-UID, X-IMAPbase), and a property: what
 * serializeMessage writes reads back as the same bytes, flags, date and UID.
 */
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import fc from 'fast-check';
import { indexMbox, NotAnMboxError, type MboxIndex } from '../../src/stores/mbox/mbox-index.js';
import { makeFromLine, parseFromLine, serializeMessage, serveMessage } from '../../src/stores/mbox/messages.js';
import { imapBaseText, readStoreFields, splitFields } from '../../src/stores/mbox/status-headers.js';
import { MboxFiles } from '../../src/stores/mbox/mbox-file.js';
import { appendMessages, rewriteFile } from '../../src/stores/mbox/mbox-writer.js';
import { readFileSync } from 'node:fs';

const dir = mkdtempSync(join(tmpdir(), 'mm-mbox-unit-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;

interface Parsed {
  index: MboxIndex;
  /** Each message as served (undefined for a broken one). */
  served: (string | undefined)[];
}

/** Writes `bytes` to a file and indexes it; each message served as latin1 text. */
async function parse(bytes: Buffer | string): Promise<Parsed> {
  const file = join(dir, `m${++n}`);
  const buf = typeof bytes === 'string' ? Buffer.from(bytes, 'latin1') : bytes;
  writeFileSync(file, buf);
  const handle = await open(file, 'r');
  try {
    const index = await indexMbox(handle, file);
    const served = index.messages.map((m) => (m.broken ? undefined : serveMessage(buf.subarray(m.start, m.end), m.unquoted).toString('latin1')));
    return { index, served };
  } finally {
    await handle.close();
  }
}

const FROM = 'From a@example.com Mon Jan  6 10:00:00 2020\n';

describe('mbox parser', () => {
  it('mboxrd: one level of >From quoting is undone; the blank line before From is not the message', async () => {
    const p = await parse(`${FROM}Subject: q\n\n>From here\n>>From there\nplain\n\n${FROM}Subject: two\n\nbody\n\n`);
    assert.deepEqual(p.served, ['Subject: q\r\n\r\nFrom here\r\n>From there\r\nplain\r\n', 'Subject: two\r\n\r\nbody\r\n']);
    assert.deepEqual(p.index.messages.map((m) => m.uid), [1, 2]);
    assert.equal(p.index.uidNext, undefined, 'no X-IMAPbase: positions, no UIDNEXT promised');
  });

  it('mboxo: an unquoted From line in a body is a boundary; what follows it is no message', async () => {
    const p = await parse(`${FROM}Subject: o\n\nfirst\nFrom the middle\nrest\n\n`);
    assert.equal(p.index.messages.length, 2);
    assert.equal(p.served[0], 'Subject: o\r\n\r\nfirst\r\n');
    assert.match(p.index.messages[1]!.broken!, /does not start with a header field/);
  });

  it('mboxcl2: a consistent Content-Length bounds the message; its From and >From lines are its own', async () => {
    const body = 'From inside\n>From kept\n';
    const p = await parse(`${FROM}Subject: cl\nContent-Length: ${body.length}\n\n${body}\n${FROM}Subject: next\n\nx\n`);
    assert.deepEqual(p.served, ['Subject: cl\r\n\r\nFrom inside\r\n>From kept\r\n', 'Subject: next\r\n\r\nx\r\n']);
    assert.equal(p.index.messages[0]!.unquoted, true);
  });

  it('an inconsistent Content-Length is ignored (too short, too long, past the end)', async () => {
    for (const cl of [3, 9, 9999]) {
      const p = await parse(`${FROM}Subject: bad\nContent-Length: ${cl}\n\nline one\n>From two\n\n${FROM}Subject: next\n\nx\n`);
      assert.deepEqual(p.served, ['Subject: bad\r\n\r\nline one\r\nFrom two\r\n', 'Subject: next\r\n\r\nx\r\n'], `Content-Length ${cl}`);
      assert.equal(p.index.messages[0]!.unquoted, false);
    }
  });

  it('a cut-off tail: the last message is broken and the file is to be cut back to its From line', async () => {
    const whole = `${FROM}Subject: whole\n\nfine\n\n`;
    const p = await parse(`${whole}${FROM}Subject: cut\n\nthis message was cu`);
    assert.equal(p.served[0], 'Subject: whole\r\n\r\nfine\r\n');
    assert.match(p.index.messages[1]!.broken!, /cut off/);
    assert.equal(p.index.cutAt, Buffer.byteLength(whole));
    // A Content-Length past the end of the file is cut off too, even with a final line end.
    const q = await parse(`${whole}${FROM}Subject: cl\nContent-Length: 500\n\nshort\n`);
    assert.match(q.index.messages[1]!.broken!, /cut off/);
    assert.equal(q.index.cutAt, Buffer.byteLength(whole));
    // A header block that never ended.
    const r = await parse(`${whole}${FROM}Subject: no body`);
    assert.equal(r.index.cutAt, Buffer.byteLength(whole));
  });

  it('CRLF and LF files serve the same bytes (no doubled CR)', async () => {
    const lf = `${FROM}Subject: a\nX-Other: b\n\nline\n>From q\n\n${FROM}Subject: c\n\nend\n`;
    const crlf = lf.replace(/\n/g, '\r\n');
    const a = await parse(lf);
    const b = await parse(crlf);
    assert.deepEqual(b.served, a.served);
    assert.deepEqual(a.served, ['Subject: a\r\nX-Other: b\r\n\r\nline\r\nFrom q\r\n', 'Subject: c\r\n\r\nend\r\n']);
    assert.equal(b.index.messages[0]!.internalDate?.toISOString(), '2020-01-06T10:00:00.000Z');
  });

  it('an empty file has no message; a file that does not start with From is not an mbox', async () => {
    const e = await parse('');
    assert.deepEqual([e.index.messages.length, e.index.cutAt], [0, undefined]);
    await assert.rejects(parse('Dear diary\nFrom here on\n'), NotAnMboxError);
    await assert.rejects(parse('\nFrom a@b Mon Jan  6 10:00:00 2020\n'), NotAnMboxError);
  });

  it('store fields are flags, keywords and UIDs, and are taken off the message wherever they stand', async () => {
    const m1 = `${FROM}X-IMAPbase: 1234 0000000009 $Forwarded Work\nStatus: RO\nSubject: s\nX-Status: AF\nX-UID: 4\nX-Keywords: Work $Forwarded\n\nbody\n\n`;
    const m2 = `${FROM}Subject: t\nX-Mozilla-Status: 0005\nX-UID: 9\n\nbody\n\n`;
    const p = await parse(m1 + m2);
    assert.deepEqual(p.served, ['Subject: s\r\n\r\nbody\r\n', 'Subject: t\r\n\r\nbody\r\n']);
    assert.deepEqual(p.index.messages.map((m) => [m.uid, [...m.flags].sort()]), [
      [4, ['$Forwarded', 'Work', '\\Answered', '\\Flagged', '\\Seen']],
      [9, ['\\Flagged', '\\Seen']],
    ]);
    // X-IMAPbase's second number is the last UID given out (Dovecot's meaning).
    assert.deepEqual([p.index.uidValidity, p.index.uidNext, p.index.base?.keywords], [1234, 10, ['$Forwarded', 'Work']]);
    assert.equal(Buffer.from(m1 + m2, 'latin1').subarray(p.index.baseAt!.start, p.index.baseAt!.end).toString(), 'X-IMAPbase: 1234 0000000009 $Forwarded Work\n');
  });

  it('X-UIDs are trusted only when consistent: all there, rising, none above the last UID', async () => {
    const msg = (uid: string) => `${FROM}Subject: u\n${uid}\n\nb\n\n`;
    const base = (last: number) => `${FROM}X-IMAPbase: 77 ${last}\nX-UID: 2\nSubject: u\n\nb\n\n`;
    assert.deepEqual((await parse(base(5) + msg('X-UID: 5'))).index.messages.map((m) => m.uid), [2, 5]);
    for (const bad of [base(5) + msg('X-UID: 6'), base(5) + msg('X-UID: 2'), base(5) + msg('X-Other: 1'), `${FROM}X-UID: 1\nSubject: u\n\nb\n\n`]) {
      const p = await parse(bad);
      assert.deepEqual(p.index.messages.map((m) => m.uid), p.index.messages.map((_, i) => i + 1));
      assert.equal(p.index.uidNext, undefined);
      assert.notEqual(p.index.uidValidity, 77);
    }
  });

  it('X-IMAPbase is written in ten digits, padded to a width when given, or refused when it does not fit', () => {
    const b = { uidValidity: 42, lastUid: 7, keywords: ['a', 'b'] };
    const text = imapBaseText(b)!;
    assert.match(text, /^X-IMAPbase: 42 0000000007 a b {64}\n$/);
    assert.equal(imapBaseText({ ...b, lastUid: 123 }, text.length), `X-IMAPbase: 42 0000000123 a b${' '.repeat(64)}\n`);
    assert.equal(imapBaseText({ ...b, keywords: ['x'.repeat(80)] }, text.length), undefined);
    const block = Buffer.from(text.replace(/ +\n$/, '\n'));
    assert.deepEqual(readStoreFields(block, splitFields(block)).imapBase, b);
  });

  it('From lines: asctime in UTC, with a zone or the year first', () => {
    const d = new Date(Date.UTC(2021, 1, 3, 4, 5, 6));
    assert.equal(makeFromLine('x@y', d), 'From x@y Wed Feb  3 04:05:06 2021');
    assert.equal(parseFromLine(makeFromLine('x@y', d))?.getTime(), d.getTime());
    assert.equal(parseFromLine('From x@y Wed Feb  3 06:05:06 2021 +0200')?.getTime(), d.getTime());
    assert.equal(parseFromLine('From x@y Wed Feb  3 04:05:06 +0000 2021')?.getTime(), d.getTime());
    assert.equal(parseFromLine('From x@y yesterday'), undefined);
  });
});

describe('mbox writer', () => {
  const item = (subject: string, flags: string[] = []) => ({ body: Buffer.from(`Subject: ${subject}\r\n\r\nbody ${subject}\r\nFrom ${subject}\r\n`), flags, internalDate: new Date('2020-01-02T03:04:05Z') });
  const read = async (file: string) => {
    const p = await parse(readFileSync(file));
    return { uids: p.index.messages.map((m) => m.uid), served: p.served, index: p.index };
  };

  it('appends with UIDs of the file: X-IMAPbase claims them in place, a new keyword too', async () => {
    const file = join(dir, 'w1');
    writeFileSync(file, '');
    const files = new MboxFiles({});
    assert.deepEqual(await appendMessages(files, file, [item('a', ['\\Seen']), item('b')]), [{ uid: 1 }, { uid: 2 }]);
    const first = readFileSync(file);
    assert.deepEqual(await appendMessages(files, file, [item('c', ['Later'])]), [{ uid: 3 }]);
    const r = await read(file);
    assert.deepEqual(r.uids, [1, 2, 3]);
    assert.deepEqual([r.index.uidNext, r.index.base?.keywords], [4, ['Later']]);
    assert.equal(r.served[2], 'Subject: c\r\n\r\nbody c\r\nFrom c\r\n');
    // Only the X-IMAPbase line changed in what was there; the rest was appended.
    const now = readFileSync(file);
    const at = first.indexOf('X-IMAPbase:');
    const end = first.indexOf(10, at) + 1;
    assert.deepEqual([now.subarray(0, at), now.subarray(end, first.length)], [first.subarray(0, at), first.subarray(end)]);
    assert.notDeepEqual(now.subarray(at, end), first.subarray(at, end));
    assert.match(readFileSync(file, 'latin1'), /^X-IMAPbase: \d+ 0000000003 Later +\n/m);
  });

  it('after appends, the kept index (read from where it ended) equals a whole new pass', async () => {
    const file = join(dir, 'w-grown');
    writeFileSync(file, '');
    const files = new MboxFiles({});
    for (let round = 0; round < 4; round++) await appendMessages(files, file, [item(`r${round}a`, ['\\Seen']), item(`r${round}b`, [`K${round}`])]);
    const kept = await files.index(file);
    const fresh = await new MboxFiles({}).index(file);
    assert.deepEqual(kept.messages.map((m) => m.uid), [1, 2, 3, 4, 5, 6, 7, 8]);
    assert.deepEqual(
      { ...kept, messages: kept.messages.map((m) => ({ ...m, xuid: undefined })) },
      { ...fresh, messages: fresh.messages.map((m) => ({ ...m, xuid: undefined })) },
    );
    // A file whose new tail has no X-UID (another program appended) is indexed whole again: positions.
    writeFileSync(file, readFileSync(file, 'latin1') + `${FROM}Subject: theirs\n\nbody\n\n`, 'latin1');
    const after = await files.index(file);
    assert.equal(after.base, undefined, 'UIDs no longer the file own');
    assert.deepEqual(after.messages.map((m) => m.uid), [1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  it("another program's file is given UIDs once (positions); its messages keep their bytes", async () => {
    const file = join(dir, 'w2');
    const theirs = `${FROM}Subject: old\nX-Other: 1\n\nold body\n>From quoted\n\n`;
    writeFileSync(file, theirs);
    const before = (await read(file)).served;
    const files = new MboxFiles({});
    assert.deepEqual(await appendMessages(files, file, [item('new')]), [{ uid: 2 }]);
    const r = await read(file);
    assert.deepEqual([r.uids, r.served[0], r.index.uidNext], [[1, 2], before[0], 3]);
    // Removing the old one keeps the new one's bytes and UID.
    await rewriteFile(files, file, { flags: new Map(), drop: new Set([1]) });
    const after = await read(file);
    assert.deepEqual([after.uids, after.served, after.index.uidNext], [[2], [r.served[1]], 3]);
  });

  it('a file whose first message cannot be read: new messages get positions, the file stays readable', async () => {
    const file = join(dir, 'w3');
    writeFileSync(file, `From x Mon Jan  6 10:00:00 2020\nnot a header\n\n${FROM}Subject: ok\n\nfine\n\n`);
    const files = new MboxFiles({});
    assert.deepEqual(await appendMessages(files, file, [item('n')]), [{ uid: 3 }]);
    const r = await read(file);
    assert.deepEqual([r.uids, r.index.uidNext, r.served.slice(1)], [[1, 2, 3], undefined, ['Subject: ok\r\n\r\nfine\r\n', 'Subject: n\r\n\r\nbody n\r\nFrom n\r\n']]);
  });
});

// Header fields of the message's own (not the store's), values of any bytes but line ends.
const fieldName = fc.stringMatching(/^[A-Za-z][A-Za-z0-9-]{0,12}$/).filter((s) => !/^(status|x-status|x-keywords|x-uid|x-imapbase|x-imap|content-length|x-mozilla-status2?|x-mozilla-keys)$/i.test(s));
const byteText = (max: number) => fc.uint8Array({ maxLength: max }).map((a) => Buffer.from(a).toString('latin1').replace(/[\r\n]/g, ''));
const lineText = fc.oneof(
  fc.uint8Array({ maxLength: 40 }).map((a) => Buffer.from(a).toString('latin1').replace(/\n/g, '')),
  fc.constantFrom('From me', '>From you', '>>From us', 'From', '', '\r', 'x\r'),
);
const message = fc.record({
  fields: fc.array(fc.tuple(fieldName, byteText(30)), { minLength: 1, maxLength: 5 }),
  body: fc.option(fc.array(lineText, { maxLength: 8 }), { nil: undefined }),
  finalCrlf: fc.boolean(),
  flags: fc.subarray(['\\Seen', '\\Answered', '\\Flagged', '\\Deleted', '\\Draft', '$Forwarded', 'Work']),
  date: fc.integer({ min: 0, max: 4_000_000_000 }).map((s) => new Date(s * 1000)),
});

describe('mbox writer (property)', () => {
  it('what serializeMessage writes reads back as the same bytes, flags, date and UID', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(message, { minLength: 1, maxLength: 4 }), async (msgs) => {
        const bodies = msgs.map((m) => {
          const head = m.fields.map(([k, v]) => `${k}: ${v}`).join('\r\n');
          const text = m.body === undefined ? head : `${head}\r\n\r\n${m.body.join('\r\n')}`;
          return Buffer.from(m.finalCrlf ? `${text}\r\n` : text, 'latin1');
        });
        const file = Buffer.concat(msgs.map((m, i) => serializeMessage({ body: bodies[i]!, flags: m.flags, internalDate: m.date }, { uid: 10 + i, base: i === 0 ? { uidValidity: 5, lastUid: 10 + msgs.length, keywords: ['$Forwarded', 'Work'] } : undefined })));
        const p = await parse(file);
        assert.equal(p.index.messages.length, msgs.length);
        msgs.forEach((m, i) => {
          const want = bodies[i]!.toString('latin1');
          // An mbox cannot mark the end of a message with a From line and no final line end (it
          // gets one), nor of a header block without a body (it gets the line end and the blank line).
          const fromLine = /(^|\n)>*From /.test(want);
          const expected = m.body === undefined ? `${want.replace(/\r\n$/, '')}\r\n\r\n` : fromLine && !want.endsWith('\n') ? `${want}${want.endsWith('\r') ? '\n' : '\r\n'}` : want;
          assert.equal(p.served[i], expected);
          assert.deepEqual([...p.index.messages[i]!.flags].sort(), [...m.flags].sort());
          assert.equal(p.index.messages[i]!.internalDate?.getTime(), m.date.getTime());
          assert.equal(p.index.messages[i]!.uid, 10 + i);
        });
        assert.equal(p.index.uidNext, 11 + msgs.length);
      }),
      { numRuns: 300 },
    );
  });
});
