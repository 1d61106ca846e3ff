/**
 * The library API against a real Dovecot: typed options, progress events, AbortSignal, and
 * isolation of a folder the destination cannot create.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { chownSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type MigrationEvent } from '../../src/index.js';
import { migrateChecked } from '../helpers/migrate-checked.js';
import { startDovecot, type DovecotServer } from '../helpers/dovecot.js';
import { readMailbox, seedMailbox, type FixtureFolder } from '../helpers/fixture.js';

const msg = (i: number, folder: string) => ({
  raw: Buffer.from(`From: lib@example.org\r\nSubject: ${folder} ${i}\r\nMessage-ID: <lib-${folder}-${i}@x>\r\nDate: Tue, 2 Jan 2024 10:00:00 +0000\r\n\r\nbody ${i}\r\n`),
  flags: i % 2 ? ['\\Seen'] : [],
  internalDate: new Date(Date.UTC(2023, 0, 1 + i)),
});
const folders: FixtureFolder[] = ['Alpha', 'Beta', 'Gamma', 'Blocked'].map((name, k) => ({
  path: [name],
  subscribed: true,
  messages: Array.from({ length: 20 + k }, (_, i) => msg(i, name)),
}));

describe('library API', () => {
  let server: DovecotServer;
  before(async () => {
    server = await startDovecot();
    await server.addUser('src', 'src-pw');
    await seedMailbox(server, 'src', 'src-pw', folders);
  });
  after(async () => server?.stop());

  const endpoints = (to: string, toPw: string) => ({
    from: { url: server.url('src'), password: 'src-pw', tlsInsecure: true },
    to: { url: server.url(to), password: toPw, tlsInsecure: true },
  });

  test('progress events add up to the report', async () => {
    await server.addUser('ev', 'ev-pw');
    const events: MigrationEvent[] = [];
    const report = await migrateChecked({ ...endpoints('ev', 'ev-pw'), connections: 3, batchMessages: 7, onEvent: (e) => events.push(e) });
    assert.equal(report.status, 'complete');
    const total = folders.reduce((n, f) => n + f.messages.length, 0);
    assert.equal(report.totals.copied, total);
    const last = events.filter((e): e is Extract<MigrationEvent, { type: 'progress' }> => e.type === 'progress').at(-1);
    assert.ok(last);
    assert.equal(last.counters.copied, total);
    assert.equal(last.counters.foldersDone, last.counters.foldersTotal);
    assert.equal(events.filter((e) => e.type === 'folder-done').length, report.folders.length);
    assert.deepEqual(events.slice(0, 2).map((e) => e.type), ['connected', 'connected']);
  });

  test('an aborted migration stops as interrupted (MM-ABORTED) and a rerun completes without duplicates', async () => {
    await server.addUser('ab', 'ab-pw');
    const controller = new AbortController();
    const report = await migrateChecked({
      ...endpoints('ab', 'ab-pw'),
      connections: 1,
      batchMessages: 5,
      signal: controller.signal,
      onEvent: (e) => {
        if (e.type === 'progress' && e.counters.copied >= 10) controller.abort();
      },
    });
    assert.equal(report.status, 'interrupted');
    assert.equal(report.error?.code, 'MM-ABORTED');
    assert.equal(report.verdict, undefined, 'an interrupted run has no verdict');
    assert.ok(report.folders.some((f) => f.state === 'interrupted'), 'the folder in flight says interrupted');
    assert.ok(report.totals.copied >= 10 && report.totals.copied < 86, `copied ${report.totals.copied}`);
    const rerun = await migrateChecked(endpoints('ab', 'ab-pw'));
    assert.equal(rerun.status, 'complete');
    assert.equal(rerun.totals.copied + rerun.totals.alreadyPresent, rerun.totals.messages);
    assert.deepEqual(await readMailbox(server, 'ab', 'ab-pw'), await readMailbox(server, 'src', 'src-pw'));
  });

  test('a folder the destination cannot create is reported; the other folders arrive', async () => {
    await server.addUser('blk', 'blk-pw');
    // Make CREATE fail for real inside Dovecot: a plain file where the folder's directory must go.
    const maildir = join(server.dir, 'mail', 'blk', 'Maildir');
    mkdirSync(maildir, { recursive: true });
    writeFileSync(join(maildir, 'Blocked'), 'not a directory');
    // The mail processes run as the owner of the mail root (nobody, when the tests run as root).
    const { uid, gid } = statSync(join(server.dir, 'mail'));
    for (const p of [join(server.dir, 'mail', 'blk'), maildir, join(maildir, 'Blocked')]) chownSync(p, uid, gid);
    const report = await migrateChecked(endpoints('blk', 'blk-pw'));
    assert.equal(report.status, 'failed');
    const blocked = report.folders.find((f) => f.source === 'Blocked');
    assert.ok(blocked?.error, JSON.stringify(report.folders));
    assert.match(blocked.error.code, /^MM-FOLDER-(CREATE|SELECT)-FAILED$/);
    const got = await readMailbox(server, 'blk', 'blk-pw');
    for (const name of ['Alpha', 'Beta', 'Gamma']) {
      assert.equal(got.find((f) => f.path[0] === name)?.messages.length, folders.find((f) => f.path[0] === name)!.messages.length, name);
    }
  });
});
