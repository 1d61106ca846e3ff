/**
 * A hostile source (the scripted IMAP server: folder names no real server here would list) copied
 * into each local archive store: names that would climb out of the root (`..`, `a/../../b`), hide
 * (`.x`), or collide with the store's own files (`cur`, `tmp`, `dovecot.index`) are made safe by the
 * planner and reported; nothing is written outside the destination root; every message arrives.
 */
import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runCli } from '../helpers/cli.js';
import { exchange } from '../helpers/scripted-imap/personalities.js';
import { startScriptedImap, type ScriptedImapServer, type ScriptedMessage } from '../helpers/scripted-imap/server.js';

const NAMES = ['..', '../..', 'a/../../b', '.hidden', 'cur', 'tmp', 'new', 'dovecot.index', 'dovecot-uidlist', 'x/..', 'Work/./Clients', 'Back\\slash', 'INBOX/..'];

function message(i: number, folder: string): ScriptedMessage {
  const raw = Buffer.from(`From: a@example.com\r\nTo: b@example.com\r\nSubject: ${folder} #${i}\r\nMessage-ID: <m${i}.${Buffer.from(folder).toString('hex')}@x>\r\n\r\nbody ${i}\r\n`);
  return { raw, flags: i % 2 ? ['\\Seen'] : [], internalDate: new Date(Date.UTC(2024, 0, 1 + i)) };
}

/** Every file below a directory, as paths relative to it. */
function tree(dir: string): string[] {
  return execFileSync('find', [dir, '-mindepth', '1'], { encoding: 'utf8' }).split('\n').filter(Boolean).map((p) => p.slice(dir.length + 1)).sort();
}

describe('hostile folder names into local archives', () => {
  let src: ScriptedImapServer;
  let base: string;
  let total = 0;
  before(async () => {
    const folders = [{ name: 'INBOX', subscribed: true, messages: [message(0, 'INBOX')] }, ...NAMES.map((name, i) => ({ name, subscribed: true, messages: [message(i + 1, name), message(i + 100, name)] }))];
    total = folders.reduce((n, f) => n + f.messages.length, 0);
    src = await startScriptedImap({ personality: exchange, users: { alice: { password: 'pw', folders } } });
    base = mkdtempSync(join(tmpdir(), 'mm-archive-hostile-'));
  });
  after(async () => {
    await src?.stop();
    if (base) rmSync(base, { recursive: true, force: true });
  });

  for (const target of ['maildir', 'maildir?layout=fs', 'eml'] as const) {
    it(`into ${target}: nothing outside the root, every message arrives`, async () => {
      const slot = join(base, target.replace(/\W/g, '-'));
      const root = join(slot, 'inner', 'root');
      execFileSync('mkdir', ['-p', join(slot, 'inner')]);
      const url = target === 'eml' ? `eml:${root}` : target === 'maildir' ? `maildir:${root}` : `maildir:${root}?layout=fs`;
      const run = await runCli(['migrate', '--from', `imap://alice@127.0.0.1:${src.port}`, '--to', url, '--no-state', '--no-progress', '--merge-collisions', '--json'], { MAILMOVER_FROM_PASSWORD: 'pw' });
      assert.equal(run.code, 0, run.stderr + run.stdout.slice(-3000));
      // Only the root was created in its parent; nothing beside or above it.
      assert.deepEqual(tree(slot).filter((p) => !p.startsWith('inner/root/')), ['inner', 'inner/root']);
      const report = JSON.parse(run.stdout) as { totals: { copied: number }; folders: { source: string; destination: string; renamed: boolean }[] };
      assert.equal(report.totals.copied, total);
      for (const name of ['..', '../..', 'a/../../b', '.hidden']) {
        const f = report.folders.find((x) => x.source === name);
        if (f) assert.ok(f.renamed || f.destination !== name, `"${name}" was renamed (${f.destination})`);
      }
      // Every message is a file below the root (read by find, not by mailmover).
      const files = tree(root).filter((p) => (target === 'eml' ? /\.eml$/.test(p) : /\/(cur|new)\/[^/]+$/.test(`/${p}`) && !p.endsWith('/')));
      assert.equal(files.length, total, files.join('\n'));
    });
  }
});
