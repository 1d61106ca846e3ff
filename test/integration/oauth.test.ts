/**
 * OAuth 2.0 logins (XOAUTH2 as Microsoft 365 offers it, OAUTHBEARER as Gmail prefers it) against
 * the scripted IMAP server, which checks bearer tokens the way Gmail answers them. The token
 * comes from a command; when the server refuses it (expired), the command is run again once.
 * Tokens never appear in the output.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
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
      // The command prints expired-token-1 the first time, fresh-token-2 after that.
      const counter = path.join(dir, `${user}.n`);
      await writeFile(counter, '1');
      const command = `n=$(cat ${counter}); echo $((n + 1)) > ${counter}; if [ "$n" = 1 ]; then echo expired-token-1; else echo fresh-token-2; fi`;
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
    assert.equal(refused.code, 1);
    assert.match(refused.stdout + refused.stderr, /MM-AUTH-FAILED/);
    const broken = await runCli(['migrate', '--from', `imap://alice@127.0.0.1:${source.port}`, '--from-token-command', 'exit 7', '--to', to, '--no-state'], { MAILMOVER_TO_PASSWORD: 'x' });
    assert.equal(broken.code, 1);
    assert.match(broken.stdout + broken.stderr, /MM-AUTH-TOKEN/);
  });
});
