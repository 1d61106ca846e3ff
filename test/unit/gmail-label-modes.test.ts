/**
 * Placement of Gmail messages by label (src/stores/gmail/label-modes.ts, pure) and the batch
 * configuration's defaults.gmailLabels / defaults.labelPriority.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadBatchConfig } from '../../src/batch/config.js';
import { ARCHIVE, keywordMap, parseLabelMode, parseLabelPriority, placeMessage } from '../../src/stores/gmail/label-modes.js';

let dir: string;
before(() => (dir = mkdtempSync(path.join(os.tmpdir(), 'mm-gmail-modes-'))));
after(() => rmSync(dir, { recursive: true, force: true }));

test('folders: one place per placing label; Starred and Important become flags; no label is Archive', () => {
  assert.deepEqual(placeMessage(['\\Inbox', 'Work', '\\Important', '\\Starred'], 'folders', [], new Map()), { places: ['\\Inbox', 'Work'], addFlags: ['\\Flagged', '$Important'], otherLabels: [] });
  assert.deepEqual(placeMessage(['\\Important'], 'folders', [], new Map()).places, [ARCHIVE]);
  assert.deepEqual(placeMessage([], 'first', [], new Map()).places, [ARCHIVE]);
});

test('first: the admin priority, then Draft, user labels by name, Inbox, Sent', () => {
  assert.deepEqual(placeMessage(['\\Inbox', 'Work', 'Clients', '\\Sent'], 'first', [], new Map()), { places: ['Clients'], addFlags: [], otherLabels: ['Work', '\\Inbox', '\\Sent'] });
  assert.deepEqual(placeMessage(['\\Inbox', 'Work', '\\Draft'], 'first', [], new Map()).places, ['\\Draft']);
  assert.deepEqual(placeMessage(['\\Inbox', '\\Sent'], 'first', [], new Map()).places, ['\\Inbox']);
  assert.deepEqual(placeMessage(['\\Inbox', 'Work', 'Clients'], 'first', parseLabelPriority('Work, inbox'), new Map()).places, ['Work']);
  assert.deepEqual(placeMessage(['\\Inbox', 'Clients'], 'first', parseLabelPriority('Work,Inbox'), new Map()).places, ['\\Inbox']);
});

test('keywords: INBOX, else Drafts, Sent, Archive; user labels as keyword-safe keywords, never shared', () => {
  const map = keywordMap(['Work', 'Team Notes', 'Team_Notes', 'Über', '$money', '\\Inbox', 'a'.repeat(80)]);
  assert.equal(map.get('Team Notes'), 'Team_Notes');
  assert.equal(map.get('Team_Notes'), 'Team_Notes-2');
  assert.equal(map.get('Über'), '_ber');
  assert.equal(map.get('$money'), '_money');
  assert.equal(map.get('a'.repeat(80))!.length, 50);
  assert.ok(!map.has('\\Inbox'));
  assert.deepEqual(placeMessage(['Work', '\\Sent'], 'keywords', [], map), { places: ['\\Sent'], addFlags: ['Work'], otherLabels: [] });
  assert.deepEqual(placeMessage(['Work', '\\Inbox', '\\Sent'], 'keywords', [], map).places, ['\\Inbox']);
  assert.deepEqual(placeMessage(['Work'], 'keywords', [], map).places, [ARCHIVE]);
});

test('bad modes and priorities are MM-CONFIG-OPTION; none is off', () => {
  assert.equal(parseLabelMode('NONE'), 'off');
  assert.throws(() => parseLabelMode('tags'), /MM-CONFIG-OPTION|folders, first, keywords or off/);
  assert.throws(() => parseLabelPriority('Work,,Inbox'), (e: Error & { code?: string }) => e.code === 'MM-CONFIG-OPTION');
  assert.throws(() => parseLabelPriority('Work,work,Inbox,INBOX'), /twice/);
});

test('batch config: defaults.gmailLabels and defaults.labelPriority are read and checked with their line', () => {
  const yaml = (name: string, ...lines: string[]) => {
    const file = path.join(dir, name);
    writeFileSync(file, ['source:', '  url: imap://127.0.0.1:1143', 'destination:', '  url: imap://127.0.0.1:2143', ...lines, ''].join('\n'));
    return file;
  };
  const quiet = () => undefined;
  const ok = loadBatchConfig(yaml('ok.yaml', 'defaults:', '  gmailLabels: first', "  labelPriority: 'Work,Inbox'"), quiet);
  assert.equal(ok.defaults.gmailLabels, 'first');
  assert.equal(ok.defaults.labelPriority, 'Work,Inbox');
  assert.throws(() => loadBatchConfig(yaml('bad.yaml', 'defaults:', '  gmailLabels: tags'), quiet), (e: Error & { code?: string }) => e.code === 'MM-BATCH-CONFIG' && /bad\.yaml:6:\d+: defaults\.gmailLabels must be/.test(e.message));
});
