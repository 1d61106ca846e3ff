/**
 * Folder planning stays linear (n log n for the sort) whatever the tree: a million folders, flat,
 * nested and below parents nobody listed; absurd names are refused at once; levels a destination
 * reserves for itself are renamed, reported and checked for collisions.
 *
 * The sizes of the timing test can be changed to measure: MAILMOVER_PLAN_SIZES=12500,50000 ...
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createBelow, planFolders } from '../../src/plan/folder-plan.js';
import { MAX_NAME_BYTES, MAX_NAME_DEPTH } from '../../src/plan/name-limits.js';
import type { FolderInfo } from '../../src/stores/mail-store.js';

const folder = (path: string[], extra: Partial<FolderInfo> = {}): FolderInfo => ({
  path, name: path.join('/'), delimiter: '/', noSelect: false, subscribed: true, specialUse: undefined, ...extra,
});

/**
 * A synthetic tree of `n` listed folders: a third flat, a third three levels deep below 100
 * listed \Noselect tops and 1,000 unlisted middles, the rest one level below a parent of their
 * own that is not listed. Returns the tree and the number of plan entries it must give.
 */
function syntheticTree(n: number): { folders: FolderInfo[]; entries: number } {
  const out: FolderInfo[] = [folder(['INBOX'])];
  const third = Math.floor(n / 3);
  for (let i = 0; i < third; i++) out.push(folder([`Flat ${i}`]));
  for (let i = 0; i < 100; i++) out.push(folder([`Top ${i}`], { noSelect: true }));
  for (let i = 0; i < third; i++) out.push(folder([`Top ${i % 100}`, `Mid ${i % 1000}`, `Leaf ${i}`]));
  let unlisted = 0;
  for (let i = 0; out.length < n; i++, unlisted++) out.push(folder([`Unlisted ${i}`, `Child ${i}`]));
  // Every listed folder, plus 1,000 unlisted middles and one unlisted parent per "Child".
  return { folders: out, entries: out.length + Math.min(1000, third) + unlisted };
}

const DEST = { prefix: '', delimiter: '/' };

test('a million folders (flat, nested, below unlisted parents) plan in bounded time, with the right size', () => {
  const sizes = (process.env.MAILMOVER_PLAN_SIZES ?? '12500,50000,100000,1000000').split(',').map(Number);
  for (const n of sizes) {
    const { folders, entries } = syntheticTree(n);
    const started = performance.now();
    const plan = planFolders(folders, [folder(['INBOX'])], DEST);
    const seconds = (performance.now() - started) / 1000;
    process.stderr.write(`planFolders: ${n} folders -> ${plan.entries.length} entries in ${seconds.toFixed(2)} s\n`);
    assert.equal(plan.entries.length, entries, `plan size for ${n}`);
    assert.equal(plan.collisions.length, 0);
    assert.equal(plan.entries[0]!.destName, 'INBOX');
    assert.ok(seconds < 60, `${n} folders took ${seconds.toFixed(1)} s`);
  }
});

test('20,000 folders below distinct parents that nobody listed: every parent once, before its child', () => {
  const folders = Array.from({ length: 20_000 }, (_, i) => folder([`P${i}`, `Q${i}`, `C${i}`]));
  const started = performance.now();
  const plan = planFolders(folders, [], DEST);
  assert.ok(performance.now() - started < 10_000);
  assert.equal(plan.entries.length, 60_000);
  const position = new Map(plan.entries.map((e, i) => [e.destName, i]));
  for (let i = 0; i < 20_000; i += 997) {
    assert.ok(position.get(`P${i}`)! < position.get(`P${i}/Q${i}`)! && position.get(`P${i}/Q${i}`)! < position.get(`P${i}/Q${i}/C${i}`)!);
    assert.equal(plan.entries[position.get(`P${i}/Q${i}`)!]!.implicit, true);
  }
});

test('a 200 MB folder name is refused at once (MM-FOLDER-NAME-TOO-LONG) and the other folders are planned', () => {
  // Decoded from bytes, as a listed name is (a flat string; 'x'.repeat would build a rope that the first slice flattens).
  const huge = Buffer.alloc(200 * 1024 * 1024, 'x').toString('latin1');
  const started = performance.now();
  const plan = planFolders([folder(['INBOX']), { ...folder(['a']), name: huge, path: [huge] }, folder(['Work'])], [{ ...folder([huge]), name: huge }], DEST);
  const ms = performance.now() - started;
  process.stderr.write(`planFolders with a 200 MB name: ${ms.toFixed(1)} ms\n`);
  assert.ok(ms < 500, `took ${ms.toFixed(0)} ms`);
  assert.deepEqual(plan.entries.map((e) => e.destName), ['INBOX', 'Work']);
  assert.equal(plan.refused.length, 1);
  assert.equal(plan.refused[0]!.error.code, 'MM-FOLDER-NAME-TOO-LONG');
  assert.equal(plan.refused[0]!.error.scope, 'folder');
  assert.ok(plan.refused[0]!.sourceName.length < 200, 'the report carries the start of the name, not 200 MB');
});

