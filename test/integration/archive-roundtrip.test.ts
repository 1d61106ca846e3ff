/**
 * The round trip through every archive kind: IMAP (real Dovecot) -> `maildir:` -> `mbox:` -> `eml:`
 * -> IMAP (another account) ends exact, message by message (bytes, flags, keywords, INTERNALDATE,
 * folders), so no store's own state (mbox status headers, X-UID) leaks into a message. The mbox
 * stage is also read by Python's stdlib `mailbox`, and compared with the source.
 */
import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runCli } from '../helpers/cli.js';
import { startDovecot, type PlainDovecotServer } from '../helpers/dovecot.js';
import { buildFixture, readMailbox, seedMailbox, type FixtureFolder } from '../helpers/fixture.js';
import { decodeMutf7 } from '../../src/stores/maildir/mutf7.js';

const PW = { MAILMOVER_FROM_PASSWORD: 'pw', MAILMOVER_TO_PASSWORD: 'pw' };

/**
 * The fixture (flags, keywords, dates, nested and non-ASCII folders, From lines in a body, 8-bit
 * headers) less the folders an mbox tree cannot have (messages and children in one folder, INBOX
 * apart), plus a message whose attachment is raw 8-bit bytes with From lines among them.
 */
function roundTripFixture(): FixtureFolder[] {
  const all = buildFixture({ bigMessageBytes: 100_000 });
  const kept = all.filter((f) => f.path.join('/') === 'INBOX' || !all.some((o) => o.path.length > f.path.length && o.path.slice(0, f.path.length).join('/') === f.path.join('/')));
  const bytes: number[] = [];
  let x = 0x2545f491;
  for (let i = 0; i < 6000; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    const b = (x >>> 16) & 0xff;
    bytes.push(b === 0 || b === 10 || b === 13 ? 0xa0 : b);
    if (i % 70 === 69) bytes.push(13, 10);
    if (i % 1000 === 500) bytes.push(...Buffer.from('\r\nFrom the binary part\r\n>From quoted too\r\n'));
  }
  const raw = Buffer.concat([
    Buffer.from(['From: Bin <bin@example.org>', 'To: x@example.net', 'Subject: binary-ish', 'Message-ID: <binaryish@mailmover.test>', 'MIME-Version: 1.0', 'Content-Type: multipart/mixed; boundary="b1"', '', '--b1', 'Content-Type: text/plain', '', 'From the start of a body line', '--b1', 'Content-Type: application/octet-stream', 'Content-Transfer-Encoding: 8bit', ''].join('\r\n') + '\r\n'),
    Buffer.from(bytes),
    Buffer.from('\r\n--b1--\r\n'),
  ]);
  kept.push({ path: ['Bin&är'], subscribed: true, messages: [{ raw, flags: ['\\Seen', '$Forwarded', 'Projekt'], internalDate: new Date('2019-09-09T09:09:09Z') }] });
  return kept;
}

/** Python's mailbox.mbox over a tree: each message's bytes with the store fields taken off and one level of >From quoting undone, CRLF, hashed; Status and X-Status letters, keywords, From-line date. */
const PY_MBOX = String.raw`
import hashlib, json, mailbox, os, re, sys
root = sys.argv[1]
store = (b'status', b'x-status', b'x-keywords', b'content-length', b'x-uid', b'x-imapbase')
out = {}
for dirpath, dirnames, filenames in os.walk(root):
    dirnames[:] = [d for d in dirnames if not d.startswith('.')]
    for name in filenames:
        if name.startswith('.'):
            continue
        path = os.path.join(dirpath, name)
        rel = os.path.relpath(path, root)
        msgs = []
        mb = mailbox.mbox(path, create=False)
        for key in mb.keys():
            raw = mb.get_bytes(key)
            m = mb.get_message(key)
            head, sep, body = raw.partition(b'\n\n')
            lines = [l for l in head.split(b'\n') if l.split(b':')[0].lower() not in store]
            own = b'\n'.join(lines) + sep + body
            own = re.sub(rb'(?m)^>(>*From )', rb'\1', own)
            crlf = own.replace(b'\n', b'\r\n')
            # The store fields from the header lines themselves (the email parser stops at a line it
            # cannot parse, and one fixture message has such a line above them).
            fields = {l.split(b':')[0].lower(): l.partition(b':')[2].decode('latin1').strip() for l in head.split(b'\n') if l.split(b':')[0].lower() in store}
            letters = ''.join(sorted(fields.get(b'status', '') + fields.get(b'x-status', '')))
            msgs.append({'sha256': hashlib.sha256(crlf).hexdigest(), 'flags': letters, 'keywords': sorted(fields.get(b'x-keywords', '').split()), 'from': m.get_from()})
        out['INBOX' if rel == 'inbox' else rel] = msgs
print(json.dumps(out))
`;

