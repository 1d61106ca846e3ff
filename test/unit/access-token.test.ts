/**
 * OAuth 2.0 token sources: a file read again and a command run again when a fresh token is
 * needed; the user is quoted for the shell; bad sources fail with MM-AUTH-TOKEN.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { tokenFromCommand, tokenFromFile } from '../../src/core/access-token.js';

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

test('a token command is run again for a fresh token; {user} is quoted for the shell', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'mm-token-'));
  try {
    const counter = path.join(dir, 'n');
    const get = tokenFromCommand(`echo x >> ${counter}; printf 'tok-%s-%s' {user} $(wc -l < ${counter})`, "o'brien;touch${IFS}pwned");
    assert.equal(await get(false), "tok-o'brien;touch${IFS}pwned-1", 'the user is one quoted word, never run');
    assert.equal(await get(false), "tok-o'brien;touch${IFS}pwned-1", 'cached');
    assert.equal(await get(true), "tok-o'brien;touch${IFS}pwned-2", 'run again');
    await assert.rejects(tokenFromCommand('exit 3')(false), { code: 'MM-AUTH-TOKEN' });
    await assert.rejects(tokenFromCommand('echo two words')(false), { code: 'MM-AUTH-TOKEN' });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
