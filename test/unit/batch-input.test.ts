/**
 * Batch input is checked in full before anything connects: the YAML configuration (rules,
 * whole numbers, token commands, a literal master password warned about with its line), the CSV
 * list (comments, duplicate columns, every bad row with its line), `file:` secret references
 * (regular files of at most 64 KiB only), and endpoint ports.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadBatchConfig } from '../../src/batch/config.js';
import { loadMailboxList } from '../../src/batch/mailbox-list.js';
import { MAX_SECRET_FILE_BYTES, resolveSecret } from '../../src/batch/secrets.js';
import { parseEndpoint } from '../../src/core/endpoint.js';
import { clearSecrets, scrub } from '../../src/core/redact.js';

let dir: string;
before(() => (dir = mkdtempSync(path.join(os.tmpdir(), 'mm-batch-input-'))));
after(() => rmSync(dir, { recursive: true, force: true }));

const yaml = (name: string, ...lines: string[]) => {
  const file = path.join(dir, name);
  writeFileSync(file, ['source:', '  url: imap://127.0.0.1:1143', 'destination:', '  url: imap://127.0.0.1:2143', ...lines, ''].join('\n'));
  return file;
};
const csv = (name: string, text: string) => {
  const file = path.join(dir, name);
  writeFileSync(file, text);
  return file;
};
const fails = (fn: () => unknown, code: string, pattern: RegExp) =>
  assert.throws(fn, (err: Error & { code?: string }) => {
    assert.equal(err.code, code, err.message);
    assert.match(err.message, pattern);
    return true;
  });

test('config: an invalid rules regex or mapping is refused at load time, with its line', () => {
  const quiet = () => undefined;
  fails(() => loadBatchConfig(yaml('re.yaml', 'rules:', '  exclude:', "    - '^Junk$'", "    - '(unclosed'"), quiet), 'MM-BATCH-CONFIG', /re\.yaml:8:7: rules\.exclude: .*not a valid regular expression/);
  fails(() => loadBatchConfig(yaml('inc.yaml', "rules: { include: ['[a-'] }"), quiet), 'MM-BATCH-CONFIG', /inc\.yaml:5:\d+: rules\.include/);
  fails(() => loadBatchConfig(yaml('map.yaml', 'rules:', '  map:', "    - 'NoEquals'"), quiet), 'MM-BATCH-CONFIG', /map\.yaml:7:7: rules\.map: .*SOURCE=DESTINATION/);
  fails(() => loadBatchConfig(yaml('ren.yaml', 'rules:', '  rename:', "    - 's|(|x|'"), quiet), 'MM-BATCH-CONFIG', /ren\.yaml:7:7: rules\.rename/);
  const ok = loadBatchConfig(yaml('ok.yaml', 'rules:', "  exclude: ['^Junk$']", "  map: ['Old=Archive/Old']", "  rename: ['s|^Foo|Bar|']"), quiet);
  assert.deepEqual(ok.rules, { exclude: ['^Junk$'], map: ['Old=Archive/Old'], rename: ['s|^Foo|Bar|'] });
});

test('config: connections, retries and limits must be whole numbers', () => {
  const quiet = () => undefined;
  fails(() => loadBatchConfig(yaml('c.yaml', 'defaults:', '  connections: 1.5'), quiet), 'MM-BATCH-CONFIG', /c\.yaml:6:16: defaults\.connections must be a whole number from 1 to 16/);
  fails(() => loadBatchConfig(yaml('r.yaml', 'defaults: { retries: 2.5 }'), quiet), 'MM-BATCH-CONFIG', /defaults\.retries must be a whole number/);
  fails(() => loadBatchConfig(yaml('b.yaml', 'defaults: { badItemLimit: 0.5 }'), quiet), 'MM-BATCH-CONFIG', /defaults\.badItemLimit/);
  assert.equal(loadBatchConfig(yaml('d.yaml', 'defaults: { connections: 3, retryDelaySeconds: 0.25 }'), quiet).defaults.retryDelaySeconds, 0.25);
});

test('config: a literal master password is warned about once, with its line; references are not', () => {
  const warned: string[] = [];
  const file = path.join(dir, 'master.yaml');
  writeFileSync(file, ['source:', '  url: imap://127.0.0.1:1143', '  master: { user: admin, password: hunter22 }', 'destination:', '  url: imap://127.0.0.1:2143', '  master:', '    user: admin', '    password: env:DEST_MASTER', ''].join('\n'));
  const config = loadBatchConfig(file, (m) => warned.push(m));
  assert.equal(warned.length, 1, warned.join('\n'));
  assert.match(warned[0]!, /master\.yaml:3:\d+: source\.master\.password is written in the file; use env:NAME or file:PATH/);
  assert.ok(!warned[0]!.includes('hunter22'));
  assert.deepEqual(config.warnings, warned);
});

test('config: a token command with an unbalanced quote or shell syntax is refused with its line', () => {
  const quiet = () => undefined;
  fails(() => loadBatchConfig(yaml('tok.yaml', `  oauth: { tokenCommand: 'get-token "{user}' }`), quiet), 'MM-BATCH-CONFIG', /tok\.yaml:5:\d+: destination\.oauth\.tokenCommand: the double quote .* never closed/);
  fails(() => loadBatchConfig(yaml('pipe.yaml', `  oauth: { tokenCommand: 'get-token {user} | head -1' }`), quiet), 'MM-BATCH-CONFIG', /shell character/);
  assert.equal(loadBatchConfig(yaml('tok-ok.yaml', `  oauth: { tokenCommand: 'get-token "{user}"' }`), quiet).destination.oauth?.tokenCommand, 'get-token "{user}"');
});

test('list: a line starting with # is a comment; a quoted "#alice" and a # inside a field are data', () => {
  const file = csv('comments.csv', ['source_user,destination_user,source_password', '# a comment, with commas', '"#alice",alice,env:A', '  # indented comment', 'bob#2,bob,pa#ss', 'carol,carol,'].join('\n') + '\n');
  const list = loadMailboxList(file);
  assert.deepEqual(list.rows.map((r) => [r.line, r.sourceUser, r.destinationUser, r.sourcePassword]), [
    [3, '#alice', 'alice', 'env:A'],
    [5, 'bob#2', 'bob', 'pa#ss'],
    [6, 'carol', 'carol', undefined],
  ]);
});

test('list: a column named twice in the header is refused, naming it', () => {
  fails(() => loadMailboxList(csv('dup.csv', 'source_user,source_password,Source_Password\nalice,env:A,env:B\n')), 'MM-BATCH-CSV', /dup\.csv:1: the column source_password is named twice/);
});

test('list: every bad row is reported with its line, up to 50, then how many more', () => {
  const rows = ['source_user,destination_user', 'ok1,ok1', ',nobody', 'white space,x', 'ok1,ok1', 'a,b,c', 'ok2,ok2'];
  const err = (() => {
    try {
      loadMailboxList(csv('many.csv', rows.join('\n') + '\n'));
    } catch (e) {
      return e as Error & { code?: string };
    }
    throw new Error('not refused');
  })();
  assert.equal(err.code, 'MM-BATCH-CSV');
  assert.match(err.message, /^4 bad row\(s\) in .*many\.csv:/);
  for (const line of [/many\.csv:3: source_user is empty/, /many\.csv:4: source_user "white space" contains whitespace/, /many\.csv:5: the mailbox ok1 -> ok1 is already on line 2/, /many\.csv:6: 3 field\(s\), the header names 2/]) assert.match(err.message, line);
  const lots = ['source_user', ...Array.from({ length: 70 }, () => '""')];
  fails(() => loadMailboxList(csv('lots.csv', lots.join('\n') + '\n')), 'MM-BATCH-CSV', /^70 bad row\(s\)[\s\S]*lots\.csv:51: source_user is empty\n {2}\.\.\. and 20 more$/);
});

test('secrets: a FIFO, a directory, a device or a file over 64 KiB is refused at once (never read or blocked on)', () => {
  const fifo = path.join(dir, 'fifo');
  execFileSync('mkfifo', [fifo]);
  const big = path.join(dir, 'big');
  writeFileSync(big, 'x'.repeat(MAX_SECRET_FILE_BYTES + 1));
  const limit = path.join(dir, 'limit');
  writeFileSync(limit, 'y'.repeat(MAX_SECRET_FILE_BYTES - 1) + '\n');
  const t0 = Date.now();
  assert.throws(() => resolveSecret(`file:${fifo}`), /is not a regular file \(a FIFO\)/);
  assert.throws(() => resolveSecret(`file:${dir}`), /is not a regular file \(a directory\)/);
  assert.throws(() => resolveSecret('file:/dev/zero'), /is not a regular file \(a device\)/);
  assert.throws(() => resolveSecret(`file:${big}`), /at most 65536 bytes/);
  assert.throws(() => resolveSecret(`file:${path.join(dir, 'missing')}`), /cannot be read \(ENOENT\)/);
  assert.ok(Date.now() - t0 < 2000, 'nothing blocked');
  assert.equal(resolveSecret(`file:${limit}`).value.length, MAX_SECRET_FILE_BYTES - 1);
});

test('secrets: every resolved value is registered for scrubbing, literal ones too', () => {
  clearSecrets();
  writeFileSync(path.join(dir, 'pw'), 'from-a-file-pw\n');
  resolveSecret(`file:${path.join(dir, 'pw')}`, {}, { user: 'alice' });
  resolveSecret('env:PW', { PW: 'from-the-env-pw' });
  assert.deepEqual(resolveSecret('literal-pw-123'), { value: 'literal-pw-123', literal: true });
  assert.equal(scrub('from-a-file-pw from-the-env-pw literal-pw-123'), '*** *** ***');
  assert.equal(scrub(Buffer.from('\0alice\0from-a-file-pw').toString('base64')), '***');
});

test('endpoints: port 0 and ports over 65535 are refused with MM-CONFIG-URL', () => {
  for (const bad of ['imap://alice@host:0', 'imaps://alice@host:00', 'imap://alice@host:65536', 'imap://alice@host:99999']) {
    fails(() => parseEndpoint(bad, 'from'), 'MM-CONFIG-URL', /port|not a URL/);
  }
  assert.equal(parseEndpoint('imap://alice@host:65535', 'from').port, 65535);
  assert.equal(parseEndpoint('imap://alice@host:1', 'from').port, 1);
});
