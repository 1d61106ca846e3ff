/**
 * --include in the server's own spelling: on a Courier-style Dovecot (prefix "INBOX.", separator
 * "."), `--include '^INBOX.Archive'` copies the Archive tree; the folders left out are summed up
 * in one line (their names stay in the report); a pattern that matches nothing is named.
 */
import { strict as assert } from 'node:assert';
import { after, before, describe, it } from 'node:test';
import { runCli } from '../helpers/cli.js';
import { startDovecot, type PlainDovecotServer } from '../helpers/dovecot.js';
import { readMailbox, seedMailbox, type FixtureFolder } from '../helpers/fixture.js';

const msg = (n: number) => ({ raw: Buffer.from(`Subject: m${n}\r\nMessage-ID: <m${n}@x>\r\n\r\nbody ${n}\r\n`), flags: [], internalDate: new Date(Date.UTC(2024, 0, 1 + n)) });
const OTHERS = Array.from({ length: 12 }, (_, i) => `Project ${i + 1}`);

describe('--include as the server spells it', () => {
  let src: PlainDovecotServer;
  let dst: PlainDovecotServer;
  before(async () => {
    src = await startDovecot({ separator: '.', prefix: 'INBOX.', tls: false });
    dst = await startDovecot({ tls: false });
    await src.addUser('alice', 'pw');
    for (const u of ['bob', 'carol']) await dst.addUser(u, 'pw');
    const folders: FixtureFolder[] = [
      { path: ['INBOX'], subscribed: true, messages: [msg(1)] },
      { path: ['Archive'], subscribed: true, messages: [msg(2)] },
      { path: ['Archive', '2024'], subscribed: true, messages: [msg(3), msg(4)] },
      ...OTHERS.map((name, i) => ({ path: [name], subscribed: true, messages: [msg(10 + i)] })),
    ];
    await seedMailbox(src, 'alice', 'pw', folders);
  });
  after(async () => {
    await src?.stop();
    await dst?.stop();
  });

  it("copies the tree the server's own name names, and sums up what it left out", async () => {
    const run = await runCli(['migrate', '--from', src.url('alice'), '--to', dst.url('bob'), '--no-state', '--no-progress', '--include', '^INBOX\\.Archive'], { MAILMOVER_FROM_PASSWORD: 'pw', MAILMOVER_TO_PASSWORD: 'pw' });
    assert.equal(run.code, 0, run.stderr + run.stdout);
    const got = await readMailbox(dst, 'bob', 'pw');
    const count = (path: string) => got.find((f) => f.path.join('/') === path)?.messages.length;
    assert.equal(count('Archive'), 1);
    assert.equal(count('Archive/2024'), 2);
    assert.equal(got.find((f) => f.path[0] === 'Project 1'), undefined);
    const leftOut = run.stdout.split('\n').filter((l) => l.startsWith('left out:'));
    assert.equal(leftOut.length, 1, run.stdout);
    // The 12 projects, INBOX and the server's own Drafts, Sent, Trash and Junk.
    assert.match(leftOut[0]!, /^left out: 17 folders not matched by --include/);
    assert.doesNotMatch(run.stdout, /warning: --include/);
  });

  it('names a pattern that matched nothing', async () => {
    const run = await runCli(['migrate', '--from', src.url('alice'), '--to', dst.url('carol'), '--no-state', '--no-progress', '--include', '^Archiv$', '--include', 'Project 1$'], { MAILMOVER_FROM_PASSWORD: 'pw', MAILMOVER_TO_PASSWORD: 'pw' });
    assert.equal(run.code, 0, run.stderr + run.stdout);
    assert.match(run.stdout, /warning: --include '\^Archiv\$' matched no folder/);
    assert.doesNotMatch(run.stdout, /warning: --include 'Project 1\$'/);
    const json = await runCli(['plan', '--from', src.url('alice'), '--to', dst.url('carol'), '--include', '^Archiv$', '--json'], { MAILMOVER_FROM_PASSWORD: 'pw', MAILMOVER_TO_PASSWORD: 'pw' });
    assert.deepEqual((JSON.parse(json.stdout) as { unmatchedIncludes?: string[] }).unmatchedIncludes, ['^Archiv$']);
  });
});
