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