test('name limits: 64 KiB of UTF-8 is accepted, one byte more is not; so are 256 levels and not 257', () => {
  const ok = 'é'.repeat(MAX_NAME_BYTES / 2);
  const over = `${ok}x`;
  const deep = Array.from({ length: MAX_NAME_DEPTH }, (_, i) => `l${i}`);
  const plan = planFolders([folder([ok]), folder([over]), folder(deep), folder([...deep, 'more'])], [], DEST);
  assert.deepEqual(plan.refused.map((r) => r.sourceName.slice(0, 3)), ['ééé', 'l0/']);
  assert.ok(plan.entries.some((e) => e.destName === ok));
  assert.ok(plan.entries.some((e) => e.destPath.length === MAX_NAME_DEPTH && !e.implicit));
});

const RESERVED = ['subscriptions', 'dovecot*', 'cur', 'new', 'tmp', 'maildirfolder', 'courierimap*'];

test('reserved levels get the substitute in front, at every level, case-insensitively, with the reason', () => {
  const src = ['subscriptions', 'dovecot.index', 'Dovecot-UIDLIST', 'new', 'Work/tmp', 'Work/CUR/x', 'courierimapkeywords', 'newsletters', 'INBOX/new'].map((n) => folder(n.split('/')));
  const plan = planFolders([folder(['INBOX']), folder(['Work']), ...src], [], DEST, { reservedNames: RESERVED });
  const byName = new Map(plan.entries.map((e) => [e.sourceName, e]));
  const expect: Record<string, string> = {
    subscriptions: '_subscriptions',
    'dovecot.index': '_dovecot.index',
    'Dovecot-UIDLIST': '_Dovecot-UIDLIST',
    new: '_new',
    'Work/tmp': 'Work/_tmp',
    'Work/CUR/x': 'Work/_CUR/x',
    courierimapkeywords: '_courierimapkeywords',
    newsletters: 'newsletters',
    'INBOX/new': 'INBOX/_new',
  };
  for (const [source, dest] of Object.entries(expect)) {
    const e = byName.get(source)!;
    assert.equal(e.destName, dest, source);
    assert.equal(e.renamed, dest !== source, source);
    assert.deepEqual(e.renameReasons, dest !== source ? ['reserved-name'] : [], source);
  }
  assert.equal(plan.entries.find((e) => e.destName === 'INBOX')!.renamed, false, 'INBOX is never renamed');
  // The unlisted parent of Work/CUR/x is renamed the same way.
  assert.equal(plan.entries.find((e) => e.implicit)!.destName, 'Work/_CUR');
  // Without a reserved list (a store that reserves nothing) names stay as they are.
  assert.equal(planFolders([folder(['new'])], [], DEST).entries[0]!.destName, 'new');
});

test('a reserved rename that lands on another source folder is a collision, like any rename', () => {
  const plan = planFolders([folder(['new']), folder(['_new'])], [], DEST, { reservedNames: RESERVED });
  assert.deepEqual(plan.collisions, [{ destName: '_new', sourceNames: ['_new', 'new'] }]);
});

test('a level that only becomes reserved once spelled for the destination is renamed too', () => {
  const plan = planFolders([folder(['cur\u0007'])], [], { prefix: '', delimiter: '.' }, { reservedNames: ['cur_'] });
  assert.equal(plan.entries[0]!.destName, '_cur_');
  assert.deepEqual(plan.entries[0]!.renameReasons, ['reserved-name']);
});

test('createBelow says, in one pass, which entries have a folder to create below them', () => {
  const plan = planFolders([folder(['A'], { noSelect: true }), folder(['A', 'B']), folder(['C'], { noSelect: true }), folder(['C', 'D']), folder(['E'])], [folder(['C', 'D'])], DEST);
  const below = createBelow(plan.entries);
  assert.deepEqual(Object.fromEntries(plan.entries.map((e, i) => [e.destName, below[i]])), { A: true, 'A/B': false, C: false, 'C/D': false, E: false });
  const many = Array.from({ length: 200_000 }, (_, i) => folder([`P${i}`, `C${i}`]));
  const started = performance.now();
  assert.equal(createBelow(planFolders(many, [], DEST).entries).filter(Boolean).length, 200_000);
  assert.ok(performance.now() - started < 20_000);
});
