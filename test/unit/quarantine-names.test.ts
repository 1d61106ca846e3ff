/**
 * Withheld messages saved under --quarantine-dir: whatever the source folder is called, the file
 * lands inside the directory, visible (no leading dot), without control characters, with a name
 * file systems accept, one file per folder and message, readable by the owner only.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { QuarantineDir, emlFileName } from '../../src/scan/quarantine.js';

const FOLDERS = ['..', '.', '', '/', '../../etc/passwd', 'a/b', 'a_b', '.hidden', 'esc\u001b[31mred', 'cr\rlf\n', 'bidi\u202egpj.exe', '日本語/受信', '😀'.repeat(200), 'x'.repeat(1_000_000)];

test('a withheld .eml gets a safe, unique, bounded name whatever the folder is called, mode 0600', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'mm-quarantine-'));
  try {
    const q = new QuarantineDir(dir);
    const sha = 'ab'.repeat(32);
    const saved: string[] = [];
    for (const [i, folder] of FOLDERS.entries()) saved.push(await q.save(folder, 7, sha, Buffer.from(`message ${i}\r\n`)));
    const files = readdirSync(dir);
    assert.equal(files.length, FOLDERS.length, 'one file per folder, even where names clean up alike');
    for (const [i, file] of saved.entries()) {
      assert.equal(path.dirname(file), dir, `inside the directory: ${JSON.stringify(file)}`);
      const base = path.basename(file);
      assert.ok(!base.startsWith('.'), `not hidden: ${JSON.stringify(base)}`);
      // eslint-disable-next-line no-control-regex
      assert.ok(!/[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069/\\]/u.test(base), `no control or bidi character, no separator: ${JSON.stringify(base)}`);
      assert.ok(Buffer.byteLength(base) <= 255, `${Buffer.byteLength(base)} bytes`);
      assert.ok(base.endsWith('.eml'));
      assert.equal(statSync(file).mode & 0o777, 0o600);
      assert.equal(readFileSync(file, 'utf8'), `message ${i}\r\n`);
    }
    // A rerun finds the same file and writes nothing new.
    assert.equal(await q.save('..', 7, sha, Buffer.from('message 0\r\n')), saved[0]);
    assert.equal(readdirSync(dir).length, FOLDERS.length);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the file name keeps a readable part of the folder name, and differs by UID and content', () => {
  assert.match(emlFileName('Sent Items', 12, 'cd'.repeat(32)), /^Sent_Items\.[0-9a-f]{8}\.12\.cdcdcdcdcdcdcdcd\.eml$/);
  assert.match(emlFileName('..', 1, 'ab'.repeat(32)), /^_\.[0-9a-f]{8}\.1\./);
  assert.notEqual(emlFileName('INBOX', 1, 'ab'.repeat(32)), emlFileName('INBOX', 2, 'ab'.repeat(32)));
  assert.notEqual(emlFileName('INBOX', 1, 'ab'.repeat(32)), emlFileName('INBOX', 1, 'ac'.repeat(32)));
});
