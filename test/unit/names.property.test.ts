/**
 * Property-based tests (fast-check) for folder names: encoding round trips, separator
 * translation, hostile segments, and collisions that must never go unnoticed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { decodePath, encodePath } from 'imapflow/lib/tools.js';
import { parseServerName, pathKey, safeSegment, toServerName, type NameSpace } from '../../src/core/mailbox-path.js';
import { planFolders } from '../../src/plan/folder-plan.js';
import { parseFolderRules } from '../../src/plan/folder-rules.js';
import type { FolderInfo } from '../../src/stores/mail-store.js';

const namespaces: NameSpace[] = [
  { prefix: '', delimiter: '/' },
  { prefix: '', delimiter: '.' },
  { prefix: 'INBOX.', delimiter: '.' },
  { prefix: '', delimiter: '\\' },
  { prefix: '', delimiter: '' },
];
const nsArb = fc.constantFrom(...namespaces);
// Any Unicode text, including separators, control characters, "..", emoji and empty strings.
const segment = fc.oneof(fc.string({ unit: 'grapheme', maxLength: 12 }), fc.constantFrom('', '.', '..', '/', 'a.b', 'x/y', '\u0000', 'tab\there', ' lead', 'trail ', '&', '&-', '📁', 'Grüße', '日本語'));
const pathArb = fc.array(segment, { minLength: 1, maxLength: 6 }).filter((p) => p[0]!.toUpperCase() !== 'INBOX');

test('a spelled name parses back to the same levels unless the plan says it was renamed', () => {
  fc.assert(
    fc.property(pathArb, nsArb, (path, ns) => {
      const { name, substituted } = toServerName(path, ns);
      const back = parseServerName(name, ns.delimiter, ns);
      if (!substituted) assert.deepEqual(back, path);
      else assert.notDeepEqual(back, path);
    }),
    { numRuns: 2000 },
  );
});

test('no spelled name contains a control character or a ".", ".." or empty level', () => {
  fc.assert(
    fc.property(pathArb, nsArb, (path, ns) => {
      const { name } = toServerName(path, ns);
      // eslint-disable-next-line no-control-regex
      assert.ok(!/[\u0000-\u001f\u007f]/.test(name));
      const levels = parseServerName(name, ns.delimiter, ns) ?? [];
      for (const level of levels) assert.ok(level !== '' && level !== '.' && level !== '..', JSON.stringify({ path, ns, name }));
    }),
    { numRuns: 2000 },
  );
});

test('safeSegment never produces the separator and is the identity on ordinary names', () => {
  fc.assert(
    fc.property(segment, fc.constantFrom('/', '.', '\\'), (s, d) => {
      const out = safeSegment(s, d);
      assert.ok(!out.includes(d));
      // eslint-disable-next-line no-control-regex
      if (!s.includes(d) && !/[\u0000-\u001f\u007f]/.test(s) && !['', '.', '..'].includes(s)) assert.equal(out, s);
    }),
  );
});

// The codec mailmover relies on at the IMAP edge: imapflow's, on a session without UTF8=ACCEPT.
const legacySession = { enabled: new Set<string>(), capabilities: new Map<string, boolean>([['IMAP4rev1', true]]) } as unknown as Parameters<typeof encodePath>[0];
const utf7imap = { encode: (s: string) => encodePath(legacySession, s), decode: (s: string) => decodePath(legacySession, s) };

test('modified UTF-7 (RFC 3501 §5.1.3) round-trips any name without control characters', () => {
  fc.assert(
    // eslint-disable-next-line no-control-regex
    fc.property(fc.string({ unit: 'grapheme', maxLength: 24 }).filter((s) => !/[\u0000-\u001f\u007f]/.test(s)), (name) => {
      const wire = utf7imap.encode(name);
      assert.ok(/^[\x20-\x7e]*$/.test(wire), 'only printable ASCII on the wire');
      assert.equal(utf7imap.decode(wire), name);
    }),
    { numRuns: 2000 },
  );
});

test('two distinct source folders never land in one destination folder unnoticed', () => {
  const treeArb = fc.uniqueArray(pathArb, { minLength: 1, maxLength: 25, selector: (p) => pathKey(p) });
  fc.assert(
    fc.property(treeArb, nsArb, nsArb, (paths, srcNs, dstNs) => {
      const folders: FolderInfo[] = paths.map((p) => ({ path: p, name: p.join('/'), delimiter: srcNs.delimiter, noSelect: false, subscribed: true, specialUse: undefined }));
      const plan = planFolders(folders, [], dstNs, { rules: parseFolderRules({ automap: false }) });
      const seen = new Map<string, string[]>();
      for (const e of plan.entries.filter((x) => !x.implicit)) seen.set(e.destName, [...(seen.get(e.destName) ?? []), e.sourceName]);
      const merged = [...seen.values()].filter((v) => v.length > 1).length;
      assert.equal(plan.collisions.length, merged);
      // Every source folder is either planned or reported as left out: nothing vanishes.
      assert.equal(plan.entries.filter((x) => !x.implicit).length + plan.excluded.length, folders.length);
    }),
    { numRuns: 500 },
  );
});

test('with reserved names, no destination level is reserved, and collisions are still all found', () => {
  const reservedNames = ['subscriptions', 'dovecot*', 'cur', 'new', 'tmp', 'maildirfolder', 'courierimap*'];
  const reservedSegment = fc.constantFrom('new', 'NEW', 'tmp', 'Cur', 'subscriptions', 'dovecot.index', 'Dovecot-uidlist', 'courierimapacl', '_new', 'new_', 'dovecot', 'maildirfolder');
  const mixedPath = fc.array(fc.oneof(segment, reservedSegment), { minLength: 1, maxLength: 4 }).filter((p) => p[0]!.toUpperCase() !== 'INBOX');
  const isReserved = (s: string) => /^(subscriptions|dovecot.*|cur|new|tmp|maildirfolder|courierimap.*)$/isu.test(s);
  fc.assert(
    fc.property(fc.uniqueArray(mixedPath, { minLength: 1, maxLength: 20, selector: (p) => pathKey(p) }), nsArb, (paths, dstNs) => {
      const folders: FolderInfo[] = paths.map((p) => ({ path: p, name: p.join('/'), delimiter: '/', noSelect: false, subscribed: true, specialUse: undefined }));
      const plan = planFolders(folders, [], dstNs, { rules: parseFolderRules({ automap: false }), reservedNames });
      for (const e of plan.entries) {
        const levels = dstNs.delimiter ? (parseServerName(e.destName, dstNs.delimiter, dstNs) ?? []) : [e.destName];
        for (const level of levels) assert.ok(!isReserved(level), JSON.stringify({ path: e.sourcePath, dest: e.destName }));
        if (!e.implicit && e.destPath.some((s, i) => s !== e.sourcePath[i])) assert.ok(e.renameReasons.includes('reserved-name'));
      }
      const seen = new Map<string, number>();
      for (const e of plan.entries.filter((x) => !x.implicit)) seen.set(e.destName, (seen.get(e.destName) ?? 0) + 1);
      assert.equal(plan.collisions.length, [...seen.values()].filter((n) => n > 1).length);
    }),
    { numRuns: 500 },
  );
});
