/**
 * `pst:` sources against real parts: the PST and OST files pst-extractor's package ships are copied
 * into a real Dovecot, read back over IMAP and held against Debian's `readpst` reading the same
 * file (see helpers/pst-compare.ts for what is normalised and why); `verify` agrees after every run
 * that exits 0 (runCli's invariant); reruns copy nothing, with the ledger and without; non-mail
 * items are reported, not copied, and do not make the run partial; corrupt copies (cut at several
 * offsets, bytes flipped in the node and block trees and in data) give the documented codes, never
 * crash and never hang; a batch of three PST rows completes.
 */
import { strict as assert } from 'node:assert';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ImapFlow } from 'imapflow';
import { PSTFile } from 'pst-extractor';
import { runCli, type CliResult } from '../helpers/cli.js';
import { startDovecot, type PlainDovecotServer } from '../helpers/dovecot.js';
import { dumpImapFolders, normalised, readpstFolders, records, type MessageRecord } from '../helpers/pst-compare.js';

const DATA = new URL('../../node_modules/pst-extractor/example/testdata/', import.meta.url).pathname;
const ENRON = join(DATA, 'enron.pst');
const OST1 = join(DATA, 'pstextractortest@outlook.com.ost');
const OST2 = join(DATA, 'pstextractortestpdf@outlook.com.ost');
const PW = { MAILMOVER_TO_PASSWORD: 'pw' };
/** Per run: a corrupt file must give its answer in this time, or it hangs. */
const CASE_TIMEOUT_MS = 60_000;

interface Report {
  status: string;
  totals: { copied: number; alreadyPresent: number; skipped: number; messages: number; leftOut?: Record<string, number> };
  folders: { source: string; destination: string; sourceCount: number; copied: number; error?: { code: string; message: string } }[];
  items: { code: string; reason: string; folder: string }[];
  leftOut?: { folder: string; kind: string; count: number }[];
  error?: { code: string; message: string };
}

const json = (r: CliResult): Report => {
  try {
    return JSON.parse(r.stdout) as Report;
  } catch {
    throw new Error(`no JSON report (exit ${r.code}):\n${r.stdout}\n${r.stderr}`);
  }
};

/** Messages per folder of an account. */
async function counts(d: PlainDovecotServer, user: string): Promise<Map<string, number>> {
  const c = new ImapFlow({ host: '127.0.0.1', port: d.port, secure: false, auth: { user, pass: 'pw' }, logger: false });
  await c.connect();
  const out = new Map<string, number>();
  try {
    for (const e of await c.list()) {
      if (e.flags.has('\\Noselect') || e.flags.has('\\NonExistent')) continue;
      const s = await c.status(e.path, { messages: true });
      out.set(e.path, (s && s.messages) || 0);
    }
  } finally {
    await c.logout();
  }
  return out;
}

const sortKey = (r: MessageRecord) => `${r.subject}\u0000${r.date}\u0000${r.body.slice(0, 200)}`;