describe('archives: round trip', () => {
  let d: PlainDovecotServer;
  let dir: string;
  const fixture = roundTripFixture();
  before(async () => {
    d = await startDovecot({ separator: '/', tls: false });
    for (const u of ['origin', 'arrival']) await d.addUser(u, 'pw');
    await seedMailbox(d, 'origin', 'pw', fixture);
    dir = mkdtempSync(join(tmpdir(), 'mm-roundtrip-'));
  });
  after(async () => {
    await d?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('IMAP -> maildir -> mbox -> eml -> IMAP ends exact; Python reads the mbox stage as the source', async () => {
    const stages = [d.url('origin'), `maildir:${join(dir, 'md')}`, `mbox:${join(dir, 'mbox')}`, `eml:${join(dir, 'eml')}`, d.url('arrival')];
    for (let i = 0; i + 1 < stages.length; i++) {
      const run = await runCli(['migrate', '--from', stages[i]!, '--to', stages[i + 1]!, '--no-state', '--no-progress'], PW);
      assert.equal(run.code, 0, `${stages[i]} -> ${stages[i + 1]}\n${run.stderr}${run.stdout}`);
    }
    const origin = await readMailbox(d, 'origin', 'pw');
    assert.deepEqual(await readMailbox(d, 'arrival', 'pw'), origin);
    assert.ok(origin.some((f) => f.path.join('/') === 'Bin&är' && f.messages.length === 1));

    const py = JSON.parse(execFileSync('python3', ['-c', PY_MBOX, join(dir, 'mbox')], { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 })) as Record<string, { sha256: string; flags: string; keywords: string[]; from: string }[]>;
    const byFolder = new Map(Object.entries(py).map(([k, v]) => [k.split('/').map(decodeMutf7).join('/'), v]));
    // Python's mailbox gives a message with no final line end one (the blank line that ends it in the file).
    const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
    const pythonSha = new Map(fixture.flatMap((f) => f.messages).map((m) => [sha(m.raw), m.raw.subarray(-2).toString() === '\r\n' ? sha(m.raw) : sha(Buffer.concat([m.raw, Buffer.from('\r\n')]))]));
    const asctime = (ms: number) => new Date(ms).toUTCString().replace(/^\w+, (\d\d) (\w+) (\d+) ([\d:]+) GMT$/, '$2 $1 $4 $3').replace(/ 0(\d) /, '  $1 ');
    for (const f of origin.filter((x) => !x.noSelect)) {
      const want = f.messages.map((m) => {
        const letters = [m.flags.includes('\\Seen') ? 'R' : '', 'O', m.flags.includes('\\Deleted') ? 'D' : '', m.flags.includes('\\Flagged') ? 'F' : '', m.flags.includes('\\Answered') ? 'A' : '', m.flags.includes('\\Draft') ? 'T' : ''].join('');
        return `${pythonSha.get(m.sha256) ?? m.sha256} ${[...letters].sort().join('')} ${m.flags.filter((x) => !x.startsWith('\\')).sort().join(',')} ${asctime(m.internalDate)}`;
      });
      const have = (byFolder.get(f.path.join('/')) ?? []).map((m) => `${m.sha256} ${m.flags} ${m.keywords.join(',')} ${m.from.replace(/^\S+ \w+ /, '')}`);
      assert.deepEqual(have.sort(), want.sort(), `python reads ${f.path.join('/')} in the mbox stage`);
    }
  });
});
