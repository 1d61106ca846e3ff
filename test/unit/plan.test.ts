import { test } from 'node:test';
import assert from 'node:assert/strict';
import { planFolders } from '../../src/plan/folder-plan.js';
import { batchMessages, planMessages } from '../../src/plan/message-plan.js';
import type { FolderInfo, MessageMeta } from '../../src/stores/mail-store.js';

const folder = (path: string[], extra: Partial<FolderInfo> = {}): FolderInfo => ({
  path, name: path.join('/'), delimiter: '/', noSelect: false, subscribed: true, specialUse: undefined, ...extra,
});
const meta = (uid: number, key: string, size = 10, messageId?: string): MessageMeta => ({ uid, key, size, flags: [], internalDate: undefined, messageId });

test('folder plan: prefix and separator of the destination, parents first, missing parents added', () => {
  const src = [folder(['INBOX']), folder(['A', 'B', 'C']), folder(['A']), folder(['Z'], { subscribed: false })];
  const plan = planFolders(src, [folder(['INBOX'], { name: 'INBOX' })], { prefix: 'INBOX.', delimiter: '.' });
  assert.deepEqual(plan.entries.map((e) => e.destName), ['INBOX', 'INBOX.A', 'INBOX.A.B', 'INBOX.A.B.C', 'INBOX.Z']);
  assert.deepEqual(plan.entries.map((e) => e.create), [false, true, true, true, true]);
  const ab = plan.entries.find((e) => e.destName === 'INBOX.A.B')!;
  assert.equal(ab.noSelect, true, 'an unlisted parent is a parent only');
  assert.equal(plan.entries.find((e) => e.destName === 'INBOX.Z')!.subscribe, false);
  assert.equal(plan.entries.find((e) => e.destName === 'INBOX.A')!.subscribe, true);
  assert.deepEqual(plan.collisions, []);
});

test('folder plan: existing destination folders are reused and subscriptions not repeated', () => {
  const plan = planFolders([folder(['Sent'])], [{ ...folder(['Sent']), name: 'Sent', subscribed: true }], { prefix: '', delimiter: '/' });
  assert.equal(plan.entries[0]!.create, false);
  assert.equal(plan.entries[0]!.subscribe, false);
});

test('folder plan: two source names that land on one destination name are a collision', () => {
  const plan = planFolders([folder(['a.b']), folder(['a_b'])], [], { prefix: '', delimiter: '.' });
  assert.equal(plan.collisions.length, 1);
  assert.deepEqual(plan.collisions[0]!.sourceNames.sort(), ['a.b', 'a_b']);
  assert.ok(plan.entries.find((e) => e.sourceName === 'a.b')!.renamed);
});

test('message plan: multiset matching copies exactly the missing copies', () => {
  const src = [meta(1, 'x'), meta(2, 'x'), meta(3, 'x'), meta(4, 'y'), meta(5, 'z')];
  const dst = [meta(10, 'x'), meta(11, 'z'), meta(12, 'other')];
  const plan = planMessages(src, dst);
  assert.deepEqual(plan.toCopy.map((m) => m.uid), [2, 3, 4]);
  assert.equal(plan.alreadyPresent, 2);
  assert.deepEqual(planMessages(src, [...src]).toCopy, []);
});

test('batches are bounded by bytes and count; a big message travels alone', () => {
  const msgs = [meta(1, 'a', 4), meta(2, 'b', 4), meta(3, 'c', 100), meta(4, 'd', 1), meta(5, 'e', 1), meta(6, 'f', 1)];
  const batches = batchMessages(msgs, { maxBytes: 10, maxMessages: 2 });
  assert.deepEqual(batches.map((b) => b.map((m) => m.uid)), [[1, 2], [3], [4, 5], [6]]);
});