describe('pst: source', { timeout: 900_000 }, () => {
  let d: PlainDovecotServer;
  let dir: string;
  let users = 0;
  const user = async () => {
    const u = `p${++users}`;
    await d.addUser(u, 'pw');
    return u;
  };

  before(async () => {
    d = await startDovecot({ separator: '/', tls: false });
    dir = mkdtempSync(join(tmpdir(), 'mm-pst-'));
  });
  after(async () => {
    await d?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  for (const [label, file, expectLeftOut] of [
    ['enron.pst', ENRON, {}],
    ['pstextractortest@outlook.com.ost', OST1, { 'IPM.Appointment': 169 }],
    ['pstextractortestpdf@outlook.com.ost', OST2, { 'IPM.Appointment': 160 }],
  ] as const) {
    it(`${label}: every mail item reaches Dovecot as readpst reads it; non-mail items are counted; a rerun copies 0`, async () => {
      const u = await user();
      const state = join(dir, `${u}.db`);
      const args = ['migrate', '--from', `pst:${file}`, '--to', d.url(u), '--state', state, '--no-progress', '--json'];
      const first = await runCli(args, PW);
      assert.equal(first.code, 0, first.stderr + first.stdout.slice(0, 4000));
      const report = json(first);
      assert.equal(report.status, 'complete');
      assert.deepEqual(report.items, []);
      assert.deepEqual(report.totals.leftOut ?? {}, expectLeftOut, 'non-mail items by class');
      assert.equal(report.totals.copied, report.totals.messages);

      // The independent reader, and what arrived, folder by folder.
      const fromReadpst = readpstFolders(file, join(dir, `${u}-readpst`));
      const destOf = new Map(report.folders.filter((f) => f.source).map((f) => [f.source, f.destination]));
      const here = await counts(d, u);
      for (const [folder, n] of here) if (n > 0) assert.ok([...destOf.values()].includes(folder), `Dovecot's ${folder} came from the PST`);
      const imap = await dumpImapFolders({ host: '127.0.0.1', port: d.port, user: u, pass: 'pw' }, [...fromReadpst.keys()].map((f) => destOf.get(f)!), join(dir, `${u}-imap`));
      const byImapFolder = new Map([...fromReadpst.keys()].map((f) => [destOf.get(f)!, f]));
      const rec = records(fromReadpst, new Map([...imap].map(([dest, files]) => [byImapFolder.get(dest)!, files])), join(dir, `${u}-py`));
      let compared = 0;
      for (const folder of fromReadpst.keys()) {
        assert.ok(destOf.has(folder), `readpst's folder ${folder} was copied`);
        const theirs = rec.readpst[folder]!.map((r) => normalised(r, 'readpst')).sort((a, b) => sortKey(a).localeCompare(sortKey(b)));
        const ours = rec.imap[folder]!.map((r) => normalised(r, 'imap')).sort((a, b) => sortKey(a).localeCompare(sortKey(b)));
        assert.equal(ours.length, theirs.length, `${folder}: mail items`);
        ours.forEach((o, i) => {
          const t = theirs[i]!;
          assert.equal(o.subject, t.subject, `${folder}: subject`);
          if (o.sender && t.sender) assert.equal(o.sender, t.sender, `${folder}: "${o.subject}" sender`);
          else assert.equal(o.senderName, t.senderName, `${folder}: "${o.subject}" sender name`);
          assert.equal(o.date, t.date, `${folder}: "${o.subject}" date`);
          assert.deepEqual(o.attachments, t.attachments, `${folder}: "${o.subject}" attachments`);
          assert.equal(o.body, t.body, `${folder}: "${o.subject}" body text`);
          assert.equal(o.seen, t.seen, `${folder}: "${o.subject}" read or not (\\Seen)`);
          compared++;
        });
      }
      // Folders with mail that readpst does not write are none: everything copied is compared.
      assert.equal(compared, report.totals.copied, 'every copied message was compared with readpst');

      const again = json(await runCli(args, PW));
      assert.equal(again.totals.copied, 0, 'rerun with the ledger');
      const noState = json(await runCli(['migrate', '--from', `pst:${file}`, '--to', d.url(u), '--no-state', '--no-progress', '--json'], PW));
      assert.equal(noState.totals.copied, 0, 'rerun without the ledger');
      assert.equal(noState.totals.alreadyPresent, report.totals.copied);
    });
  }

  it('the summary says what was left out by design, and the run is complete (exit 0)', async () => {
    const u = await user();
    const run = await runCli(['migrate', '--from', `pst:${OST1}`, '--to', d.url(u), '--no-state', '--no-progress'], PW);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stderr + run.stdout, /left out by design \(not mail, or not in the file\): 169 IPM\.Appointment/);
  });

  it('refuses --to pst:, --delete-source, a file that is not a PST, and an encrypted one, with their codes', async () => {
    const u = await user();
    const to = await runCli(['migrate', '--from', d.url(u), '--to', `pst:${ENRON}`, '--no-state'], { MAILMOVER_FROM_PASSWORD: 'pw' });
    assert.equal(to.code, 2);
    assert.match(to.stderr, /MM-CONFIG-URL/);
    const del = await runCli(['migrate', '--from', `pst:${ENRON}`, '--to', d.url(u), '--no-state', '--delete-source'], PW);
    assert.equal(del.code, 2);
    assert.match(del.stderr, /MM-CONFIG-OPTION/);
    const text = join(dir, 'not.pst');
    writeFileSync(text, 'From: a@b\r\n\r\nnot a PST\r\n');
    const notPst = await runCli(['migrate', '--from', `pst:${text}`, '--to', d.url(u), '--no-state', '--no-progress', '--json'], PW);
    assert.equal(notPst.code, 1);
    assert.equal(json(notPst).error?.code, 'MM-PST-NOT-PST');
    const enc = join(dir, 'encrypted.pst');
    copyFileSync(ENRON, enc);
    const bytes = readFileSync(enc);
    bytes[513] = 0x02; // bCryptMethod of a Unicode PST: "high" (cyclic) encryption
    writeFileSync(enc, bytes);
    const encrypted = await runCli(['migrate', '--from', `pst:${enc}`, '--to', d.url(u), '--no-state', '--no-progress', '--json'], PW);
    assert.equal(encrypted.code, 1);
    assert.equal(json(encrypted).error?.code, 'MM-PST-ENCRYPTED');
    assert.deepEqual([...(await counts(d, u)).values()].reduce((a, b) => a + b, 0), 0, 'nothing was copied');
  });

  it('corrupt copies give the documented codes, copy only what they say, and never crash or hang', async () => {
    const original = readFileSync(ENRON);
    // The Unicode header's root (MS-PST 2.2.2.5): the node B-tree's root page at 224, the block B-tree's at 240.
    const nbt = Number(original.readBigUInt64LE(224));
    const bbt = Number(original.readBigUInt64LE(240));
    // A node's first data block: the heap header's client signature (byte 3, 0xBC for a property context) flipped breaks that node only.
    const node = (nid: number) => {
      const f = new PSTFile(ENRON);
      try {
        const n = [...f.getChildDescriptorTree().values()].flat().find((x) => x.descriptorIdentifier === nid)!;
        return f.getOffsetIndexNode(n.dataOffsetIndexIdentifier).fileOffset.toNumber();
      } finally {
        f.close();
      }
    };
    const SYSTEMS_FOLDER = 32994; // ".../Systems", 7 messages
    const SYSTEMS_ITEM = 2097636; // its first message
    /** [label, damage, what must come of it: the mailbox's code, a folder's, the skipped items' (exit 0 allowed when undefined)] */
    const cases: [string, (f: string) => void, { mailbox?: string; folder?: string; items?: number; copied?: number } | undefined][] = [
      ['cut inside the header', (f) => truncateSync(f, 300), { mailbox: 'MM-PST-CORRUPT' }],
      ['cut after the header', (f) => truncateSync(f, 4096), { mailbox: 'MM-PST-CORRUPT' }],
      ['cut at half', (f) => truncateSync(f, Math.floor(original.length / 2)), { mailbox: 'MM-PST-CORRUPT' }],
      ['cut 64 KiB short', (f) => truncateSync(f, original.length - 65536), { mailbox: 'MM-PST-CORRUPT' }],
      ['node B-tree root page type flipped', (f) => flip(f, nbt + 496), { mailbox: 'MM-PST-CORRUPT' }],
      ['block B-tree root entry flipped', (f) => flip(f, bbt + 4), { mailbox: 'MM-PST-CORRUPT' }],
      ['a folder node flipped', (f) => flip(f, node(SYSTEMS_FOLDER) + 3), { folder: 'MM-PST-CORRUPT', copied: 71 - 7 }],
      ['an item node flipped', (f) => flip(f, node(SYSTEMS_ITEM) + 3), { items: 1, copied: 70 }],
      // Bytes no reader checks (pst-extractor reads no block CRCs): any documented outcome, but an outcome.
      ['node B-tree root entry flipped', (f) => flip(f, nbt + 8), undefined],
      ['data byte flipped at 60%', (f) => flip(f, Math.floor(original.length * 0.6)), undefined],
    ];
    const allowed = new Set(['MM-PST-CORRUPT', 'MM-PST-ITEM', 'MM-PST-NOT-PST']);
    for (const [label, damage, expected] of cases) {
      const file = join(dir, `corrupt-${label.replace(/\W+/g, '-')}.pst`);
      copyFileSync(ENRON, file);
      damage(file);
      const u = await user();
      const run = await runCli(['migrate', '--from', `pst:${file}`, '--to', d.url(u), '--no-state', '--no-progress', '--json'], PW, CASE_TIMEOUT_MS);
      assert.notEqual(run.code, null, `${label}: hung (killed after ${CASE_TIMEOUT_MS} ms)`);
      assert.ok([0, 1, 3].includes(run.code!), `${label}: exit ${run.code}\n${run.stderr}`);
      const r = json(run);
      const codes = [r.error?.code, ...r.folders.map((f) => f.error?.code), ...r.items.map((i) => i.code)].filter((c): c is string => !!c);
      for (const c of codes) assert.ok(allowed.has(c), `${label}: code ${c}: ${JSON.stringify(r.error ?? r.folders.find((f) => f.error)?.error ?? r.items[0])}`);
      if (run.code !== 0) assert.ok(codes.length > 0, `${label}: a failure with no code`);
      for (const i of r.items) assert.match(i.reason, /folder ".*": (the item ".*"|an item whose subject cannot be read) \(node \d+\)/, `${label}: an item is reported with its folder and subject`);
      if (expected?.mailbox) assert.deepEqual([run.code, r.error?.code, r.totals.copied], [1, expected.mailbox, 0], `${label}: the mailbox fails, nothing copied`);
      if (expected?.folder) {
        assert.equal(run.code, 1, label);
        assert.deepEqual(r.folders.filter((f) => f.error).map((f) => [f.error!.code, /\(node 32994\) cannot be read/.test(f.error!.message)]), [[expected.folder, true]], `${label}: that folder only`);
      }
      if (expected?.items) {
        assert.equal(run.code, 3, label);
        assert.deepEqual(r.items.map((i) => [i.code, i.folder]), [['MM-PST-ITEM', 'lokay-m/MLOKAY (Non-Privileged)/Systems']], `${label}: that item only`);
      }
      if (expected?.copied !== undefined) assert.equal(r.totals.copied, expected.copied, `${label}: everything else was copied`);
      const arrived = [...(await counts(d, u)).values()].reduce((a, b) => a + b, 0);
      assert.equal(arrived, r.totals.copied, `${label}: what the report calls copied is what arrived`);
    }
  });

  it('a batch of three PST rows completes', async () => {
    const rows = ['source_user,destination_user'];
    const targets: string[] = [];
    for (const file of [ENRON, OST1, OST2]) {
      const u = await user();
      targets.push(u);
      rows.push(`${file},${u}`);
    }
    const b = join(dir, 'batch');
    const csv = join(dir, 'rows.csv');
    const config = join(dir, 'servers.yaml');
    writeFileSync(csv, rows.join('\n') + '\n');
    writeFileSync(join(dir, 'dest-master'), 'adminpw\n');
    writeFileSync(config, ['source:', '  url: "pst:"', 'destination:', `  url: imap://127.0.0.1:${d.port}`, `  master: { user: admin, password: file:${join(dir, 'dest-master')} }`, ''].join('\n'));
    const run = await runCli(['batch', 'run', csv, '--config', config, '--state', join(dir, 'batch.db'), '--report-dir', b, '--json']);
    assert.equal(run.code, 0, run.stderr + run.stdout);
    const report = JSON.parse(run.stdout) as { status: string; jobs: { status: string; copied: number; source: string }[] };
    assert.equal(report.status, 'complete');
    assert.deepEqual(report.jobs.map((j) => [j.source, j.status, j.copied]), [
      [`pst:${ENRON}`, 'complete', 71],
      [`pst:${OST1}`, 'complete', 14],
      [`pst:${OST2}`, 'complete', 2],
    ]);
  });
});

function flip(file: string, at: number): void {
  const bytes = readFileSync(file);
  bytes[at] = bytes[at]! ^ 0xff;
  writeFileSync(file, bytes);
}
