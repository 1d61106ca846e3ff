import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MigrateError } from '../../src/core/errors.js';
import { planFolders } from '../../src/plan/folder-plan.js';
import { parseFolderRules } from '../../src/plan/folder-rules.js';
import { specialRoleOf, viewRoleOf } from '../../src/plan/special-use.js';
import type { FolderInfo } from '../../src/stores/mail-store.js';

const f = (path: string[], extra: Partial<FolderInfo> = {}): FolderInfo => ({
  path, name: path.join('/'), delimiter: '/', noSelect: false, subscribed: true, specialUse: undefined, ...extra,
});
const dovecotDest = [f(['INBOX']), f(['Sent'], { specialUse: '\\Sent' }), f(['Drafts'], { specialUse: '\\Drafts' }), f(['Trash'], { specialUse: '\\Trash' }), f(['Junk'], { specialUse: '\\Junk' })];
const slash = { prefix: '', delimiter: '/' };
const names = (plan: ReturnType<typeof planFolders>) => plan.entries.map((e) => `${e.implicit ? '(parent)' : e.sourceName} -> ${e.destName}${e.mappedBy ? ` [${e.mappedBy}]` : ''}`);

test('special folders: server attribute first, then well-known names in several languages, only at the top', () => {
  assert.equal(specialRoleOf(f(['Sent Items'])), '\\Sent');
  assert.equal(specialRoleOf(f(['Gesendete Objekte'])), '\\Sent');
  assert.equal(specialRoleOf(f(['Éléments supprimés'])), '\\Trash');
  assert.equal(specialRoleOf(f(['Junk E-mail'])), '\\Junk');
  assert.equal(specialRoleOf(f(['Mes envois'], { specialUse: '\\sent' })), '\\Sent', 'lower-case attribute (Cyrus)');
  assert.equal(specialRoleOf(f(['Projects', 'Archive'])), undefined, 'a nested "Archive" is an ordinary folder');
  assert.equal(specialRoleOf(f(['[Gmail]', 'Sent Mail'])), '\\Sent');
  assert.equal(viewRoleOf(f(['[Gmail]', 'All Mail'])), '\\All');
  assert.equal(viewRoleOf(f(['[Google Mail]', 'Important'], { specialUse: '\\Important' })), '\\Important');
  assert.equal(viewRoleOf(f(['All Mail'])), undefined);
});

test('Exchange-style names map onto the destination special folders; --no-automap keeps them', () => {
  const src = [f(['INBOX']), f(['Sent Items']), f(['Sent Items', '2019']), f(['Deleted Items']), f(['Junk Email']), f(['Drafts']), f(['Conversation History'])];
  const plan = planFolders(src, dovecotDest, slash);
  assert.deepEqual(names(plan), [
    'INBOX -> INBOX',
    'Conversation History -> Conversation History',
    'Drafts -> Drafts',
    'Junk Email -> Junk [special-use]',
    'Sent Items -> Sent [special-use]',
    'Sent Items/2019 -> Sent/2019 [special-use]',
    'Deleted Items -> Trash [special-use]',
  ]);
  const off = planFolders(src, dovecotDest, slash, { rules: parseFolderRules({ automap: false }) });
  assert.ok(off.entries.some((e) => e.destName === 'Sent Items'));
});

test('Gmail: views left out by default, [Gmail] folders mapped, the emptied [Gmail] parent dropped', () => {
  const src = [
    f(['INBOX']),
    f(['[Gmail]'], { noSelect: true }),
    f(['[Gmail]', 'All Mail'], { specialUse: '\\All' }),
    f(['[Gmail]', 'Important'], { specialUse: '\\Important' }),
    f(['[Gmail]', 'Starred'], { specialUse: '\\Flagged' }),
    f(['[Gmail]', 'Sent Mail'], { specialUse: '\\Sent' }),
    f(['[Gmail]', 'Spam'], { specialUse: '\\Junk' }),
    f(['Work']),
  ];
  const plan = planFolders(src, dovecotDest, slash);
  assert.deepEqual(names(plan), ['INBOX -> INBOX', '[Gmail]/Spam -> Junk [special-use]', '[Gmail]/Sent Mail -> Sent [special-use]', 'Work -> Work']);
  assert.deepEqual(plan.excluded.map((e) => `${e.sourceName}:${e.reason}`), ['[Gmail]/All Mail:gmail-view', '[Gmail]/Important:gmail-view', '[Gmail]/Starred:gmail-view']);
  const all = planFolders(src, dovecotDest, slash, { rules: parseFolderRules({ includeGmailViews: true }) });
  assert.ok(all.entries.some((e) => e.destName === '[Gmail]/All Mail'));
});

test('include, exclude, map, rename and dest-prefix compose in that order', () => {
  const src = [f(['INBOX']), f(['Old Mail']), f(['Old Mail', '2001']), f(['Private']), f(['Work', 'Tmp'])];
  const rules = parseFolderRules({ exclude: ['^Private$', '/Tmp$'], map: ['Old Mail=Archive/Old'], rename: ['s|^Archive/Old/(\\d+)$|Archive/Year $1|'] });
  const plan = planFolders(src, dovecotDest, slash, { rules });
  assert.deepEqual(names(plan), ['INBOX -> INBOX', '(parent) -> Archive', 'Old Mail -> Archive/Old [map]', 'Old Mail/2001 -> Archive/Year 2001 [rename]']);
  assert.deepEqual(plan.excluded.map((e) => e.reason), ['excluded', 'excluded']);
  const prefixed = planFolders([f(['INBOX']), f(['Sent Items'])], dovecotDest, { prefix: 'INBOX.', delimiter: '.' }, { rules: parseFolderRules({ destPrefix: 'Imported/old-server' }) });
  assert.deepEqual(names(prefixed), ['(parent) -> INBOX.Imported', '(parent) -> INBOX.Imported.old-server', 'INBOX -> INBOX.Imported.old-server.INBOX [dest-prefix]', 'Sent Items -> INBOX.Imported.old-server.Sent Items [dest-prefix]']);
  const only = planFolders(src, dovecotDest, slash, { rules: parseFolderRules({ include: ['^Work'] }) });
  assert.deepEqual(only.entries.filter((e) => !e.implicit).map((e) => e.sourceName), ['Work/Tmp']);
});

test('a mapping that merges two folders is a collision', () => {
  const plan = planFolders([f(['Sent']), f(['Sent Items'], { specialUse: '\\Sent' })], dovecotDest, slash);
  assert.deepEqual(plan.collisions.map((c) => [c.destName, c.sourceNames.sort()]), [['Sent', ['Sent', 'Sent Items']]]);
});

test('bad rules are refused with MM-CONFIG-RULE', () => {
  for (const bad of [{ include: ['(unclosed'] }, { map: ['no-equals'] }, { map: ['a=/b'] }, { rename: ['x|a|b|'] }, { rename: ['s|a|b'] }, { rename: ['s|a|b|q'] }, { destPrefix: 'a//b' }]) {
    assert.throws(() => parseFolderRules(bad), (e: unknown) => e instanceof MigrateError && e.code === 'MM-CONFIG-RULE', JSON.stringify(bad));
  }
});

test("other users' and shared folders are left out and reported, never merged into the tree", () => {
  const plan = planFolders([f(['INBOX']), { ...f(['#shared.team']), name: '#shared.team', outside: true }], dovecotDest, slash);
  assert.deepEqual(names(plan), ['INBOX -> INBOX']);
  assert.deepEqual(plan.excluded, [{ sourceName: '#shared.team', reason: 'other-namespace' }]);
});
