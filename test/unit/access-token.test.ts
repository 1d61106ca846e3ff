/**
 * OAuth 2.0 token sources: a file read again and a command run again when a fresh token is
 * needed; commands run without a shell (a hostile user name is one literal argument); bad
 * sources fail with MM-AUTH-TOKEN, bad command templates with MM-CONFIG-OPTION.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { splitCommand, tokenFromCommand, tokenFromFile } from '../../src/core/access-token.js';
import { scrub } from '../../src/core/redact.js';

test('a token file is cached, and read again when a fresh token is asked for', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'mm-token-'));
  try {
    const file = path.join(dir, 'token');
    await writeFile(file, 'first-token\n');
    const get = tokenFromFile(file);
    assert.equal(await get(false), 'first-token');
    await writeFile(file, 'second-token\n');
    assert.equal(await get(false), 'first-token', 'cached');
    assert.equal(await get(true), 'second-token', 'fresh');
    await writeFile(file, '');
    await assert.rejects(get(true), { code: 'MM-AUTH-TOKEN' });
    await assert.rejects(tokenFromFile(path.join(dir, 'missing'))(false), { code: 'MM-AUTH-TOKEN' });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a token command is run again for a fresh token, without a shell', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'mm-token-'));
  try {
    const counter = path.join(dir, 'n');
    const script = path.join(dir, 'get-token');
    await writeFile(script, `#!/bin/sh\necho x >> '${counter}'\nprintf 'tok-%s-%s' "$1" $(wc -l < '${counter}')\n`, { mode: 0o755 });
    const get = tokenFromCommand(`${script} {user}`, 'alice');
    assert.equal(await get(false), 'tok-alice-1');
    assert.equal(await get(false), 'tok-alice-1', 'cached');
    assert.equal(await get(true), 'tok-alice-2', 'run again');
    await assert.rejects(tokenFromCommand('false')(false), { code: 'MM-AUTH-TOKEN' });
    await assert.rejects(tokenFromCommand('echo two words')(false), { code: 'MM-AUTH-TOKEN' });
    await assert.rejects(tokenFromCommand(path.join(dir, 'missing'))(false), (err: Error & { code?: string }) => err.code === 'MM-AUTH-TOKEN' && /was not found/.test(err.message));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a hostile user name runs nothing: it reaches the command as one literal argument, and as MAILMOVER_USER', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'mm-token-'));
  try {
    const script = path.join(dir, 'get-token');
    const args = path.join(dir, 'args');
    // Writes each argument on its own NUL-terminated record, and the environment variable.
    await writeFile(script, `#!/bin/sh\nprintf '%s\\0' "$#" "$@" "$MAILMOVER_USER" > '${args}'\necho the-token\n`, { mode: 0o755 });
    const marker = path.join(dir, 'pwned');
    for (const user of [`'$(touch${'${IFS}'}${marker})'`, `$(touch ${marker})`, `\`touch ${marker}\``, `x"; touch ${marker}; "`, `a'b"c\\d`, "o'brien;touch${IFS}pwned"]) {
      for (const template of [`${script} "{user}"`, `${script} '{user}'`, `${script} {user}`, `${script} --user={user}`]) {
        await rm(args, { force: true });
        assert.equal(await tokenFromCommand(template, user)(false), 'the-token');
        const got = (await readFile(args, 'utf8')).split('\0');
        const expected = template.endsWith('--user={user}') ? `--user=${user}` : user;
        assert.deepEqual(got.slice(0, 3), ['1', expected, user], `${template} with ${user}`);
        assert.equal(existsSync(marker), false, `nothing ran for ${user} in ${template}`);
      }
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('splitCommand: words, quotes that group, no expansion; unbalanced quotes and shell syntax are refused', () => {
  assert.deepEqual(splitCommand('get-token  {user}'), ['get-token', '{user}']);
  assert.deepEqual(splitCommand(`a 'b c' "d 'e'" f"g h"i '' x`), ['a', 'b c', "d 'e'", 'fg hi', '', 'x']);
  assert.deepEqual(splitCommand(`gcloud auth print-access-token '--impersonate=$USER'`), ['gcloud', 'auth', 'print-access-token', '--impersonate=$USER']);
  assert.deepEqual(splitCommand('\tcmd\n--flag=1 '), ['cmd', '--flag=1']);
  for (const bad of [`get-token "{user}`, `get-token '{user}`, `a "b' c`]) assert.throws(() => splitCommand(bad), /never closed/, bad);
  for (const bad of ['a | b', 'a; b', 'a && b', 'echo $HOME', 'a > f', 'echo `id`', 'a $(b)', '~/bin/get', 'a\\ b', 'a {x}']) assert.throws(() => splitCommand(bad), /shell character/, bad);
  for (const empty of ['', '   ', '"" x']) assert.throws(() => splitCommand(empty), /empty/, empty);
  assert.throws(() => tokenFromCommand('get "x'), (err: Error & { code?: string }) => err.code === 'MM-CONFIG-OPTION' && /never closed/.test(err.message));
});

test('a token obtained is registered for scrubbing', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'mm-token-'));
  try {
    const file = path.join(dir, 'token');
    await writeFile(file, 'registered-token-77\n');
    await tokenFromFile(file, 'bob')(false);
    assert.equal(scrub('NO token registered-token-77 refused'), 'NO token *** refused');
    await tokenFromCommand('echo command-token-88')(false);
    assert.equal(scrub('command-token-88'), '***');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
