import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { parseEndpoint } from '../../src/core/endpoint.js';
import { flagsOf, lettersFor, parseMaildirName } from '../../src/stores/maildir/info-flags.js';
import { folderDir } from '../../src/stores/maildir/layout.js';
import { decodeMutf7, encodeMutf7 } from '../../src/stores/maildir/mutf7.js';
import { parseUidList, uidListText } from '../../src/stores/maildir/uidlist.js';

describe('maildir parts', () => {
  it('modified UTF-7 as Dovecot spells it, both ways', () => {
    for (const [name, disk] of [['Ünïcode', '&ANw-n&AO8-code'], ['R&D', 'R&-D'], ['日本語', '&ZeVnLIqe-'], ['📁 x', '&2D3cwQ- x'], ['plain', 'plain']]) {
      assert.equal(encodeMutf7(name!), disk);
      assert.equal(decodeMutf7(disk!), name);
    }
    assert.equal(decodeMutf7('&-ZeVnLIqe-'), '&ZeVnLIqe-', 'a name that looks encoded is not decoded twice');
    assert.equal(decodeMutf7('bad&'), 'bad&');
  });

  it('file names: flags, keywords, sizes', () => {
    const n = parseMaildirName('1796251758.M135641P27803.vm,S=39,W=41:2,RSab');
    assert.deepEqual(n, { base: '1796251758.M135641P27803.vm,S=39,W=41', letters: 'RSab', physicalSize: 39, virtualSize: 41 });
    assert.deepEqual(flagsOf('RSab', ['$Forwarded', 'Custom1']).sort(), ['$Forwarded', 'Custom1', '\\Answered', '\\Seen']);
    assert.deepEqual(flagsOf('P', []), ['$Forwarded'], "mutt's P");
    const kw: (string | undefined)[] = ['Old'];
    const { letters } = lettersFor(['\\Seen', '$Forwarded', 'New', '\\Recent', 'old'], kw);
    assert.deepEqual(kw, ['Old', '$Forwarded', 'New']);
    assert.equal(letters, 'PSabc');
    const full = Array.from({ length: 26 }, (_, i) => `k${i}`);
    assert.deepEqual(lettersFor(['extra'], full).unplaced, ['extra']);
  });

  it('uidlist: versions 1 and 3, contradictions set aside, next UID past the last listed', () => {
    const l = parseUidList('3 V77 N2 Gabc\n1 :a\n3 W10 :b\n3 :c\n2 :d\nx :e\n')!;
    assert.equal(l.uidValidity, 77);
    assert.deepEqual([...l.uids], [['a', 1], ['b', 3]]);
    assert.equal(l.contradictions.length, 3);
    assert.equal(l.nextUid, 4);
    assert.equal(uidListText(l), '3 V77 N4 Gabc\n1 :a\n3 :b\n');
    assert.equal(parseUidList('1 5 9\n4 name\n')!.nextUid, 9);
    assert.equal(parseUidList('garbage'), undefined);
    assert.equal(parseUidList('3 V0 N1'), undefined);
  });

  it('folder directories never leave the root', () => {
    assert.equal(folderDir('/m', 'maildirpp', ['INBOX']), '/m');
    assert.equal(folderDir('/m', 'maildirpp', ['Work', 'Clients']), '/m/.Work.Clients');
    assert.equal(folderDir('/m', 'fs', ['Work', 'Clients']), '/m/Work/Clients');
    // Spelled as for an IMAP server: "." and ".." prefixed, the separator and controls replaced.
    assert.equal(folderDir('/m', 'fs', ['a', '..']), '/m/a/_..');
    assert.equal(folderDir('/m', 'fs', ['..', '..']), '/m/_../_..');
    assert.equal(folderDir('/m', 'fs', ['a/b']), '/m/a_b');
    assert.equal(folderDir('/m', 'maildirpp', ['..']), '/m/.__');
    assert.equal(folderDir('/m', 'maildirpp', ['a.b']), '/m/.a_b');
    assert.equal(folderDir('/m', 'fs', ['x\u0000y']), '/m/x_y');
    for (const path of [['..'], ['a', '..'], ['.'], ['a/../..'], ['x\u0000'], ['']]) {
      for (const layout of ['fs', 'maildirpp'] as const) assert.ok(folderDir('/m', layout, path).startsWith('/m/'), `${layout} ${JSON.stringify(path)}`);
    }
  });

  it('maildir: endpoints', () => {
    assert.deepEqual(parseEndpoint('maildir:/srv/mail/alice/Maildir', 'from').archive, { kind: 'maildir', root: '/srv/mail/alice/Maildir', layout: 'maildirpp' });
    const fs = parseEndpoint('maildir:/a/b/../c?layout=fs', 'to');
    assert.deepEqual(fs.archive, { kind: 'maildir', root: '/a/c', layout: 'fs' });
    assert.equal(fs.display, 'maildir:/a/c?layout=fs');
    assert.throws(() => parseEndpoint('maildir:relative', 'from'), /absolute path/);
    assert.throws(() => parseEndpoint('maildir:/x?layout=weird', 'from'), /unknown Maildir layout/);
  });
});
