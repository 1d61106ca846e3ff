/**
 * The PST store on pst-extractor's enron.pst without a server: composition is deterministic (two
 * stores, two passes: the same bytes, sizes and keys; this is what makes reruns and verify agree),
 * listed sizes are the fetched sizes, item classes sort mail from the rest, and `pst:` parses as
 * a source only.
 */
import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { parseEndpoint } from '../../src/core/endpoint.js';
import { isMailClass, reportedClass } from '../../src/stores/pst/item-meta.js';
import { PstStore } from '../../src/stores/pst/pst-store.js';
import { rtfBody } from '../../src/stores/pst/rtf-body.js';
import type { PSTMessage } from 'pst-extractor';

const ENRON = new URL('../../node_modules/pst-extractor/example/testdata/enron.pst', import.meta.url).pathname;

async function snapshot(): Promise<Map<string, { size: number; key: string; body: Buffer }>> {
  const store = new PstStore({ file: ENRON, side: 'source' });
  await store.connect();
  const out = new Map<string, { size: number; key: string; body: Buffer }>();
  try {
    for (const f of (await store.listFolders()).folders) {
      await store.openFolder(f.path);
      const listing = await store.listMessages();
      assert.deepEqual(listing.failures, []);
      const bodies = new Map<number, Buffer>();
      for await (const o of store.fetchBodies(listing.messages.map((m) => m.uid))) {
        assert.ok('body' in o, `uid ${o.uid} fetched`);
        bodies.set(o.uid, o.body);
      }
      for (const m of listing.messages) {
        const body = bodies.get(m.uid)!;
        assert.equal(body.length, m.size, 'the listed size is the size served');
        out.set(`${f.name}/${m.uid}`, { size: m.size, key: m.key, body });
      }
    }
  } finally {
    await store.close();
  }
  return out;
}

describe('pst store', () => {
  it('composes every item to the same bytes each time, in CRLF, with a Message-ID and a Date', async () => {
    const [a, b] = [await snapshot(), await snapshot()];
    assert.equal(a.size, 71);
    for (const [k, v] of a) {
      assert.ok(v.body.equals(b.get(k)!.body), `${k}: same bytes in a second store`);
      const head = v.body.subarray(0, v.body.indexOf('\r\n\r\n')).toString('latin1');
      assert.match(head, /^Message-ID:/im, k);
      assert.match(head, /^Date:/im, k);
      assert.doesNotMatch(v.body.toString('latin1'), /[^\r]\n/, `${k}: CRLF line ends only`);
    }
  });

  it('sorts item classes into mail and the rest', () => {
    for (const c of ['IPM.Note', 'IPM.Note.SMIME.MultipartSigned', 'IPM.Schedule.Meeting.Request', 'REPORT.IPM.Note.NDR', 'IPM.Post', '']) assert.ok(isMailClass(c), c);
    for (const c of ['IPM.Appointment', 'IPM.Contact', 'IPM.DistList', 'IPM.Task', 'IPM.StickyNote', 'IPM.Activity', 'IPM.Configuration.Foo']) assert.ok(!isMailClass(c), c);
    assert.equal(reportedClass('IPM.Contact.Custom'), 'IPM.Contact');
  });

  it('parses pst: as a source only, by absolute path', () => {
    assert.deepEqual(parseEndpoint('pst:/a/b.pst', 'from').archive, { kind: 'pst', root: '/a/b.pst' });
    assert.throws(() => parseEndpoint('pst:/a/b.pst', 'to'), /MM-CONFIG-URL|source only/);
    assert.throws(() => parseEndpoint('pst:a/b.pst', 'from'), /absolute path/);
  });
});

describe('pst RTF bodies', () => {
  /** An item with only a compressed-RTF property (its 16-byte header claiming `claimed` bytes) and the RTF pst-extractor decompresses. */
  const item = (rtf: string, claimed = rtf.length) => {
    const header = Buffer.alloc(16);
    header.writeUInt32LE(rtf.length + 12, 0);
    header.writeUInt32LE(claimed, 4);
    return { pstTableItems: new Map([[0x1009, { data: header, entryValueReference: 0 }]]), localDescriptorItems: null, bodyRTF: rtf } as unknown as PSTMessage;
  };

  it('de-encapsulates HTML and text, attaches a real RTF document, and refuses an impossible size', () => {
    const html = String.raw`{\rtf1\ansi\ansicpg1252\fromhtml1 \deff0{\fonttbl{\f0\fswiss Arial;}}{\*\htmltag19 <html>}{\*\htmltag34 <body>}\htmlrtf x\htmlrtf0 Hello {\*\htmltag84 &amp;}\htmlrtf &\htmlrtf0  caf\'e9{\*\htmltag35 </body>}{\*\htmltag27 </html>}}`;
    assert.deepEqual(rtfBody(item(html)), { kind: 'html', text: '<html><body>Hello &amp; café</body></html>' });
    const text = String.raw`{\rtf1\ansi\ansicpg1252\fromtext \deff0{\fonttbl{\f0\fswiss Arial;}}Plain line\par second}`;
    assert.deepEqual(rtfBody(item(text)), { kind: 'text', text: 'Plain line\r\nsecond' });
    const doc = String.raw`{\rtf1\ansi\deff0{\fonttbl{\f0 Times;}}\b Bold\b0  text\par}`;
    const attached = rtfBody(item(doc));
    assert.equal(attached?.kind, 'rtf');
    assert.equal(attached?.kind === 'rtf' && attached.rtf.toString('utf8'), doc, 'the RTF itself, never nothing');
    assert.throws(() => rtfBody(item(doc, 1_000_000_000)), /claims 1000000000 bytes/);
  });
});
