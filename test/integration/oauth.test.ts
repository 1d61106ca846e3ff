/**
 * OAuth 2.0 logins (XOAUTH2 as Microsoft 365 offers it, OAUTHBEARER as Gmail prefers it) against
 * the scripted IMAP server, which checks bearer tokens the way Gmail answers them. The token
 * comes from a command; when the server refuses it (expired), the command is run again once.
 * Tokens never appear in the output. Token commands run without a shell: a hostile user name in
 * a batch list reaches the command as one literal argument and runs nothing.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startDovecot, type PlainDovecotServer } from '../helpers/dovecot.js';
import { readMailbox } from '../helpers/fixture.js';
import { runCli } from '../helpers/cli.js';
import { startScriptedImap, type Personality, type ScriptedImapServer } from '../helpers/scripted-imap/server.js';
import { PERSONALITIES } from '../helpers/scripted-imap/personalities.js';

const withMechs = (p: Personality, ...mechs: string[]): Personality => {
  const add = (caps: string[]) => caps.flatMap((c) => (c === 'AUTH=PLAIN' ? [c, ...mechs] : [c]));
  return { ...p, name: `${p.name}+oauth`, capabilities: add(p.capabilities), ...(p.capabilitiesAfterLogin ? { capabilitiesAfterLogin: add(p.capabilitiesAfterLogin) } : {}) };
};
const messages = Array.from({ length: 12 }, (_, i) => ({
  raw: Buffer.from(`From: o@example.org\r\nSubject: oauth ${i}\r\nMessage-ID: <oauth-${i}@x>\r\n\r\nbody ${i}\r\n`),
  flags: i % 2 ? ['\\Seen'] : [],
  internalDate: new Date(Date.UTC(2024, 0, 1 + i)),
  uid: i + 1,
}));

describe('OAuth 2.0 access tokens', () => {
  let dest: PlainDovecotServer;
  let dir: string;
  const servers: ScriptedImapServer[] = [];
  before(async () => {
    dest = await startDovecot({ tls: false });
    dir = await mkdtemp(path.join(os.tmpdir(), 'mm-oauth-'));
  });
  after(async () => {
    await Promise.all([dest?.stop(), ...servers.map((s) => s.stop())]);
    await rm(dir, { recursive: true, force: true });
  });

  for (const [label, personality] of [
    ['XOAUTH2 (Microsoft 365 style)', withMechs(PERSONALITIES.exchange, 'AUTH=XOAUTH2')],
    ['OAUTHBEARER (Gmail style)', withMechs(PERSONALITIES.gmail, 'AUTH=XOAUTH2', 'AUTH=OAUTHBEARER')],
  ] as const) {
    test(`${label}: an expired token is replaced by running the command again; the mailbox arrives exactly`, async () => {
      const user = `o${servers.length}`;
      const source = await startScriptedImap({
        personality,
        users: { alice: { password: 'not-used', tokens: ['fresh-token-2'], folders: [{ name: 'INBOX', subscribed: true, messages }] } },
      });
      servers.push(source);
      await dest.addUser(user, 'dst-pw');
      // The command prints expired-token-1 the first time, fresh-token-2 after that. It is a
      // script: token commands run without a shell, so shell syntax belongs in a file.
      const counter = path.join(dir, `${user}.n`);
      await writeFile(counter, '1');
      const script = path.join(dir, `${user}-token`);
      await writeFile(script, '#!/bin/sh\nn=$(cat "$1"); echo $((n + 1)) > "$1"; if [ "$n" = 1 ]; then echo expired-token-1; else echo fresh-token-2; fi\n', { mode: 0o755 });
      const command = `${script} '${counter}'`;
      const run = await runCli(
        ['migrate', '--from', `imap://alice@127.0.0.1:${source.port}`, '--from-token-command', command, '--to', `imap://${user}@127.0.0.1:${dest.port}`, '--no-state', '--json'],
        { MAILMOVER_TO_PASSWORD: 'dst-pw' },
      );
      assert.equal(run.code, 0, run.stderr);
      const inbox = (await readMailbox(dest, user, 'dst-pw')).find((f) => f.path[0] === 'INBOX')!;
      assert.equal(inbox.messages.length, messages.length);
      assert.ok(source.log.some((l) => /Bearer \*\*\*: rejected/.test(l)) && source.log.some((l) => /Bearer \*\*\*: accepted/.test(l)), source.log.join('\n'));
      assert.ok(!(run.stdout + run.stderr).includes('fresh-token-2') && !(run.stdout + run.stderr).includes('expired-token-1'), 'no token in the output');
    });
  }

  test('a token that stays refused is MM-AUTH-FAILED; a command that fails is MM-AUTH-TOKEN', async () => {
    const source = await startScriptedImap({
      personality: withMechs(PERSONALITIES.exchange, 'AUTH=XOAUTH2'),
      users: { alice: { password: 'x', tokens: ['good'], folders: [{ name: 'INBOX', subscribed: true, messages: [] }] } },
    });
    servers.push(source);
    const to = `imap://o9@127.0.0.1:${dest.port}`;
    const refused = await runCli(['migrate', '--from', `imap://alice@127.0.0.1:${source.port}`, '--from-token-command', 'echo bad', '--to', to, '--no-state'], { MAILMOVER_TO_PASSWORD: 'x' });
    assert.equal(refused.code, 4);
    assert.match(refused.stdout + refused.stderr, /MM-AUTH-FAILED/);
    const broken = await runCli(['migrate', '--from', `imap://alice@127.0.0.1:${source.port}`, '--from-token-command', 'false', '--to', to, '--no-state'], { MAILMOVER_TO_PASSWORD: 'x' });
    assert.equal(broken.code, 4);
    assert.match(broken.stdout + broken.stderr, /MM-AUTH-TOKEN/);
  });

  test('batch: a hostile user name in the list runs nothing; the token command gets it as one literal argument', async () => {
    const marker = path.join(dir, 'pwned');
    const hostile = `'$(touch\${IFS}${marker})'`;
    const source = await startScriptedImap({
      personality: withMechs(PERSONALITIES.exchange, 'AUTH=XOAUTH2'),
      users: { [hostile]: { password: 'x', tokens: ['hostile-token-1'], folders: [{ name: 'INBOX', subscribed: true, messages: messages.slice(0, 3) }] } },
    });
    servers.push(source);
    await dest.addUser('o-hostile', 'dst-pw-hostile');
    const script = path.join(dir, 'get-token');
    const args = path.join(dir, 'token-args');
    // Records its arguments (NUL-separated) and MAILMOVER_USER, then prints the token.
    await writeFile(script, `#!/bin/sh\nprintf '%s\\0' "$#" "$@" "$MAILMOVER_USER" >> '${args}'\necho hostile-token-1\n`, { mode: 0o755 });
    await writeFile(
      path.join(dir, 'hostile.yaml'),
      [`source:`, `  url: imap://127.0.0.1:${source.port}`, `  oauth: { tokenCommand: '${script} "{user}"' }`, 'destination:', `  url: imap://127.0.0.1:${dest.port}`, ''].join('\n'),
    );
    await writeFile(path.join(dir, 'hostile.csv'), `source_user,destination_user,destination_password\n${hostile},o-hostile,env:DST\n`);
    const run = await runCli(
      ['batch', 'run', path.join(dir, 'hostile.csv'), '--config', path.join(dir, 'hostile.yaml'), '--state', path.join(dir, 'hostile.db'), '--report-dir', path.join(dir, 'hostile-reports'), '--json'],
      { DST: 'dst-pw-hostile' },
    );
    assert.equal(run.code, 0, run.stderr + run.stdout);
    assert.equal(existsSync(marker), false, 'the user name was never run');
    const [argc, arg1, envUser] = (await readFile(args, 'utf8')).split('\0');
    assert.deepEqual([argc, arg1, envUser], ['1', hostile, hostile], 'one literal argument, and the same in MAILMOVER_USER');
    const inbox = (await readMailbox(dest, 'o-hostile', 'dst-pw-hostile')).find((f) => f.path[0] === 'INBOX')!;
    assert.equal(inbox.messages.length, 3);
    assert.ok(!(run.stdout + run.stderr).includes('hostile-token-1'), 'no token in the output');
  });

  test('a token command with an unbalanced quote is a configuration error (exit 2), before anything runs', async () => {
    const run = await runCli(['migrate', '--from', 'imap://alice@127.0.0.1:9', '--from-token-command', 'get-token "alice', '--to', `imap://o9@127.0.0.1:${dest.port}`, '--no-state'], { MAILMOVER_TO_PASSWORD: 'x' });
    assert.equal(run.code, 2, run.stderr);
    assert.match(run.stderr, /MM-CONFIG-OPTION: The access token command cannot be used: the double quote at character 11 is never closed/);
  });
});