test('message plan: identical content with different flags or dates keeps each copy its own', () => {
  const at = (uid: number, flags: string[], day: number): MessageMeta => ({ ...meta(uid, 'same'), flags, internalDate: Date.UTC(2024, 0, day) });
  const src = [at(1, ['\\Seen'], 1), at(2, [], 2), at(3, ['\\Flagged'], 3)];
  // The destination has copies 1 and 3 (and a \Recent that does not count).
  const dst = [at(20, ['\\Flagged', '\\Recent'], 3), at(21, ['\\Seen'], 1)];
  const plan = planMessages(src, dst);
  assert.deepEqual(plan.toCopy.map((m) => m.uid), [2]);
  assert.equal(plan.alreadyPresent, 2);
  // When no exact copy exists, content alone still counts as present (flags are synced later).
  assert.deepEqual(planMessages([at(1, ['\\Seen'], 1)], [at(9, [], 5)]).toCopy, []);
});

test('message plan: a server that changed the size still matches when there is a Message-ID, never without', () => {
  // Courier adds a final CRLF (+2 bytes); Exchange reports sizes of its own.
  const withId = planMessages([meta(1, 'k', 217, 'id@x')], [meta(9, 'k', 219, 'id@x')]);
  assert.deepEqual(withId.toCopy, []);
  assert.equal(withId.alreadyPresent, 1);
  // Two automated messages without a Message-ID, same headers, different bodies: both must arrive.
  const noId = planMessages([meta(1, 'alert', 300), meta(2, 'alert', 310)], [meta(9, 'alert', 300)]);
  assert.deepEqual(noId.toCopy.map((m) => m.uid), [2]);
  // A size match is preferred over a size-blind one.
  const prefer = planMessages([meta(1, 'k', 100, 'a@x'), meta(2, 'k', 200, 'a@x')], [meta(9, 'k', 200, 'a@x')]);
  assert.deepEqual(prefer.toCopy.map((m) => m.uid), [1]);
});

test('folder plan: a destination holding messages or children moves a parent\'s messages into a child named like it', () => {
  const ns = { prefix: '', delimiter: '/' };
  const src = [
    folder(['INBOX']), folder(['INBOX', 'Sub']), // INBOX keeps its messages: its file is apart from its children's directory
    folder(['Projects']), folder(['Projects', '2024']),
    folder(['Lists']), folder(['Lists', 'Lists']), folder(['Lists', 'Lists', 'Old']), // the child name is taken, and mixed too
    folder(['Parent'], { noSelect: true }), folder(['Parent', 'Kid']),
    folder(['Plain']),
  ];
  const plan = planFolders(src, [], ns, { mailOrChildren: true });
  const bySource = new Map(plan.entries.filter((e) => !e.implicit).map((e) => [e.sourceName, e]));
  assert.equal(bySource.get('Projects')!.destName, 'Projects/Projects');
  assert.deepEqual(bySource.get('Projects')!.renameReasons, ['mail-or-children']);
  assert.equal(bySource.get('Projects')!.renamed, true);
  assert.equal(bySource.get('Lists')!.destName, 'Lists/_Lists', 'collision-safe: Lists/Lists is a folder of its own');
  assert.equal(bySource.get('Lists/Lists')!.destName, 'Lists/Lists/Lists');
  for (const name of ['INBOX', 'INBOX/Sub', 'Projects/2024', 'Parent', 'Parent/Kid', 'Plain', 'Lists/Lists/Old']) {
    assert.equal(bySource.get(name)!.destName, name, name);
    assert.deepEqual(bySource.get(name)!.renameReasons, [], name);
  }
  // The old names remain as parents only, created before their children; nothing collides.
  for (const parent of ['Projects', 'Lists', 'Lists/Lists']) {
    const e = plan.entries.find((x) => x.destName === parent)!;
    assert.ok(e.implicit && e.noSelect, parent);
  }
  assert.deepEqual(plan.collisions, []);
  // No folder of the plan that holds messages has a child in the plan.
  const selectable = plan.entries.filter((e) => !e.noSelect && e.destName !== 'INBOX');
  for (const e of selectable) assert.ok(!plan.entries.some((x) => x.destName.startsWith(e.destName + '/')), e.destName);
  // Without the limit nothing moves; a rerun against what was created finds every folder there.
  assert.equal(planFolders(src, [], ns).entries.find((e) => e.sourceName === 'Projects')!.destName, 'Projects');
  const created = plan.entries.map((e) => folder(e.destPath, { noSelect: e.noSelect }));
  assert.ok(planFolders(src, created, ns, { mailOrChildren: true }).entries.every((e) => !e.create));
});
