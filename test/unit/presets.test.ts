/**
 * Provider presets: pure data and a pure merge. An explicit value always wins; a bare user takes
 * the preset's server; the destination's item size limit and the source's non-mail folders are
 * applied; a batch config's `preset:` gives the same defaults; `mailmover presets` prints them.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { mergePreset, presetEndpoint, PRESETS, PRESET_NAMES } from '../../src/core/presets.js';
import { parseEndpoint } from '../../src/core/endpoint.js';
import { parseFolderRules } from '../../src/plan/folder-rules.js';
import { loadBatchConfig } from '../../src/batch/config.js';
import { runCli } from '../helpers/cli.js';

let dir: string;
before(() => (dir = mkdtempSync(path.join(os.tmpdir(), 'mm-presets-'))));
after(() => rmSync(dir, { recursive: true, force: true }));

test('a bare user takes the preset server; a full URL overrides host, port and TLS', () => {
  const url = presetEndpoint(PRESETS.gmail, 'alice@example.com')!;
  const e = parseEndpoint(url, 'from');
  assert.deepEqual([e.protocol, e.host, e.port, e.user], ['imaps', 'imap.gmail.com', 993, 'alice@example.com']);
  assert.equal(presetEndpoint(PRESETS.gmail, 'imap://bob@127.0.0.1:1143'), 'imap://bob@127.0.0.1:1143');
  assert.equal(presetEndpoint(PRESETS.exchange, 'bob'), undefined, 'on-premises has no host');
  assert.throws(() => mergePreset(PRESETS.exchange, undefined, { from: 'bob', to: 'imap://x@h', exclude: [] }), /--from-preset exchange has no server name/);
});

test('merge: explicit values win, else the presets (connections the smaller, size limit the destination\'s)', () => {
  const m = mergePreset(PRESETS.gmail, PRESETS.m365, { from: 'a@example.com', to: 'b@example.com', exclude: [] });
  assert.equal(m.to, 'imaps://b%40example.com@outlook.office365.com:993');
  assert.equal(m.connections, Math.min(PRESETS.gmail.connections, PRESETS.m365.connections));
  assert.equal(m.maxMessageSize, 35 * 1024 * 1024);
  assert.deepEqual(m.exclude, [], 'a Gmail source adds no exclusions');
  const given = mergePreset(PRESETS.m365, PRESETS.gmail, { from: 'imap://a@127.0.0.1:143', to: 'b@example.com', connections: 9, maxMessageSize: 1000, exclude: ['^Junk$'] });
  assert.deepEqual([given.from, given.connections, given.maxMessageSize], ['imap://a@127.0.0.1:143', 9, 1000]);
  assert.deepEqual(given.exclude, ['^Junk$', ...PRESETS.m365.excludeFolders]);
  assert.deepEqual(mergePreset(PRESETS.m365, undefined, { from: 'imap://a@h', to: 'imap://b@h', exclude: ['^X$'], presetExcludes: false }).exclude, ['^X$']);
  const none = mergePreset(undefined, undefined, { from: 'imap://a@h', to: 'imap://b@h', exclude: [] });
  assert.deepEqual([none.connections, none.maxMessageSize], [undefined, undefined]);
});

test("Exchange's non-mail folders are left out by the exclusions, mail folders are not", () => {
  const rules = parseFolderRules({ exclude: PRESETS.m365.excludeFolders });
  const out = (p: string) => rules.exclude.some((r) => r.test(p));
  for (const p of ['Calendar', 'Calendar/Birthdays', 'Contacts', 'Tasks', 'Notes', 'Journal', 'Sync Issues', 'Sync Issues/Conflicts', 'Conversation History']) assert.ok(out(p), p);
  for (const p of ['INBOX', 'Sent Items', 'Calendars of 2024', 'Projects/Calendar', 'Notes from Bob']) assert.ok(!out(p), p);
});

test('every preset is complete and states a size limit and a connection count', () => {
  for (const name of PRESET_NAMES) {
    const p = PRESETS[name];
    assert.equal(p.name, name);
    assert.ok(p.maxMessageSize && p.maxMessageSize >= 10 * 1024 * 1024, name);
    assert.ok(p.connections >= 1 && p.connections <= 16, name);
    assert.ok(p.port === 993, name);
    assert.equal(p.signIn === 'oauth', p.oauthProvider !== undefined, name);
  }
});

test('batch config: preset: gives the url, the size limit and the exclusions; the file overrides them', () => {
  const file = path.join(dir, 'c.yaml');
  writeFileSync(file, ['source:', '  preset: m365', 'destination:', '  preset: gmail', 'rules:', "  exclude: ['^Junk$']", ''].join('\n'));
  const c = loadBatchConfig(file);
  assert.deepEqual([c.source.protocol, c.source.host, c.source.port], ['imaps', 'outlook.office365.com', 993]);
  assert.equal(c.defaults.maxMessageSize, 25 * 1024 * 1024);
  assert.equal(c.defaults.connections, 4);
  assert.deepEqual(c.rules.exclude, ['^Junk$', ...PRESETS.m365.excludeFolders]);
  writeFileSync(file, ['source:', '  preset: exchange', '  url: imaps://mail.example.org', 'destination:', '  preset: m365', '  url: imap://127.0.0.1:1143', 'defaults: { maxMessageSize: 1000, connections: 1 }', ''].join('\n'));
  const o = loadBatchConfig(file);
  assert.deepEqual([o.source.host, o.destination.host, o.destination.port, o.defaults.maxMessageSize, o.defaults.connections], ['mail.example.org', '127.0.0.1', 1143, 1000, 1]);
  writeFileSync(file, ['source:', '  preset: exchange', 'destination:', '  preset: hotmail', ''].join('\n'));
  assert.throws(() => loadBatchConfig(file), /source\.url must be/);
  writeFileSync(file, ['source:', '  preset: gmail', '  oauth: { credentials: "/etc/mm/{user}.json" }', 'destination:', '  preset: m365', ''].join('\n'));
  assert.deepEqual(loadBatchConfig(file).source.oauth, { credentials: '/etc/mm/{user}.json' });
  writeFileSync(file, ['source:', '  preset: hotmail', 'destination:', '  preset: m365', ''].join('\n'));
  assert.throws(() => loadBatchConfig(file), /c\.yaml:2:\d+: source\.preset must be one of gmail, m365/);
});

test('mailmover presets prints every preset (table and JSON); a bad preset is a usage error', async () => {
  const table = await runCli(['presets']);
  assert.equal(table.code, 0, table.stderr);
  for (const name of PRESET_NAMES) assert.match(table.stdout, new RegExp(`^${name}: `, 'm'));
  assert.match(table.stdout, /imaps:\/\/outlook\.office365\.com:993/);
  const json = await runCli(['presets', '--json']);
  const list = JSON.parse(json.stdout) as { name: string; maxMessageSize: number }[];
  assert.deepEqual(list.map((p) => p.name), [...PRESET_NAMES]);
  assert.equal(list.find((p) => p.name === 'm365')!.maxMessageSize, 35 * 1024 * 1024);
  const bad = await runCli(['plan', '--from-preset', 'exchange', '--from', 'bob', '--to', 'imap://x@127.0.0.1:1', '--no-state']);
  assert.equal(bad.code, 2, bad.stderr);
  assert.match(bad.stderr, /MM-CONFIG-OPTION: --from-preset exchange has no server name/);
  const unknown = await runCli(['plan', '--from-preset', 'hotmail', '--from', 'bob', '--to', 'imap://x@127.0.0.1:1', '--no-state']);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /MM-USAGE: .*hotmail/);
});
