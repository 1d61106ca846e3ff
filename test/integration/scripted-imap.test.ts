/**
 * Proves the scripted IMAP server (test/helpers/scripted-imap) with imapflow itself, not with mailmover:
 * for every vendor personality, login, NAMESPACE, the folder tree as imapflow decodes it (paths,
 * delimiters, \Noselect parents, subscriptions), a 500-folder tree 12 levels deep, and the exact bytes,
 * flags and dates of messages read the way mailmover's source side reads them. Then the fault hooks, OAuth
 * 2.0 logins (XOAUTH2, OAUTHBEARER, expired tokens), and the protocol details and robustness checks over
 * a raw socket. If this file fails, tests built on the
 * scripted server are no evidence about mailmover.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { ImapFlow, type ImapFlowOptions, type ListResponse } from 'imapflow';
import { decodeMutf7, encodeMutf7, startScriptedImap, type Personality, type ScriptedFolder, type ScriptedImapServer, type ScriptedMessage } from '../helpers/scripted-imap/server.js';
import { courier, cyrus, exchange, flat, gmail, literalNames, PERSONALITIES } from '../helpers/scripted-imap/personalities.js';

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

const PASSWORD = 'pa55 "wörd" \\';

async function connect(srv: ScriptedImapServer, extra: Partial<ImapFlowOptions> = {}): Promise<ImapFlow> {
  const c = new ImapFlow({ host: srv.host, port: srv.port, secure: false, auth: { user: 'alice', pass: PASSWORD }, logger: false, disableAutoIdle: true, ...extra });
  c.on('error', () => undefined);
  try {
    await c.connect();
  } catch (e) {
    c.close();
    throw e;
  }
  return c;
}

async function done(c: ImapFlow): Promise<void> {
  await c.logout().catch(() => c.close());
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** Messages that exercise the byte-exact path: 8-bit, bare LF, no final newline, a large literal. */
function sampleMessages(): ScriptedMessage[] {
  const big = Buffer.concat([Buffer.from('Message-ID: <big@example.test>\r\nSubject: big\r\n\r\n'), Buffer.alloc(300_000, 'x'), Buffer.from('\r\n')]);
  return [
    {
      raw: Buffer.from('Message-ID: <one@example.test>\r\nDate: Mon, 1 Jan 2024 10:00:00 +0100\r\nFrom: Ann <ann@example.test>\r\nTo: bob@example.test\r\nSubject: one\r\n  folded\r\nX-Other: 1\r\n\r\nHello\r\n'),
      flags: ['\\Seen'],
      internalDate: new Date('2024-01-01T09:00:00Z'),
    },
    {
      raw: Buffer.concat([Buffer.from('Subject: eight bit\nContent-Type: text/plain; charset=latin1\n\n'), Buffer.from([0x80, 0xe9, 0xff, 0x0a, 0x41])]),
      flags: ['\\Flagged', '$Forwarded', 'NonJunk'],
      internalDate: new Date('1999-12-31T23:59:59Z'),
      uid: 7,
    },
    { raw: Buffer.from('Subject: no body, no newline'), flags: [], internalDate: new Date('2020-02-29T12:00:00Z') },
    { raw: big, flags: ['\\Deleted', '\\Answered'], internalDate: new Date('2023-06-15T08:30:00Z'), uid: 4711 },
    { raw: Buffer.from('Subject: draft\r\n\r\n'), flags: ['\\Draft', '\\Recent'], internalDate: new Date('2024-05-05T05:05:05Z') },
  ];
}

const UIDS = [1, 7, 8, 4711, 4712];

/** Per personality: its folder tree, the names imapflow should list, and a nested folder with mail. */
interface Case {
  personality: Personality;
  folders: ScriptedFolder[];
  /** Names imapflow's list() returns (the personal namespace). */
  listed: string[];
  /** Names that must come back \Noselect. */
  noSelect: string[];
  /** A non-ASCII, nested folder holding sampleMessages(). */
  mailFolder: string;
  /** How imapflow logs in with this personality's capabilities. */
  login: RegExp;
  /** How imapflow learns subscriptions. */
  subscriptions: 'LSUB' | 'RETURN (SUBSCRIBED)';
}

function folder(name: string, extra: Partial<ScriptedFolder> = {}): ScriptedFolder {
  return { name, ...extra };
}

function cases(): Case[] {
  const out: Case[] = [];
  {
    const folders = [
      folder('INBOX', { subscribed: true, messages: sampleMessages().slice(0, 1) }),
      folder('INBOX.Sent', { subscribed: true }),
      folder('INBOX.Drafts'),
      folder('INBOX.Trash', { subscribed: true }),
      folder('INBOX.Archive', { attributes: ['\\Noselect'] }),
      folder('INBOX.Archive.2024'),
      folder('INBOX.Entwürfe & Ärger.Ünter', { messages: sampleMessages(), subscribed: true }),
      folder('INBOX.With Space'),
      folder('#shared.Team'),
    ];
    out.push({
      personality: courier,
      folders,
      listed: folders.map((f) => f.name).filter((n) => n !== '#shared.Team'),
      noSelect: ['INBOX.Archive'],
      mailFolder: 'INBOX.Entwürfe & Ärger.Ünter',
      login: /^\w+ AUTHENTICATE PLAIN$/,
      subscriptions: 'LSUB',
    });
  }
  {
    const folders = [
      folder('INBOX', { subscribed: true }),
      folder('INBOX.Sent', { attributes: ['\\Sent'], subscribed: true }),
      folder('INBOX.Trash', { attributes: ['\\Trash'] }),
      folder('INBOX.Archive', { attributes: ['\\Noselect'] }),
      folder('INBOX.Archive.Café', { messages: sampleMessages(), subscribed: true }),
      folder('user.bob.Shared'),
      folder('Shared Folder'),
    ];
    out.push({
      personality: cyrus,
      folders,
      listed: ['INBOX', 'INBOX.Sent', 'INBOX.Trash', 'INBOX.Archive', 'INBOX.Archive.Café'],
      noSelect: ['INBOX.Archive'],
      mailFolder: 'INBOX.Archive.Café',
      login: /^\w+ AUTHENTICATE PLAIN$/,
      subscriptions: 'RETURN (SUBSCRIBED)',
    });
  }
  {
    const folders = [
      folder('INBOX', { subscribed: true }),
      folder('Sent Items', { attributes: ['\\Sent'], subscribed: true }),
      folder('Deleted Items', { attributes: ['\\Trash'] }),
      folder('Junk Email', { attributes: ['\\Junk'] }),
      folder('Drafts', { attributes: ['\\Drafts'] }),
      folder('Conversation History'),
      folder('Calendar'),
      folder('Calendar/Birthdays'),
      folder('Kategorie', { attributes: ['\\Noselect'] }),
      folder('Kategorie/Przesyłki', { messages: sampleMessages(), subscribed: true }),
      folder('[Tag]Done'),
    ];
    out.push({
      personality: exchange,
      folders,
      listed: folders.map((f) => f.name),
      noSelect: ['Kategorie'],
      mailFolder: 'Kategorie/Przesyłki',
      login: /^\w+ AUTHENTICATE PLAIN$/,
      subscriptions: 'LSUB',
    });
  }
  {
    const folders = [
      folder('INBOX', { subscribed: true }),
      folder('[Gmail]', { attributes: ['\\Noselect'] }),
      folder('[Gmail]/All Mail', { attributes: ['\\All'], subscribed: true }),
      folder('[Gmail]/Drafts', { attributes: ['\\Drafts'], subscribed: true }),
      folder('[Gmail]/Important', { attributes: ['\\Important'], subscribed: true }),
      folder('[Gmail]/Sent Mail', { attributes: ['\\Sent'], subscribed: true }),
      folder('[Gmail]/Spam', { attributes: ['\\Junk'], subscribed: true }),
      folder('[Gmail]/Starred', { attributes: ['\\Flagged'], subscribed: true }),
      folder('[Gmail]/Trash', { attributes: ['\\Trash'], subscribed: true }),
      folder('Label/日本語 ünd mehr', { messages: sampleMessages(), subscribed: true }),
    ];
    out.push({
      personality: gmail,
      folders,
      listed: folders.map((f) => f.name),
      noSelect: ['[Gmail]'],
      mailFolder: 'Label/日本語 ünd mehr',
      login: /^\w+ AUTHENTICATE PLAIN$/,
      subscriptions: 'RETURN (SUBSCRIBED)',
    });
  }
  {
    const folders = [
      folder('INBOX', { subscribed: true }),
      folder('Sent'),
      folder('Archive/2024', { subscribed: true }),
      folder('a.b'),
      folder('Placeholder', { attributes: ['\\Noselect'] }),
      folder('Ablage für Ärger', { messages: sampleMessages() }),
    ];
    out.push({
      personality: flat,
      folders,
      listed: folders.map((f) => f.name),
      noSelect: ['Placeholder'],
      mailFolder: 'Ablage für Ärger',
      login: /^\w+ LOGIN "alice" \*\*\*$/,
      subscriptions: 'LSUB',
    });
  }
  {
    const folders = [
      folder('INBOX', { subscribed: true }),
      folder('Quote "this"', { subscribed: true }),
      folder('Back\\slash'),
      folder('Brace {5}'),
      folder('NIL'),
      folder('Parent', { attributes: ['\\Noselect'] }),
      folder('Parent/Ünïcødé "x"', { messages: sampleMessages() }),
    ];
    out.push({
      personality: literalNames,
      folders,
      listed: folders.map((f) => f.name),
      noSelect: ['Parent'],
      mailFolder: 'Parent/Ünïcødé "x"',
      login: /^\w+ LOGIN "alice" \*\*\*$/,
      subscriptions: 'LSUB',
    });
  }
  return out;
}

/** 500 folders (plus INBOX), up to 12 levels deep, some \Noselect, some non-ASCII or with spaces. */
function bigTree(p: Personality): { folders: ScriptedFolder[]; names: string[] } {
  const prefix = p.namespace.startsWith('(("INBOX.') ? 'INBOX.' : '';
  const d = p.delimiter ?? '/';
  const paths: string[][] = [];
  for (let depth = 1; depth <= 12; depth++) paths.push(Array.from({ length: depth }, (_, k) => `Level ${k + 1}`));
  for (let i = 0; paths.length < 500; i++) {
    const parent = paths[(i * 7919) % paths.length]!;
    const seg = i % 10 === 0 ? `Ördner ${i}` : i % 10 === 1 ? `日本 ${i}` : `F${i}`;
    paths.push(parent.length >= 12 ? [parent[0]!, seg] : [...parent, seg]);
  }
  const names = paths.map((segs) => prefix + segs.join(d));
  const folders: ScriptedFolder[] = [{ name: 'INBOX' }, ...names.map((name, i) => folder(name, i % 50 === 3 ? { attributes: ['\\Noselect'] } : {}))];
  return { folders, names: ['INBOX', ...names] };
}

// ---------------------------------------------------------------------------------------------
// Raw socket client for protocol details
// ---------------------------------------------------------------------------------------------

class Raw {
  private buf = '';
  private wake: (() => void) | null = null;
  readonly closed: Promise<void>;

  private constructor(readonly socket: net.Socket) {
    socket.on('data', (d: Buffer) => {
      this.buf += d.toString('latin1');
      this.wake?.();
    });
    socket.on('error', () => undefined);
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
  }

  static async open(srv: ScriptedImapServer): Promise<{ raw: Raw; greeting: string }> {
    const socket = net.connect({ host: srv.host, port: srv.port });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    const raw = new Raw(socket);
    const greeting = await raw.until(/^\* [^\r\n]*\r\n/m);
    return { raw, greeting };
  }

  write(data: string | Buffer): void {
    this.socket.write(typeof data === 'string' ? Buffer.from(data, 'utf8') : data);
  }

  /** Waits until the buffered input matches, returns everything up to the end of the match. */
  async until(re: RegExp, ms = 3000): Promise<string> {
    const deadline = Date.now() + ms;
    for (;;) {
      const m = re.exec(this.buf);
      if (m) {
        const out = this.buf.slice(0, m.index + m[0].length);
        this.buf = this.buf.slice(m.index + m[0].length);
        return out;
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${re}; got ${JSON.stringify(this.buf.slice(0, 500))}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
    }
  }

  /** Sends a command and returns all output up to and including its tagged response. */
  async cmd(tag: string, text: string): Promise<string> {
    this.write(`${tag} ${text}\r\n`);
    return this.tagged(tag);
  }

  tagged(tag: string): Promise<string> {
    return this.until(new RegExp(`^${tag} (OK|NO|BAD)[^\\r\\n]*\\r\\n`, 'm'));
  }

  close(): void {
    this.socket.destroy();
  }
}

const lastLine = (out: string) => out.trimEnd().split('\r\n').pop()!;

// ---------------------------------------------------------------------------------------------
// Per personality, through imapflow
// ---------------------------------------------------------------------------------------------

describe('scripted IMAP server, through imapflow', () => {
  for (const c of cases()) {
    const p = c.personality;
    describe(p.name, () => {
      let srv: ScriptedImapServer;
      before(async () => {
        srv = await startScriptedImap({ personality: p, users: { alice: { password: PASSWORD, folders: c.folders } } });
      });
      after(() => srv.stop());

      test('logs in the way its capabilities make imapflow choose, and answers NAMESPACE', async () => {
        const client = await connect(srv);
        try {
          assert.ok(srv.log.some((l) => c.login.test(l)), srv.log.join('\n'));
          assert.ok(!srv.log.some((l) => l.includes('wörd')), 'the password never reaches the log');
          const ns = (client as unknown as { namespaces: { personal: Array<{ prefix: string; delimiter: string | null }> } }).namespaces;
          const prefix = p.namespace.startsWith('(("INBOX.') ? 'INBOX.' : '';
          assert.deepEqual(ns.personal[0], { prefix, delimiter: p.delimiter });
          assert.deepEqual(client.namespace, { prefix, delimiter: p.delimiter });
        } finally {
          await done(client);
        }
        const wrong = new ImapFlow({ host: srv.host, port: srv.port, secure: false, auth: { user: 'alice', pass: 'nope' }, logger: false });
        wrong.on('error', () => undefined);
        await assert.rejects(wrong.connect(), (e: { authenticationFailed?: boolean }) => e.authenticationFailed === true);
        wrong.close();
      });

      test('list() returns the configured tree: decoded paths, delimiter, \\Noselect parents, subscriptions', async () => {
        const client = await connect(srv);
        let entries: ListResponse[];
        try {
          const before = srv.log.length;
          entries = await client.list();
          const sent = srv.log.slice(before).join('\n');
          if (c.subscriptions === 'LSUB') assert.match(sent, /LSUB/);
          else assert.ok(/RETURN \(.*SUBSCRIBED\)/.test(sent) && !/LSUB/.test(sent), sent);
        } finally {
          await done(client);
        }
        assert.deepEqual(entries.map((e) => e.path).sort(), [...c.listed].sort());
        for (const e of entries) {
          assert.equal(e.delimiter ?? null, p.delimiter, `delimiter of ${e.path}`);
          assert.equal(e.flags.has('\\Noselect'), c.noSelect.includes(e.path), `\\Noselect on ${e.path}`);
          const configured = c.folders.find((f) => f.name === e.path)!;
          assert.equal(!!e.subscribed, !!configured.subscribed || e.path === 'INBOX', `subscribed ${e.path}`);
        }
        // Names that need encoding went over the wire in modified UTF-7 (the server log holds what
        // imapflow sends; the LIST replies themselves are checked over a raw socket below).
        assert.ok(c.listed.some((n) => /[^\x20-\x7e]/.test(n)));
      });

      test('a 500-folder tree 12 levels deep lists completely', async () => {
        const tree = bigTree(p);
        const big = await startScriptedImap({ personality: p, users: { alice: { password: PASSWORD, folders: tree.folders } } });
        try {
          const client = await connect(big);
          try {
            const entries = await client.list();
            assert.equal(entries.length, 501);
            assert.deepEqual(entries.map((e) => e.path).sort(), [...tree.names].sort());
            const deepest = Math.max(...entries.map((e) => (p.delimiter ? e.path.split(p.delimiter).length : 1)));
            if (p.delimiter) assert.equal(deepest - (tree.names[1]!.startsWith('INBOX.') ? 1 : 0), 12);
            const noSelect = entries.filter((e) => e.flags.has('\\Noselect')).map((e) => e.path);
            assert.deepEqual(noSelect.sort(), tree.folders.filter((f) => f.attributes?.includes('\\Noselect')).map((f) => f.name).sort());
          } finally {
            await done(client);
          }
        } finally {
          await big.stop();
        }
      });

      test("mailmover's source reads: exact bytes, flags, internal dates, UIDs, headers", async () => {
        const client = await connect(srv);
        try {
          const box = await client.mailboxOpen(c.mailFolder, { readOnly: true });
          assert.equal(box.exists, 5);
          assert.equal(box.uidNext, 4713);
          assert.equal(box.readOnly, true);
          const expected = sampleMessages();
          // The listing FETCH (sequence range) with the identity headers.
          const listing = [];
          for await (const m of client.fetch('1:*', { uid: true, flags: true, internalDate: true, size: true, headers: ['message-id', 'date', 'from', 'to', 'subject'] })) listing.push(m);
          assert.deepEqual(
            listing.map((m) => m.uid),
            UIDS,
          );
          listing.forEach((m, i) => {
            const want = expected[i]!;
            assert.equal(m.size, want.raw.length, `size of UID ${m.uid}`);
            assert.deepEqual([...(m.flags ?? [])].sort(), [...want.flags].sort(), `flags of UID ${m.uid}`);
            assert.equal((m.internalDate as Date).getTime(), want.internalDate.getTime(), `date of UID ${m.uid}`);
          });
          assert.equal(
            listing[0]!.headers!.toString(),
            'Message-ID: <one@example.test>\r\nDate: Mon, 1 Jan 2024 10:00:00 +0100\r\nFrom: Ann <ann@example.test>\r\nTo: bob@example.test\r\nSubject: one\r\n  folded\r\n\r\n',
          );
          assert.equal(listing[2]!.headers!.toString(), 'Subject: no body, no newline\r\n\r\n');
          // UIDs, then bodies by UID set (one batch), then one by one.
          assert.deepEqual(await client.search({ all: true }, { uid: true }), UIDS);
          const bodies = new Map<number, Buffer>();
          for await (const m of client.fetch('1,7:8,4711:4712', { uid: true, source: true }, { uid: true })) bodies.set(m.uid, m.source!);
          assert.deepEqual([...bodies.keys()], UIDS);
          UIDS.forEach((uid, i) => assert.equal(sha(bodies.get(uid)!), sha(expected[i]!.raw), `bytes of UID ${uid}`));
          const one = await client.fetchOne('7', { uid: true, source: true }, { uid: true });
          assert.ok(one && one.source!.equals(expected[1]!.raw));
          // Read-only: the body fetches set no \Seen, and CLOSE expunges nothing.
          await client.mailboxClose();
          const again = await client.mailboxOpen(c.mailFolder, { readOnly: true });
          assert.equal(again.exists, 5);
          const flags = await client.fetchOne('3', { flags: true });
          assert.ok(flags && !flags.flags!.has('\\Seen'));
        } finally {
          await done(client);
        }
      });
    });
  }
});

// ---------------------------------------------------------------------------------------------
// imapflow quirks the presets expose (pinned imapflow 2.1.2)
// ---------------------------------------------------------------------------------------------

describe('scripted IMAP server: what imapflow makes of the vendor styles', () => {
  test('special-use: Gmail via extension, Exchange only by name (no SPECIAL-USE capability), Cyrus lower case only by name', async () => {
    const folders = [folder('INBOX'), folder('INBOX.Sent', { attributes: ['\\Sent'] }), folder('INBOX.Papierkorb', { attributes: ['\\Trash'] })];
    const run = async (p: Personality, fs: ScriptedFolder[]) => {
      const srv = await startScriptedImap({ personality: p, users: { alice: { password: PASSWORD, folders: fs } } });
      try {
        const client = await connect(srv);
        try {
          return new Map((await client.list()).map((e) => [e.path, e]));
        } finally {
          await done(client);
        }
      } finally {
        await srv.stop();
      }
    };
    const g = await run(gmail, [folder('INBOX'), folder('Sent', { attributes: ['\\Sent'] }), folder('Papierkorb', { attributes: ['\\Trash'] })]);
    assert.equal(g.get('Papierkorb')!.specialUse, '\\Trash');
    assert.equal(g.get('Papierkorb')!.specialUseSource, 'extension');
    const x = await run(exchange, [folder('INBOX'), folder('Sent', { attributes: ['\\Sent'] }), folder('Weg damit', { attributes: ['\\Trash'] })]);
    assert.ok(x.get('Weg damit')!.flags.has('\\Trash'), 'the attribute is on the wire');
    assert.equal(x.get('Weg damit')!.specialUse, undefined, 'imapflow ignores it without SPECIAL-USE');
    assert.equal(x.get('Sent')!.specialUseSource, 'name');
    const cy = await run(cyrus, folders);
    assert.ok(cy.get('INBOX.Papierkorb')!.flags.has('\\trash'), 'lower case on the wire, as requested with RETURN (SPECIAL-USE)');
    // imapflow compares attribute names case-sensitively, so `\trash` is not recognised; "Papierkorb" is
    // a known German name for the trash, so it is still found, but by name.
    assert.equal(cy.get('INBOX.Papierkorb')!.specialUseSource, 'name');
  });

  test('Gmail without SPECIAL-USE: imapflow falls back to XLIST, which marks INBOX \\Inbox', async () => {
    const legacy: Personality = { ...gmail, name: 'gmail-xlist', capabilitiesAfterLogin: gmail.capabilitiesAfterLogin!.filter((x) => x !== 'SPECIAL-USE' && x !== 'LIST-EXTENDED') };
    const srv = await startScriptedImap({ personality: legacy, users: { alice: { password: PASSWORD, folders: [folder('INBOX'), folder('[Gmail]', { attributes: ['\\Noselect'] }), folder('[Gmail]/Alle Nachrichten', { attributes: ['\\All'] })] } } });
    try {
      const client = await connect(srv);
      try {
        const entries = await client.list();
        assert.ok(srv.log.some((l) => / XLIST "" "\*"$/.test(l)), srv.log.join('\n'));
        const all = entries.find((e) => e.path === '[Gmail]/Alle Nachrichten')!;
        assert.equal(all.specialUse, '\\All');
        assert.equal(all.specialUseSource, 'extension');
        assert.equal(entries.find((e) => e.path === 'INBOX')!.flags.has('\\Inbox'), false, 'imapflow strips \\Inbox');
      } finally {
        await done(client);
      }
    } finally {
      await srv.stop();
    }
  });

  test('a prefixed namespace: imapflow lists with the prefix as reference, so other namespaces stay out', async () => {
    const srv = await startScriptedImap({ personality: cyrus, users: { alice: { password: PASSWORD, folders: [folder('INBOX'), folder('INBOX.A'), folder('user.bob'), folder('Shared')] } } });
    try {
      const client = await connect(srv);
      try {
        assert.deepEqual((await client.list()).map((e) => e.path).sort(), ['INBOX', 'INBOX.A']);
        assert.ok(srv.log.some((l) => /LIST "INBOX\." "\*"/.test(l)));
        assert.ok(srv.log.some((l) => /LIST "" "INBOX"/.test(l)), 'and INBOX separately');
      } finally {
        await done(client);
      }
    } finally {
      await srv.stop();
    }
  });
});

// ---------------------------------------------------------------------------------------------
// Fault hooks
// ---------------------------------------------------------------------------------------------

describe('scripted IMAP server: fault hooks', () => {
  const messages = () => [1, 2, 3].map((i) => ({ raw: Buffer.from(`Subject: m${i}\r\n\r\nbody ${i}\r\n`), flags: [], internalDate: new Date('2024-01-01T00:00:00Z') }));

  test('fetchFailures answers NO the configured number of times, only for that message', async () => {
    const srv = await startScriptedImap({
      personality: exchange,
      users: { alice: { password: PASSWORD, folders: [folder('INBOX', { messages: messages() }), folder('Other', { messages: messages() })] } },
      faults: {
        alice: {
          fetchFailures: {
            INBOX: { 2: { times: 2, response: 'NO [UNAVAILABLE] Message is being scanned' } },
            Other: { 3: { times: 'always', response: 'NO [SERVERBUG] Corrupt message' } },
          },
        },
      },
    });
    try {
      const client = await connect(srv);
      try {
        await client.mailboxOpen('INBOX', { readOnly: true });
        // Listing (headers, no body) is not a body fetch: it succeeds.
        const listed = [];
        for await (const m of client.fetch('1:*', { uid: true, size: true, headers: ['subject'] })) listed.push(m.uid);
        assert.deepEqual(listed, [1, 2, 3]);
        // A batch: the other messages arrive, then the command fails (failure 1 of 2).
        const got: number[] = [];
        await assert.rejects(
          (async () => {
            for await (const m of client.fetch('1:3', { uid: true, source: true }, { uid: true })) got.push(m.uid);
          })(),
          (e: { responseStatus?: string; responseText?: string }) => e.responseStatus === 'NO' && e.responseText === 'Message is being scanned',
        );
        assert.deepEqual(got, [1, 3]);
        // Failure 2 of 2, then it recovers.
        await assert.rejects(client.fetchOne('2', { uid: true, source: true }, { uid: true }), /Command failed/);
        const ok = await client.fetchOne('2', { uid: true, source: true }, { uid: true });
        assert.ok(ok && ok.source!.toString().includes('body 2'));
        // 'always' never recovers, also on a new connection.
        await client.mailboxOpen('Other', { readOnly: true });
        for (let i = 0; i < 3; i++) await assert.rejects(client.fetchOne('3', { uid: true, source: true }, { uid: true }));
      } finally {
        await done(client);
      }
      const second = await connect(srv);
      try {
        await second.mailboxOpen('Other', { readOnly: true });
        await assert.rejects(second.fetchOne('3', { uid: true, source: true }, { uid: true }));
        const recovered = await second.fetchOne('2', { uid: true, source: true }, { uid: true });
        assert.ok(recovered && recovered.source);
      } finally {
        await done(second);
      }
      const tagged = srv.log.filter((l) => /UID FETCH (1:3|2|3) \(UID BODY\.PEEK\[\]\)/.test(l));
      assert.ok(tagged.length >= 7);
    } finally {
      await srv.stop();
    }
  });

  test("trigger 'content' fails header fetches too", async () => {
    const srv = await startScriptedImap({
      personality: gmail,
      users: { alice: { password: PASSWORD, folders: [folder('INBOX', { messages: messages() })] } },
      faults: { alice: { fetchFailures: { INBOX: { 1: { times: 1, response: 'NO Some messages could not be FETCHed (Failure)', trigger: 'content' } } } } },
    });
    try {
      const client = await connect(srv);
      try {
        await client.mailboxOpen('INBOX', { readOnly: true });
        const seen: number[] = [];
        await assert.rejects(async () => {
          for await (const m of client.fetch('1:*', { uid: true, headers: ['subject'] })) seen.push(m.uid);
        });
        assert.deepEqual(seen, [2, 3]);
        const again = [];
        for await (const m of client.fetch('1:*', { uid: true, headers: ['subject'] })) again.push(m.uid);
        assert.deepEqual(again, [1, 2, 3]);
      } finally {
        await done(client);
      }
    } finally {
      await srv.stop();
    }
  });

  test('malformedList lines go out verbatim; imapflow keeps a valid one and silently drops a broken one', async () => {
    const srv = await startScriptedImap({
      personality: exchange,
      users: { alice: { password: PASSWORD, folders: [folder('INBOX')] } },
      faults: { alice: { malformedList: ['* LIST (\\HasNoChildren) "/" Injected', '* LIST (\\HasNoChildren) "/" "Broken'] } },
    });
    try {
      const { raw } = await Raw.open(srv);
      await raw.cmd('a', `LOGIN alice "${PASSWORD.replace(/["\\]/g, '\\$&')}"`);
      const out = await raw.cmd('b', 'LIST "" "*"');
      assert.match(out, /^\* LIST \(\\HasNoChildren\) "\/" Injected\r\n\* LIST \(\\HasNoChildren\) "\/" "Broken\r\nb OK/m);
      assert.doesNotMatch(await raw.cmd('c', 'LIST "" INBOX'), /Injected/, 'only into wildcard listings');
      raw.close();
      const client = await connect(srv);
      try {
        assert.deepEqual((await client.list()).map((e) => e.path).sort(), ['INBOX', 'Injected']);
        assert.equal(client.usable, true);
      } finally {
        await done(client);
      }
    } finally {
      await srv.stop();
    }
  });
});

// ---------------------------------------------------------------------------------------------
// As a migration destination: CREATE, SUBSCRIBE, APPEND, and the destination fault hooks
// ---------------------------------------------------------------------------------------------

describe('scripted IMAP server: as a migration destination', () => {
  const login = `LOGIN alice "${PASSWORD.replace(/["\\]/g, '\\$&')}"`;
  /** 8-bit bytes, a bare LF, CRLFs, no final newline: anything that is not kept byte for byte shows. */
  const odd = (id: string) => Buffer.concat([Buffer.from(`Message-ID: <${id}@example.test>\r\nSubject: ${id}\nX-8bit: `), Buffer.from([0xe9, 0x80, 0xff]), Buffer.from('\r\n\r\nbody\r\nlast line without newline')]);
  const dest = (extra: Partial<ScriptedFolder>[] = []): ScriptedFolder[] => [folder('INBOX'), folder('Sent Items', { attributes: ['\\Sent'] }), ...extra.map((e) => folder(e.name!, e))];
  /** A raw APPEND with a synchronizing literal: waits for "+", sends the bytes, returns the answer. */
  async function appendSync(raw: Raw, tag: string, args: string, msg: Buffer): Promise<string> {
    raw.write(`${tag} APPEND ${args} {${msg.length}}\r\n`);
    const cont = await raw.until(/^(\+ |[^ ]+ (NO|BAD) )[^\r\n]*\r\n/m);
    if (!cont.includes('+ ')) return cont;
    raw.write(Buffer.concat([msg, Buffer.from('\r\n')]));
    return cont + (await raw.tagged(tag));
  }
  /** A raw APPEND with a LITERAL+ literal, all in one write. */
  function appendPlus(raw: Raw, tag: string, args: string, msg: Buffer): void {
    raw.write(Buffer.concat([Buffer.from(`${tag} APPEND ${args} {${msg.length}+}\r\n`), msg, Buffer.from('\r\n')]));
  }

  test('APPEND stores the exact bytes, flags and date, answers APPENDUID, and every connection sees it', async () => {
    const srv = await startScriptedImap({ personality: exchange, users: { alice: { password: PASSWORD, folders: dest() } }, limits: { maxLiteralBytes: 4096 } });
    try {
      const uidValidity = (await (async () => {
        const { raw } = await Raw.open(srv);
        await raw.cmd('l', login);
        const st = await raw.cmd('s', 'STATUS "Sent Items" (UIDVALIDITY UIDNEXT MESSAGES)');
        raw.close();
        assert.match(st, /UIDNEXT 1 MESSAGES 0/);
        return Number(/UIDVALIDITY (\d+)/.exec(st)![1]);
      })());
      const { raw } = await Raw.open(srv);
      await raw.cmd('l', login);
      // Synchronizing literal, flags in any case and repeated, a space-padded day with a zone offset.
      const one = odd('one');
      const a1 = await appendSync(raw, 'a1', '"Sent Items" (\\seen $Label1 \\Flagged $label1 \\SEEN) " 1-Feb-2020 01:30:00 +0130"', one);
      assert.match(a1, /^\+ [^\r\n]*\r\n/, 'a continuation for the synchronizing literal');
      assert.equal(lastLine(a1), `a1 OK [APPENDUID ${uidValidity} 1] Append completed.`);
      // LITERAL+ (no continuation), no flags, a negative offset.
      const two = Buffer.from('Subject: two\r\n\r\n');
      appendPlus(raw, 'a2', '"Sent Items" () "31-Dec-1999 23:00:00 -0200"', two);
      const a2 = await raw.tagged('a2');
      assert.doesNotMatch(a2, /^\+/m);
      assert.equal(lastLine(a2), `a2 OK [APPENDUID ${uidValidity} 2] Append completed.`);
      // Neither flags nor date: the date is now, in whole seconds.
      const before = Math.floor(Date.now() / 1000) * 1000;
      appendPlus(raw, 'a3', 'INBOX', Buffer.from('Subject: three\r\n\r\n'));
      assert.match(lastLine(await raw.tagged('a3')), /^a3 OK \[APPENDUID \d+ 1\] Append completed\.$/);
      const after = Date.now();

      // Refusals: no folder (TRYCREATE), \Recent and unknown system flags, bad dates, no literal, a
      // second message (no MULTIAPPEND), a literal over maxLiteralBytes (the existing TOOBIG handling).
      assert.equal(lastLine(await appendSync(raw, 'n1', 'Nowhere', two)), "n1 NO [TRYCREATE] Mailbox doesn't exist");
      for (const [args, why] of [
        ['INBOX (\\Recent)', /Invalid flag \\Recent/],
        ['INBOX (\\Frob)', /Invalid flag/],
        ['INBOX (\\*)', /Expected an atom/],
        ['INBOX "31-Feb-2020 00:00:00 +0000"', /Invalid date-time/],
        ['INBOX "1-Feb-2020 00:00:00 +0000"', /Invalid date-time/],
        ['INBOX "01-Feb-2020 24:00:00 +0000"', /Invalid date-time/],
      ] as const) {
        assert.match(lastLine(await appendSync(raw, 'b', args, two)), new RegExp(`^b BAD .*${why.source}`), args);
      }
      assert.match(lastLine(await raw.cmd('b2', 'APPEND INBOX () message')), /^b2 BAD APPEND needs the message as a literal/);
      raw.write('b3 APPEND INBOX {2}\r\n');
      await raw.until(/^\+ [^\r\n]*\r\n/m);
      raw.write('ab {2}\r\n');
      await raw.until(/^\+ [^\r\n]*\r\n/m);
      raw.write('cd\r\n');
      assert.match(lastLine(await raw.tagged('b3')), /^b3 BAD/, 'MULTIAPPEND is not implemented');
      assert.match(lastLine(await appendSync(raw, 'b4', 'INBOX', Buffer.alloc(5000, 'x'))), /^b4 BAD \[TOOBIG\]/);
      assert.match(lastLine(await raw.cmd('b5', 'NOOP')), /^b5 OK/, 'the connection goes on');

      // What the server holds.
      const box = new Map(srv.mailbox('alice').map((f) => [f.name, f]));
      assert.deepEqual([...box.keys()], ['INBOX', 'Sent Items']);
      const sent = box.get('Sent Items')!.messages;
      assert.deepEqual(
        sent.map((m) => m.uid),
        [1, 2],
      );
      assert.ok(sent[0]!.raw.equals(one), 'exact bytes');
      assert.deepEqual(sent[0]!.flags, ['\\Seen', '$Label1', '\\Flagged'], 'system flags canonical, duplicates (any case) once');
      assert.equal(sent[0]!.internalDate.toISOString(), '2020-02-01T00:00:00.000Z');
      assert.ok(sent[1]!.raw.equals(two));
      assert.deepEqual(sent[1]!.flags, []);
      assert.equal(sent[1]!.internalDate.toISOString(), '2000-01-01T01:00:00.000Z');
      const inbox = box.get('INBOX')!.messages;
      assert.equal(inbox.length, 1, 'nothing refused was stored');
      const t = inbox[0]!.internalDate.getTime();
      assert.ok(t >= before && t <= after && t % 1000 === 0, 'default date: now, in whole seconds');
      raw.close();

      // Another connection reads it back the way mailmover lists a destination, and STATUS agrees.
      const client = await connect(srv);
      try {
        assert.deepEqual(await client.status('Sent Items', { messages: true, uidNext: true }), { path: 'Sent Items', messages: 2, uidNext: 3 });
        await client.mailboxOpen('Sent Items', { readOnly: true });
        const before = srv.log.length;
        const listed = [];
        for await (const m of client.fetch('1:*', { uid: true, flags: true, internalDate: true, size: true, headers: true }, { uid: true })) listed.push(m);
        assert.ok(srv.log.slice(before).some((l) => /UID FETCH 1:\* \(UID FLAGS INTERNALDATE RFC822\.SIZE BODY\.PEEK\[HEADER\]\)/.test(l)), srv.log.slice(before).join('\n'));
        assert.deepEqual(
          listed.map((m) => [m.uid, m.size, [...m.flags!].sort(), (m.internalDate as Date).toISOString()]),
          [
            [1, one.length, ['$Label1', '\\Flagged', '\\Seen'], '2020-02-01T00:00:00.000Z'],
            [2, two.length, [], '2000-01-01T01:00:00.000Z'],
          ],
        );
        assert.ok(listed[0]!.headers!.equals(one.subarray(0, one.indexOf('\r\n\r\n') + 4)));
        const body = await client.fetchOne('1', { source: true }, { uid: true });
        assert.ok(body && body.source!.equals(one));
      } finally {
        await done(client);
      }
    } finally {
      await srv.stop();
    }
  });

  test('APPEND into a selected mailbox: EXISTS for the appender at once, for other connections at their next command', async () => {
    const srv = await startScriptedImap({ personality: literalNames, users: { alice: { password: PASSWORD, folders: dest() } } });
    try {
      const { raw: a } = await Raw.open(srv);
      const { raw: b } = await Raw.open(srv);
      await a.cmd('l', login);
      await b.cmd('l', login);
      assert.match(await a.cmd('s', 'SELECT INBOX'), /^\* 0 EXISTS\r\n/m);
      assert.match(await b.cmd('s', 'EXAMINE INBOX'), /^\* 0 EXISTS\r\n/m);
      // No UIDPLUS on this preset: no APPENDUID.
      assert.match(await appendSync(a, 'a1', 'INBOX', odd('x')), /^\* 1 EXISTS\r\na1 OK Append completed\.\r\n/m);
      assert.match(await b.cmd('n', 'NOOP'), /^\* 1 EXISTS\r\nn OK/);
      assert.match(await b.cmd('n2', 'NOOP'), /^n2 OK/, 'only once');
      assert.match(await b.cmd('f', 'UID FETCH 1:* (FLAGS)'), /^\* 1 FETCH \(UID 1 FLAGS \(\)\)\r\nf OK/);
      a.close();
      b.close();
    } finally {
      await srv.stop();
    }
  });

  test('CREATE makes the folder and its missing parents (selectable); ALREADYEXISTS; SUBSCRIBE/UNSUBSCRIBE are recorded', async () => {
    const srv = await startScriptedImap({ personality: exchange, users: { alice: { password: PASSWORD, folders: dest([{ name: 'Old/Deep', subscribed: true }]) } } });
    try {
      const { raw } = await Raw.open(srv);
      await raw.cmd('l', login);
      assert.equal(lastLine(await raw.cmd('c1', 'CREATE "Projekte/&AMQ-rger/2024"')), 'c1 OK CREATE completed.', 'modified UTF-7 on the wire');
      assert.equal(lastLine(await raw.cmd('c2', 'CREATE "Projekte/&AMQ-rger/2024"')), 'c2 NO [ALREADYEXISTS] Mailbox already exists');
      assert.equal(lastLine(await raw.cmd('c3', 'CREATE Projekte')), 'c3 NO [ALREADYEXISTS] Mailbox already exists', 'the parent was created too');
      assert.equal(lastLine(await raw.cmd('c4', 'CREATE inbox')), 'c4 NO [ALREADYEXISTS] Mailbox already exists');
      assert.equal(lastLine(await raw.cmd('c5', 'CREATE Old')), 'c5 OK CREATE completed.', 'a level that was only implied becomes a folder');
      assert.equal(lastLine(await raw.cmd('c6', 'CREATE Neu/')), 'c6 OK CREATE completed.', 'a trailing delimiter is dropped');
      assert.match(lastLine(await raw.cmd('c7', 'CREATE A*')), /^c7 BAD/, 'not an astring');
      for (const name of ['"A//B"', '"/A"', '"A*"', '"A%B"', '"&Jjo"']) assert.match(lastLine(await raw.cmd('c7', `CREATE ${name}`)), /^c7 NO \[CANNOT\] Invalid mailbox name/, name);
      assert.match(
        await raw.cmd('l1', 'LIST "" "*"'),
        /"\/" Projekte\r\n\* LIST \(\\HasChildren\) "\/" Projekte\/&AMQ-rger\r\n\* LIST \(\\HasNoChildren\) "\/" Projekte\/&AMQ-rger\/2024\r\n\* LIST \(\\HasChildren\) "\/" Old\r\n\* LIST \(\\HasNoChildren\) "\/" Neu\r\nl1 OK/,
      );
      assert.match(await raw.cmd('s0', 'STATUS "Projekte/&AMQ-rger" (MESSAGES UIDNEXT)'), /\(MESSAGES 0 UIDNEXT 1\)/, 'a created parent is selectable');

      assert.equal(lastLine(await raw.cmd('s1', 'SUBSCRIBE "Projekte/&AMQ-rger/2024"')), 's1 OK SUBSCRIBE completed.');
      assert.equal(lastLine(await raw.cmd('s2', 'SUBSCRIBE "Projekte/&AMQ-rger/2024"')), 's2 OK SUBSCRIBE completed.', 'idempotent');
      assert.equal(lastLine(await raw.cmd('s3', 'UNSUBSCRIBE Old/Deep')), 's3 OK UNSUBSCRIBE completed.');
      assert.match(lastLine(await raw.cmd('s4', 'SUBSCRIBE Nowhere')), /^s4 NO \[NONEXISTENT\]/);
      assert.match(await raw.cmd('s5', 'LSUB "" "*"'), /^\* LSUB \(\\HasNoChildren\) "\/" Projekte\/&AMQ-rger\/2024\r\ns5 OK/);
      raw.close();

      assert.deepEqual(
        srv.mailbox('alice').map((f) => [f.name, f.subscribed]),
        [
          ['INBOX', false],
          ['Sent Items', false],
          ['Old/Deep', false],
          ['Projekte', false],
          ['Projekte/Ärger', false],
          ['Projekte/Ärger/2024', true],
          ['Old', false],
          ['Neu', false],
        ],
      );
      assert.throws(() => srv.mailbox('nobody'), /no user nobody/);
    } finally {
      await srv.stop();
    }
  });

  // Through imapflow, the way mailmover writes a destination, for every preset.
  for (const p of Object.values(PERSONALITIES)) {
    test(`${p.name}: imapflow's mailboxCreate, mailboxSubscribe, append and read-back`, async () => {
      const prefix = p.namespace.startsWith('(("INBOX.') ? 'INBOX.' : '';
      const path = prefix + ['Ablage Ä', 'Kunden "x"', '2024'].join(p.delimiter ?? ' ~ ');
      const srv = await startScriptedImap({ personality: p, users: { alice: { password: PASSWORD, folders: [folder('INBOX')] } } });
      try {
        const client = await connect(srv);
        const big = Buffer.concat([odd('big'), Buffer.alloc(10_000, 'y')]);
        try {
          assert.deepEqual(await client.mailboxCreate(path), { path, created: true });
          assert.deepEqual(await client.mailboxCreate(path), { path, created: false }, 'ALREADYEXISTS is what imapflow understands');
          await client.mailboxUnsubscribe(path);
          const small = odd('small');
          const r1 = await client.append(path, small, ['\\Seen', '$Forwarded'], new Date('2021-03-04T05:06:07Z'));
          const r2 = await client.append(path, big, [], new Date('2001-01-01T00:00:00Z'));
          const uidPlus = (p.capabilitiesAfterLogin ?? p.capabilities).includes('UIDPLUS');
          assert.equal(r1 && r1.uid, uidPlus ? 1 : undefined);
          assert.equal(r2 && r2.uid, uidPlus ? 2 : undefined);
          await client.mailboxSubscribe(path);
          const entries = await client.list();
          const entry = entries.find((e) => e.path === path);
          assert.ok(entry && entry.subscribed && !entry.flags.has('\\Noselect'), JSON.stringify(entries.map((e) => [e.path, [...e.flags], e.subscribed])));
          await client.mailboxOpen(path, { readOnly: true });
          const got = [];
          for await (const m of client.fetch('1:*', { uid: true, flags: true, internalDate: true, size: true, source: true }, { uid: true })) got.push(m);
          assert.deepEqual(
            got.map((m) => [m.uid, [...m.flags!].sort(), (m.internalDate as Date).toISOString(), m.size]),
            [
              [1, ['$Forwarded', '\\Seen'], '2021-03-04T05:06:07.000Z', small.length],
              [2, [], '2001-01-01T00:00:00.000Z', big.length],
            ],
          );
          assert.ok(got[0]!.source!.equals(small) && got[1]!.source!.equals(big));
        } finally {
          await done(client);
        }
        const stored = srv.mailbox('alice').find((f) => f.name === path)!;
        assert.ok(stored.subscribed);
        assert.ok(stored.messages[1]!.raw.equals(big));
        if (p.delimiter) assert.ok(srv.mailbox('alice').some((f) => f.name === prefix + 'Ablage Ä'), 'the parent exists');
      } finally {
        await srv.stop();
      }
    });
  }

  test('appendFailures: the configured answer verbatim, nothing stored, K times (over connections), then stored', async () => {
    const throttled = 'NO [LIMIT] Request is throttled. Suggested Backoff Time: 200 milliseconds';
    const srv = await startScriptedImap({
      personality: exchange,
      users: { alice: { password: PASSWORD, folders: dest() } },
      faults: {
        alice: {
          appendFailures: [
            { match: '<m2@example.test>', times: 2, response: throttled },
            { match: '<bad@example.test>', times: 'always', response: 'NO [CANNOT] bad message' },
            { match: '<m2@example.test>', times: 1, response: 'NO [OVERQUOTA] Quota exceeded' },
          ],
        },
      },
    });
    try {
      const { raw } = await Raw.open(srv);
      await raw.cmd('l', login);
      appendPlus(raw, 'a1', 'INBOX', odd('m1'));
      assert.match(lastLine(await raw.tagged('a1')), /^a1 OK \[APPENDUID \d+ 1\]/);
      appendPlus(raw, 'a2', 'INBOX (\\Seen)', odd('m2'));
      assert.equal(lastLine(await raw.tagged('a2')), `a2 ${throttled}`);
      assert.equal(lastLine(await appendSync(raw, 'a3', 'INBOX', odd('m2'))), `a3 ${throttled}`, 'also after a synchronizing literal');
      raw.close();
      assert.equal(srv.mailbox('alice')[0]!.messages.length, 1, 'a failed APPEND stores nothing');

      // The counters are per user: a new connection, through imapflow, meets the next rule.
      const client = await connect(srv);
      try {
        await assert.rejects(client.append('INBOX', odd('m2')), (e: { responseStatus?: string; responseText?: string }) => e.responseStatus === 'NO' && e.responseText === 'Quota exceeded');
        const ok = await client.append('INBOX', odd('m2'), ['\\Seen']);
        assert.equal(ok && ok.uid, 2, 'failures use up no UID');
        for (let i = 0; i < 3; i++) await assert.rejects(client.append('INBOX', odd('bad')), /Command failed/);
        const again = await client.append('INBOX', odd('m2'));
        assert.equal(again && again.uid, 3, 'the rules ran out for m2');
      } finally {
        await done(client);
      }
      const inbox = srv.mailbox('alice')[0]!.messages;
      assert.deepEqual(
        inbox.map((m) => [m.uid, /Message-ID: <(\w+)@/.exec(m.raw.toString('latin1'))![1]]),
        [
          [1, 'm1'],
          [2, 'm2'],
          [3, 'm2'],
        ],
      );
      assert.ok(inbox[1]!.raw.equals(odd('m2')));
    } finally {
      await srv.stop();
    }
  });

  test('byeAfterCommands: after N tagged commands since login, * BYE and close instead of an answer, on `times` connections', async () => {
    const srv = await startScriptedImap({
      personality: exchange,
      users: { alice: { password: PASSWORD, folders: dest() } },
      faults: { alice: { byeAfterCommands: { count: 3, text: 'Server is restarting', times: 2 } } },
    });
    try {
      const cut = async (tag: string) => {
        const { raw } = await Raw.open(srv);
        assert.match(lastLine(await raw.cmd('c0', 'CAPABILITY')), /^c0 OK/, 'not counted: before login');
        assert.match(lastLine(await raw.cmd('l', login)), /^l OK/, 'the login itself is not counted');
        assert.match(lastLine(await raw.cmd('c1', 'NOOP')), /^c1 OK/);
        assert.match(lastLine(await raw.cmd('c2', 'FROB')), /^c2 BAD/, 'every tagged command counts, whatever its answer');
        appendPlus(raw, 'c3', 'INBOX', odd(`before-${tag}`));
        assert.match(lastLine(await raw.tagged('c3')), /^c3 OK/);
        // The 4th is read in full (literal included) but not executed: no tagged answer, then close.
        appendPlus(raw, tag, 'INBOX', odd(`cut-${tag}`));
        assert.equal(await raw.until(/^\* BYE [^\r\n]*\r\n/m), '* BYE Server is restarting\r\n');
        await raw.closed;
        assert.doesNotMatch(await raw.until(/$/), new RegExp(`^${tag} `, 'm'));
      };
      await cut('x1');
      await cut('x2');
      // Budget spent: a third connection goes on past the count.
      const { raw } = await Raw.open(srv);
      await raw.cmd('l', login);
      for (let i = 0; i < 6; i++) assert.match(lastLine(await raw.cmd(`n${i}`, 'NOOP')), new RegExp(`^n${i} OK`));
      raw.close();
      assert.deepEqual(
        srv.mailbox('alice')[0]!.messages.map((m) => m.raw.toString('latin1').match(/<([\w-]+)@/)![1]),
        ['before-x1', 'before-x2'],
        'the cut commands were not executed',
      );
      assert.equal(srv.log.filter((l) => /<fault: answered with \* BYE Server is restarting>/.test(l)).length, 2);
    } finally {
      await srv.stop();
    }
  });

  test('byeAfterCommands through imapflow: the connection ends with the BYE text, a new one works', async () => {
    const srv = await startScriptedImap({
      personality: gmail,
      users: { alice: { password: PASSWORD, folders: dest() } },
      faults: { alice: { byeAfterCommands: { count: 0, text: '[UNAVAILABLE] Too many simultaneous connections' } } },
    });
    try {
      // count 0: the first command after login (imapflow's own CAPABILITY/ID/ENABLE...) is cut.
      const c = new ImapFlow({ host: srv.host, port: srv.port, secure: false, auth: { user: 'alice', pass: PASSWORD }, logger: false, disableAutoIdle: true });
      c.on('error', () => undefined);
      const closed = new Promise<void>((resolve) => c.once('close', () => resolve()));
      await c.connect().then(
        () => c.list(),
        () => undefined,
      ).catch(() => undefined);
      await closed;
      assert.equal(c.usable, false);
      const second = await connect(srv);
      try {
        await second.mailboxCreate('Neu');
        assert.ok((await second.list()).some((e) => e.path === 'Neu'));
      } finally {
        await done(second);
      }
    } finally {
      await srv.stop();
    }
  });

  test('appendDropConnection: the message is stored, then the connection closes without a tagged answer', async () => {
    const srv = await startScriptedImap({
      personality: cyrus,
      users: { alice: { password: PASSWORD, folders: [folder('INBOX'), folder('INBOX.Archiv')] } },
      faults: { alice: { appendDropConnection: { match: 'Message-ID: <lost@', times: 2 } } },
    });
    try {
      const { raw } = await Raw.open(srv);
      await raw.cmd('l', `AUTHENTICATE PLAIN ${Buffer.from(`\0alice\0${PASSWORD}`).toString('base64')}`);
      assert.match(await raw.cmd('s', 'SELECT INBOX.Archiv'), /^\* 0 EXISTS\r\n/m);
      appendPlus(raw, 'a1', 'INBOX.Archiv (\\Flagged) "02-Jan-2020 00:00:00 +0000"', odd('lost'));
      await raw.closed;
      assert.equal(await raw.until(/$/), '', 'no EXISTS, no tagged answer: nothing at all');
      const stored = srv.mailbox('alice')[1]!.messages;
      assert.equal(stored.length, 1);
      assert.ok(stored[0]!.raw.equals(odd('lost')));
      assert.deepEqual(stored[0]!.flags, ['\\Flagged']);

      // imapflow: the append fails although the message arrived; the next one is dropped as well
      // (times: 2), the third is answered.
      const client = await connect(srv);
      client.on('close', () => undefined);
      await assert.rejects(client.append('INBOX.Archiv', odd('lost')));
      assert.equal(client.usable, false);
      client.close();
      const next = await connect(srv);
      try {
        const r = await next.append('INBOX.Archiv', odd('lost'));
        assert.equal(r && r.uid, 3);
        await next.mailboxOpen('INBOX.Archiv', { readOnly: true });
        const uids = [];
        for await (const m of next.fetch('1:*', { uid: true, headers: ['message-id'] })) uids.push(m.uid);
        assert.deepEqual(uids, [1, 2, 3], 'the dropped APPENDs are there for any later reader');
      } finally {
        await done(next);
      }
      assert.equal(srv.log.filter((l) => l.includes('connection dropped without a tagged answer')).length, 2);
    } finally {
      await srv.stop();
    }
  });
});

// ---------------------------------------------------------------------------------------------
// OAuth 2.0: AUTHENTICATE XOAUTH2 and OAUTHBEARER
// ---------------------------------------------------------------------------------------------

describe('scripted IMAP server: OAuth 2.0 (XOAUTH2, OAUTHBEARER)', () => {
  // Access tokens as Google and Microsoft issue them use every b64token character but "=" padding.
  const TOKEN = 'ya29.a0Af-H6_valid~Token+1/x==';
  const OTHER = 'EwBoA8l6BAAU.second-Token_2';
  const STALE = 'ya29.expired-or-revoked_3';
  const folders = (): ScriptedFolder[] => [folder('INBOX', { subscribed: true }), folder('Sent Items', { attributes: ['\\Sent'], subscribed: true }), folder('Archive/2024')];
  const users = (tokens: string[] = [TOKEN]) => ({ alice: { password: PASSWORD, folders: folders(), tokens }, bob: { password: PASSWORD, folders: [folder('INBOX')], tokens: [OTHER] } });

  /** A preset with OAuth mechanisms added next to its AUTH=PLAIN (before and after login, and in a greeting's [CAPABILITY]). */
  const withMechs = (p: Personality, ...mechs: string[]): Personality => {
    const add = (caps: string[]) => caps.flatMap((c) => (c === 'AUTH=PLAIN' ? [c, ...mechs] : [c]));
    return {
      ...p,
      name: `${p.name}+${mechs.join('+')}`,
      greeting: p.greeting.replace(/^(\* OK \[CAPABILITY [^\]]*)\bAUTH=PLAIN\b/, `$1AUTH=PLAIN ${mechs.join(' ')}`),
      capabilities: add(p.capabilities),
      ...(p.capabilitiesAfterLogin ? { capabilitiesAfterLogin: add(p.capabilitiesAfterLogin) } : {}),
    };
  };
  // Outlook.com / Microsoft 365 advertise AUTH=XOAUTH2 only; Gmail advertises both (imapflow then
  // prefers OAUTHBEARER). See README.md.
  const outlook = withMechs(exchange, 'AUTH=XOAUTH2');
  const google = withMechs(gmail, 'AUTH=XOAUTH2', 'AUTH=OAUTHBEARER');

  const xoauth2 = (user: string, token: string) => Buffer.from(`user=${user}\x01auth=Bearer ${token}\x01\x01`).toString('base64');
  const oauthbearer = (user: string | null, token: string, port = 143) =>
    Buffer.from(`n,${user === null ? '' : `a=${user}`},\x01host=127.0.0.1\x01port=${port}\x01auth=Bearer ${token}\x01\x01`).toString('base64');
  /** The JSON error inside a `+` continuation. */
  const challenge = (out: string) => JSON.parse(Buffer.from(/^\+ ([^\r\n]*)\r\n/m.exec(out)![1]!, 'base64').toString('utf8')) as Record<string, string>;

  interface OauthError {
    authenticationFailed?: boolean;
    serverResponseCode?: string;
    response?: string;
    oauthError?: Record<string, string>;
  }

  /** connect() with an access token; its failure, or null when it logged in. Fails the test after 5 s (a hang). */
  async function tokenLogin(srv: ScriptedImapServer, token: string, check?: (c: ImapFlow) => Promise<void>, user = 'alice'): Promise<OauthError | null> {
    const c = new ImapFlow({ host: srv.host, port: srv.port, secure: false, auth: { user, accessToken: token }, logger: false, disableAutoIdle: true });
    c.on('error', () => undefined);
    let timer: NodeJS.Timeout | undefined;
    const hang = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error('imapflow hung in AUTHENTICATE')), 5000);
    });
    try {
      await Promise.race([c.connect(), hang]);
    } catch (e) {
      if ((e as Error).message === 'imapflow hung in AUTHENTICATE') throw e;
      return e as OauthError;
    } finally {
      clearTimeout(timer);
      if (!c.authenticated) c.close();
    }
    try {
      await check?.(c);
    } finally {
      await done(c);
    }
    return null;
  }

  const noToken = (srv: ScriptedImapServer, ...tokens: string[]) => {
    const secrets = tokens.flatMap((t) => [t, xoauth2('alice', t), oauthbearer('alice', t)]);
    for (const l of srv.log) for (const s of secrets) assert.ok(!l.includes(s), `a token reached the log: ${l}`);
  };

  for (const [p, mech, status] of [
    [outlook, 'XOAUTH2', '401'],
    [google, 'OAUTHBEARER', 'invalid_token'],
  ] as const) {
    test(`${p.name}: imapflow logs in with a valid token via ${mech} and lists; a wrong one fails AUTHENTICATIONFAILED, without hanging`, async () => {
      const srv = await startScriptedImap({ personality: p, users: users() });
      try {
        const ok = await tokenLogin(srv, TOKEN, async (c) => {
          const paths = (await c.list()).map((e) => e.path).sort();
          assert.deepEqual(paths, ['Archive/2024', 'INBOX', 'Sent Items']);
          const st = await c.status('INBOX', { messages: true });
          assert.equal(st && st.messages, 0);
        });
        assert.equal(ok, null);
        assert.ok(srv.log.some((l) => new RegExp(`^\\w+ AUTHENTICATE ${mech} \\*\\*\\*$`).test(l)), srv.log.join('\n'));
        assert.ok(srv.log.some((l) => new RegExp(`^\\w+ <${mech} "alice" Bearer \\*\\*\\*: accepted>$`).test(l)), srv.log.join('\n'));

        const before = srv.log.length;
        for (const wrong of [STALE, OTHER]) {
          const err = await tokenLogin(srv, wrong);
          assert.ok(err, `${wrong} must not log in`);
          assert.equal(err.authenticationFailed, true);
          assert.equal(err.serverResponseCode, 'AUTHENTICATIONFAILED');
          assert.match(err.response ?? '', /NO \[AUTHENTICATIONFAILED\] Invalid credentials \(Failure\)$/);
          // imapflow decoded the JSON in the "+" and acknowledged it (an empty line, or AQ== for OAUTHBEARER).
          assert.equal(err.oauthError?.status, status);
          assert.equal(err.oauthError?.scope, 'https://mail.google.com/');
        }
        const failed = srv.log.slice(before);
        assert.equal(failed.filter((l) => new RegExp(`^\\w+ <${mech} "alice" Bearer \\*\\*\\*: rejected>$`).test(l)).length, 2, failed.join('\n'));
        assert.equal(failed.filter((l) => l === '*** (SASL response)').length, 2, 'one acknowledgement each');
        noToken(srv, TOKEN, STALE, OTHER);
        // Passwords still work for the same user.
        const byPassword = await connect(srv);
        await done(byPassword);
        await new Promise((resolve) => setTimeout(resolve, 50));
        assert.equal(srv.connections(), 0, 'no connection left behind');
      } finally {
        await srv.stop();
      }
    });
  }

  test('setTokens: a token that worked fails on the next login; sessions already in keep working; [] expires all', async () => {
    const srv = await startScriptedImap({ personality: outlook, users: users() });
    const open = new ImapFlow({ host: srv.host, port: srv.port, secure: false, auth: { user: 'alice', accessToken: TOKEN }, logger: false, disableAutoIdle: true });
    open.on('error', () => undefined);
    try {
      await open.connect();
      srv.setTokens('alice', [OTHER]);
      const err = await tokenLogin(srv, TOKEN);
      assert.equal(err?.serverResponseCode, 'AUTHENTICATIONFAILED');
      assert.equal(err?.authenticationFailed, true);
      assert.equal((await open.list()).length, 3, 'the session logged in before is still in');
      assert.equal(await tokenLogin(srv, OTHER), null, 'the new token works');
      assert.equal(await tokenLogin(srv, OTHER, undefined, 'bob'), null, "bob's tokens are his own");
      srv.setTokens('alice', []);
      assert.equal((await tokenLogin(srv, OTHER))?.serverResponseCode, 'AUTHENTICATIONFAILED');
      assert.throws(() => srv.setTokens('carol', [TOKEN]), /no user carol/);
      assert.throws(() => srv.setTokens('alice', ['has space']), /b64token/);
      noToken(srv, TOKEN, OTHER);
    } finally {
      await done(open);
      await srv.stop();
    }
    await assert.rejects(startScriptedImap({ personality: outlook, users: { alice: { password: PASSWORD, folders: [], tokens: ['bad\x01token'] } } }), /b64token/);
  });

  test('raw XOAUTH2: with SASL-IR and after "+"; an invalid token gets "+ <JSON>", then NO after the empty line', async () => {
    const srv = await startScriptedImap({ personality: outlook, users: users() });
    try {
      const { raw } = await Raw.open(srv);
      // Invalid (and an unknown user): the JSON error first, the NO only after the client's empty line.
      raw.write(`o1 AUTHENTICATE XOAUTH2 ${xoauth2('alice', STALE)}\r\n`);
      const cont = await raw.until(/^\+ [^\r\n]*\r\n/m);
      assert.deepEqual(challenge(cont), { status: '401', schemes: 'Bearer', scope: 'https://mail.google.com/' });
      raw.write('\r\n');
      assert.equal(lastLine(await raw.tagged('o1')), 'o1 NO [AUTHENTICATIONFAILED] Invalid credentials (Failure)');
      raw.write(`o2 AUTHENTICATE XOAUTH2 ${xoauth2('nobody', TOKEN)}\r\n`);
      await raw.until(/^\+ [^\r\n]*\r\n/m);
      raw.write('*\r\n');
      assert.equal(lastLine(await raw.tagged('o2')), 'o2 BAD AUTHENTICATE cancelled');
      // Without SASL-IR: an empty "+", then the message.
      raw.write('o3 AUTHENTICATE XOAUTH2\r\n');
      assert.equal(await raw.until(/^\+ [^\r\n]*\r\n/m), '+ \r\n');
      raw.write(`${xoauth2('alice', STALE)}\r\n`);
      await raw.until(/^\+ [^\r\n]*\r\n/m);
      raw.write('AQ==\r\n');
      assert.equal(lastLine(await raw.tagged('o3')), 'o3 BAD Invalid XOAUTH2 error acknowledgement', 'XOAUTH2 wants an empty line');
      raw.write('o4 AUTHENTICATE XOAUTH2\r\n');
      await raw.until(/^\+ \r\n/m);
      raw.write(`${xoauth2('alice', TOKEN)}\r\n`);
      assert.equal(lastLine(await raw.tagged('o4')), 'o4 OK AUTHENTICATE completed.');
      assert.match(await raw.cmd('o5', 'CAPABILITY'), /MOVE ID UNSELECT CLIENTACCESSRULES/);
      assert.match(lastLine(await raw.cmd('o6', `AUTHENTICATE XOAUTH2 ${xoauth2('alice', TOKEN)}`)), /^o6 BAD Already authenticated/);
      raw.close();

      const { raw: r2 } = await Raw.open(srv);
      assert.equal(lastLine(await r2.cmd('p1', `AUTHENTICATE XOAUTH2 ${xoauth2('alice', TOKEN)}`)), 'p1 OK AUTHENTICATE completed.');
      assert.match(await r2.cmd('p2', 'LIST "" "*"'), /\* LIST \([^)]*\) "\/" "?Sent Items"?\r\n/);
      r2.close();

      // Malformed messages are BAD at once, with no "+".
      const { raw: r3 } = await Raw.open(srv);
      for (const [i, msg] of [
        `user=alice\x01auth=Bearer ${TOKEN}\x01`, // one final ^A missing
        `auth=Bearer ${TOKEN}\x01\x01`, // no user
        `user=alice\x01auth=Basic ${TOKEN}\x01\x01`, // not a bearer token
        `user=alice\x01auth=Bearer tok en\x01\x01`,
      ].entries()) {
        const out = await r3.cmd(`m${i}`, `AUTHENTICATE XOAUTH2 ${Buffer.from(msg).toString('base64')}`);
        assert.doesNotMatch(out, /^\+/m);
        assert.match(lastLine(out), new RegExp(`^m${i} BAD `));
      }
      assert.match(lastLine(await r3.cmd('m9', 'AUTHENTICATE XOAUTH2 not*base64')), /^m9 BAD/);
      assert.match(lastLine(await r3.cmd('m10', 'AUTHENTICATE OAUTHBEARER =')), /^m10 NO Unsupported authentication mechanism/, 'not advertised by this preset');
      r3.close();

      assert.deepEqual(
        srv.log.filter((l) => / AUTHENTICATE |<XOAUTH2/.test(l)).slice(0, 9),
        [
          'o1 AUTHENTICATE XOAUTH2 ***',
          'o1 <XOAUTH2 "alice" Bearer ***: rejected>',
          'o2 AUTHENTICATE XOAUTH2 ***',
          'o2 <XOAUTH2 "nobody" Bearer ***: rejected>',
          'o3 AUTHENTICATE XOAUTH2',
          'o3 <XOAUTH2 "alice" Bearer ***: rejected>',
          'o4 AUTHENTICATE XOAUTH2',
          'o4 <XOAUTH2 "alice" Bearer ***: accepted>',
          'o6 AUTHENTICATE XOAUTH2 ***',
        ],
      );
      noToken(srv, TOKEN, STALE);
    } finally {
      await srv.stop();
    }
  });

  test('raw OAUTHBEARER (RFC 7628): with SASL-IR and after "+", with and without a=; an invalid token gets "+ <JSON>", NO after AQ==', async () => {
    const srv = await startScriptedImap({ personality: google, users: users() });
    try {
      const { raw } = await Raw.open(srv);
      raw.write(`b1 AUTHENTICATE OAUTHBEARER ${oauthbearer('alice', STALE)}\r\n`);
      assert.deepEqual(challenge(await raw.until(/^\+ [^\r\n]*\r\n/m)), { status: 'invalid_token', scope: 'https://mail.google.com/' });
      raw.write('AQ==\r\n');
      assert.equal(lastLine(await raw.tagged('b1')), 'b1 NO [AUTHENTICATIONFAILED] Invalid credentials (Failure)');
      // Bob's token does not log in alice.
      raw.write(`b2 AUTHENTICATE OAUTHBEARER ${oauthbearer('alice', OTHER)}\r\n`);
      await raw.until(/^\+ [^\r\n]*\r\n/m);
      raw.write('\r\n');
      assert.equal(lastLine(await raw.tagged('b2')), 'b2 BAD Invalid OAUTHBEARER error acknowledgement', 'OAUTHBEARER wants %x01');
      raw.write('b3 AUTHENTICATE OAUTHBEARER\r\n');
      assert.equal(await raw.until(/^\+ [^\r\n]*\r\n/m), '+ \r\n');
      raw.write(`${oauthbearer('alice', TOKEN, 993)}\r\n`);
      assert.equal(lastLine(await raw.tagged('b3')), 'b3 OK alice@gmail.example authenticated (Success)');
      assert.match(await raw.cmd('b4', 'CAPABILITY'), /UIDPLUS ENABLE MOVE/);
      raw.close();

      // Without a=, the token says whose it is.
      const { raw: r2 } = await Raw.open(srv);
      r2.write('c1 AUTHENTICATE OAUTHBEARER\r\n');
      await r2.until(/^\+ \r\n/m);
      r2.write(`${oauthbearer(null, OTHER)}\r\n`);
      assert.match(lastLine(await r2.tagged('c1')), /^c1 OK /);
      assert.match(await r2.cmd('c2', 'LIST "" "*"'), /^\* LIST \([^)]*\) "\/" "INBOX"\r\nc2 OK/, "bob's single folder");
      r2.close();

      // XOAUTH2 is advertised here too.
      const { raw: r3 } = await Raw.open(srv);
      assert.match(lastLine(await r3.cmd('d1', `AUTHENTICATE XOAUTH2 ${xoauth2('alice', TOKEN)}`)), /^d1 OK /);
      r3.close();

      const { raw: r4 } = await Raw.open(srv);
      r4.write(`e1 AUTHENTICATE OAUTHBEARER ${oauthbearer(null, STALE)}\r\n`);
      await r4.until(/^\+ [^\r\n]*\r\n/m);
      r4.write('*\r\n');
      assert.equal(lastLine(await r4.tagged('e1')), 'e1 BAD AUTHENTICATE cancelled');
      for (const [i, msg] of [
        `p=tls-unique,a=alice,\x01auth=Bearer ${TOKEN}\x01\x01`, // channel binding
        `n,alice,\x01auth=Bearer ${TOKEN}\x01\x01`, // authzid without a=
        `n,a=alice\x01auth=Bearer ${TOKEN}\x01\x01`, // GS2 header not closed by ","
        `n,a=alice,\x01host=x\x01\x01`, // no auth
        `n,a=alice,auth=Bearer ${TOKEN}\x01\x01`, // no ^A after the header
        `n,a=al=ice,\x01auth=Bearer ${TOKEN}\x01\x01`, // "=" not escaped
      ].entries()) {
        const out = await r4.cmd(`f${i}`, `AUTHENTICATE OAUTHBEARER ${Buffer.from(msg).toString('base64')}`);
        assert.doesNotMatch(out, /^\+/m);
        assert.match(lastLine(out), new RegExp(`^f${i} BAD `), msg);
      }
      r4.close();
      assert.ok(srv.log.includes('c1 <OAUTHBEARER "bob" Bearer ***: accepted>'), srv.log.join('\n'));
      assert.ok(srv.log.includes('e1 <OAUTHBEARER (no user) Bearer ***: rejected>'), srv.log.join('\n'));
      assert.ok(srv.log.includes('b3 <OAUTHBEARER "alice" Bearer ***: accepted>'), srv.log.join('\n'));
      noToken(srv, TOKEN, STALE, OTHER);
      for (const l of srv.log) assert.ok(!l.includes(oauthbearer(null, OTHER)) && !l.includes(oauthbearer('alice', TOKEN, 993)), l);
    } finally {
      await srv.stop();
    }
  });

  test('AUTH= gates the mechanisms; imapflow sends the initial response even without SASL-IR (and gets BAD)', async () => {
    const plain = await startScriptedImap({ personality: exchange, users: users() });
    const noIr = await startScriptedImap({ personality: withMechs(courier, 'AUTH=XOAUTH2'), users: users() });
    try {
      const { raw } = await Raw.open(plain);
      assert.equal(lastLine(await raw.cmd('g1', `AUTHENTICATE XOAUTH2 ${xoauth2('alice', TOKEN)}`)), 'g1 NO Unsupported authentication mechanism');
      assert.equal(lastLine(await raw.cmd('g2', `AUTHENTICATE OAUTHBEARER ${oauthbearer('alice', TOKEN)}`)), 'g2 NO Unsupported authentication mechanism');
      raw.close();
      // Neither advertised: imapflow does not send the token at all.
      const before = plain.log.length;
      const none = await tokenLogin(plain, TOKEN);
      assert.match((none as Error | null)?.message ?? '', /Unsupported authentication mechanism/);
      assert.ok(!plain.log.slice(before).some((l) => / AUTHENTICATE /.test(l)), plain.log.join('\n'));

      const { raw: r2, greeting } = await Raw.open(noIr);
      assert.match(greeting, /AUTH=PLAIN AUTH=XOAUTH2\]/);
      r2.write('h1 AUTHENTICATE XOAUTH2\r\n');
      await r2.until(/^\+ \r\n/m);
      r2.write(`${xoauth2('alice', TOKEN)}\r\n`);
      assert.equal(lastLine(await r2.tagged('h1')), 'h1 OK LOGIN Ok.');
      r2.close();
      const err = await tokenLogin(noIr, TOKEN);
      assert.equal(err?.authenticationFailed, true);
      assert.match(err?.response ?? '', /BAD SASL-IR is not supported$/);
      noToken(noIr, TOKEN);
    } finally {
      await Promise.all([plain.stop(), noIr.stop()]);
    }
  });
});

// ---------------------------------------------------------------------------------------------
// Protocol details and robustness over a raw socket
// ---------------------------------------------------------------------------------------------

describe('scripted IMAP server: protocol details (raw socket)', () => {
  const msgs = (): ScriptedMessage[] => [
    { raw: Buffer.from('Subject: a\r\nFrom: x@y\r\n\r\nbody a\r\n'), flags: [], internalDate: new Date('2024-03-01T10:00:00Z') },
    { raw: Buffer.from('Subject: b\r\n\r\nbody b\r\n'), flags: ['\\Seen', '\\Deleted'], internalDate: new Date('2024-03-02T10:00:00Z'), uid: 5 },
    { raw: Buffer.from('Subject: c\r\n\r\nbody c\r\n'), flags: ['\\Seen', '$Work'], internalDate: new Date('2024-03-03T10:00:00Z') },
  ];
  const tree = (): ScriptedFolder[] => [
    folder('INBOX', { messages: msgs(), subscribed: true }),
    folder('Quote "this"', { subscribed: true }),
    folder('A/B/C'),
    folder('Sent Items', { attributes: ['\\Sent'], subscribed: true }),
  ];
  const users = () => ({ alice: { password: PASSWORD, folders: tree() } });
  const login = `LOGIN alice "${PASSWORD.replace(/["\\]/g, '\\$&')}"`;

  test('greeting, CAPABILITY before and after login, ID, NAMESPACE, LOGOUT', async () => {
    const srv = await startScriptedImap({ personality: exchange, users: users() });
    try {
      const { raw, greeting } = await Raw.open(srv);
      assert.equal(greeting, '* OK The Microsoft Exchange IMAP4 service is ready.\r\n');
      assert.match(await raw.cmd('a1', 'CAPABILITY'), /^\* CAPABILITY IMAP4 IMAP4rev1 AUTH=PLAIN SASL-IR UIDPLUS ID UNSELECT CHILDREN IDLE NAMESPACE LITERAL\+\r\na1 OK/);
      assert.match(await raw.cmd('a2', 'ID NIL'), /^\* ID \("name" "Microsoft\.Exchange\.Imap4\.Imap4Server" "version" "15\.20"\)\r\na2 OK/);
      assert.match(await raw.cmd('a3', 'NAMESPACE'), /^a3 BAD/, 'NAMESPACE needs authentication');
      assert.match(lastLine(await raw.cmd('a4', login)), /^a4 OK LOGIN completed\.$/);
      assert.match(await raw.cmd('a5', 'CAPABILITY'), /MOVE ID UNSELECT CLIENTACCESSRULES/);
      assert.match(await raw.cmd('a6', 'NAMESPACE'), /^\* NAMESPACE \(\("" "\/"\)\) NIL NIL\r\n/);
      assert.match(await raw.cmd('a7', 'LOGOUT'), /^\* BYE Microsoft Exchange Server IMAP4 server signing off\.\r\na7 OK/);
      await raw.closed;
    } finally {
      await srv.stop();
    }
  });

  test('LOGIN with synchronizing literals ("+" continuations) and with LITERAL+', async () => {
    const sync = await startScriptedImap({ personality: literalNames, users: users() });
    const plus = await startScriptedImap({ personality: exchange, users: users() });
    try {
      const pw = Buffer.from(PASSWORD);
      const { raw } = await Raw.open(sync);
      raw.write('s1 LOGIN {5}\r\n');
      assert.match(await raw.until(/^\+ [^\r\n]*\r\n/m), /^\+ /);
      raw.write(`alice {${pw.length}}\r\n`);
      await raw.until(/^\+ [^\r\n]*\r\n/m);
      raw.write(Buffer.concat([pw, Buffer.from('\r\n')]));
      assert.match(lastLine(await raw.tagged('s1')), /^s1 OK/);
      assert.ok(sync.log.includes('s1 LOGIN "alice" ***'), sync.log.join('\n'));
      // LITERAL+ is not advertised here: a non-synchronizing literal is refused, and the connection goes on.
      raw.write('s2 STATUS {5+}\r\nINBOX (MESSAGES)\r\n');
      assert.match(lastLine(await raw.tagged('s2')), /^s2 BAD Non-synchronizing literal not supported/);
      assert.match(lastLine(await raw.cmd('s3', 'NOOP')), /^s3 OK/);
      raw.close();

      const p2 = await Raw.open(plus);
      p2.raw.write(Buffer.concat([Buffer.from(`p1 LOGIN {5+}\r\nalice {${pw.length}+}\r\n`), pw, Buffer.from('\r\n')]));
      const out = await p2.raw.tagged('p1');
      assert.doesNotMatch(out, /^\+/m, 'no continuation for LITERAL+');
      assert.match(lastLine(out), /^p1 OK/);
      p2.raw.close();
    } finally {
      await Promise.all([sync.stop(), plus.stop()]);
    }
  });

  test('AUTHENTICATE PLAIN with SASL-IR, with a continuation, cancelled, refused without SASL-IR; SASL LOGIN', async () => {
    const srv = await startScriptedImap({ personality: exchange, users: users() });
    const cour = await startScriptedImap({ personality: courier, users: users() });
    try {
      const b64 = Buffer.from(`\0alice\0${PASSWORD}`).toString('base64');
      const { raw } = await Raw.open(srv);
      assert.match(lastLine(await raw.cmd('x1', `AUTHENTICATE PLAIN ${Buffer.from('\0alice\0wrong').toString('base64')}`)), /^x1 NO \[AUTHENTICATIONFAILED\]/);
      raw.write('x2 AUTHENTICATE PLAIN\r\n');
      await raw.until(/^\+ \r\n/m);
      raw.write('*\r\n');
      assert.match(lastLine(await raw.tagged('x2')), /^x2 BAD AUTHENTICATE cancelled/);
      assert.match(lastLine(await raw.cmd('x3', `AUTHENTICATE PLAIN ${b64}`)), /^x3 OK AUTHENTICATE completed\./);
      assert.ok(!srv.log.some((l) => l.includes(b64)), 'the SASL response is redacted');
      assert.ok(srv.log.includes('x3 AUTHENTICATE PLAIN ***'));
      raw.close();
      const c2 = await Raw.open(cour);
      assert.match(lastLine(await c2.raw.cmd('y1', `AUTHENTICATE PLAIN ${b64}`)), /^y1 BAD/, 'no SASL-IR on Courier');
      c2.raw.write('y2 AUTHENTICATE PLAIN\r\n');
      await c2.raw.until(/^\+ \r\n/m);
      c2.raw.write(`${b64}\r\n`);
      assert.match(lastLine(await c2.raw.tagged('y2')), /^y2 OK LOGIN Ok\./);
      c2.raw.close();
      // SASL LOGIN (Cyrus advertises AUTH=LOGIN): two base64 prompts.
      const cy = await startScriptedImap({ personality: cyrus, users: users() });
      try {
        const c3 = await Raw.open(cy);
        c3.raw.write('z1 AUTHENTICATE LOGIN\r\n');
        assert.match(await c3.raw.until(/^\+ [^\r\n]*\r\n/m), new RegExp(`^\\+ ${Buffer.from('Username:').toString('base64')}`));
        c3.raw.write(`${Buffer.from('alice').toString('base64')}\r\n`);
        assert.match(await c3.raw.until(/^\+ [^\r\n]*\r\n/m), new RegExp(`^\\+ ${Buffer.from('Password:').toString('base64')}`));
        c3.raw.write(`${Buffer.from(PASSWORD).toString('base64')}\r\n`);
        assert.match(lastLine(await c3.raw.tagged('z1')), /^z1 OK User logged in/);
        c3.raw.close();
      } finally {
        await cy.stop();
      }
    } finally {
      await Promise.all([srv.stop(), cour.stop()]);
    }
  });

  test('LIST styles on the wire: literal names, quoted with escapes, atoms, NIL delimiter, modified UTF-7', async () => {
    const fs = [folder('INBOX'), folder('Quote "this"'), folder('Sent Items'), folder('Ü/x'), folder('[Tag]Done'), folder('NIL')];
    const one = async (p: Personality, cmds: Array<[string, RegExp]>) => {
      const srv = await startScriptedImap({ personality: p, users: { alice: { password: PASSWORD, folders: fs } } });
      try {
        const { raw } = await Raw.open(srv);
        await raw.cmd('l', login);
        for (const [cmd, re] of cmds) assert.match(await raw.cmd('t', cmd), re, `${p.name}: ${cmd}`);
        raw.close();
      } finally {
        await srv.stop();
      }
    };
    await one(literalNames, [
      ['LIST "" "*"', /^\* LIST \(\\HasNoChildren\) "\/" \{12\}\r\nQuote "this"\r\n/m],
      ['LIST "" "*"', /^\* LIST \(\\HasNoChildren\) "\/" \{7\}\r\n&ANw-\/x\r\n/m],
      ['LIST "" "%"', /^\* LIST \(\\Noselect \\HasChildren\) "\/" \{5\}\r\n&ANw-\r\n/m],
      ['STATUS "Quote \\"this\\"" (MESSAGES UIDNEXT)', /^\* STATUS "Quote \\"this\\"" \(MESSAGES 0 UIDNEXT 1\)\r\nt OK/],
      ['ID ("name" "raw")', /^\* ID \("name" "Literal \\"names\\" \\\\ server" "version" "1\.0"\)/],
    ]);
    await one(exchange, [
      ['LIST "" "*"', /^\* LIST \(\\HasNoChildren \\Marked\) "\/" INBOX\r\n\* LIST \(\\HasNoChildren\) "\/" "Quote \\"this\\""\r\n\* LIST \(\\HasNoChildren\) "\/" "Sent Items"\r\n/],
      ['LIST "" "*"', /^\* LIST \(\\HasNoChildren\) "\/" \[Tag\]Done\r\n\* LIST \(\\HasNoChildren\) "\/" "NIL"\r\n/m],
      ['LIST "" "&ANw-/*"', /^\* LIST \(\\HasNoChildren\) "\/" &ANw-\/x\r\nt OK/],
    ]);
    await one(flat, [['LIST "" "*"', /^\* LIST \(\\Noinferiors\) NIL "Sent Items"\r\n/m]]);
    await one(gmail, [['LIST "" "%"', /^\* LIST \(\\HasNoChildren\) "\/" "INBOX"\r\n/]]);
  });

  test('LIST patterns: "%" returns missing levels as \\Noselect, "*" only real folders, LIST "" "" the delimiter', async () => {
    const srv = await startScriptedImap({ personality: exchange, users: users() });
    try {
      const { raw } = await Raw.open(srv);
      await raw.cmd('l', login);
      const top = await raw.cmd('a', 'LIST "" "%"');
      assert.match(top, /^\* LIST \(\\Noselect \\HasChildren\) "\/" A\r\n/m);
      assert.doesNotMatch(top, /A\/B/);
      assert.match(await raw.cmd('b', 'LIST "A/" "%"'), /^\* LIST \(\\Noselect \\HasChildren\) "\/" A\/B\r\nb OK/);
      const all = await raw.cmd('c', 'LIST "" "*"');
      assert.match(all, /"\/" A\/B\/C\r\n/);
      assert.doesNotMatch(all, /"\/" A\r\n/);
      assert.match(await raw.cmd('d', 'LIST "" ""'), /^\* LIST \(\\Noselect\) "\/" ""\r\nd OK/);
      assert.match(await raw.cmd('e', 'LIST "" inbox'), /^\* LIST \(\\HasNoChildren \\Marked\) "\/" INBOX\r\ne OK/);
      assert.match(await raw.cmd('f', 'LSUB "" "*"'), /^\* LSUB \(\\HasNoChildren \\Marked\) "\/" INBOX\r\n\* LSUB \(\\HasNoChildren\) "\/" "Quote \\"this\\""\r\n\* LSUB \(\\Sent \\HasNoChildren\) "\/" "Sent Items"\r\nf OK/);
      assert.match(lastLine(await raw.cmd('g', 'LIST "" "*" RETURN (SUBSCRIBED)')), /^g BAD/, 'no LIST-EXTENDED on Exchange');
      raw.close();
    } finally {
      await srv.stop();
    }
  });

  test('LIST-EXTENDED (Cyrus): selection and return options, several patterns, special-use only on request', async () => {
    const srv = await startScriptedImap({
      personality: cyrus,
      users: { alice: { password: PASSWORD, folders: [folder('INBOX', { subscribed: true }), folder('INBOX.Sent', { attributes: ['\\Sent'], subscribed: true }), folder('INBOX.Junk', { attributes: ['\\Junk'] })] } },
    });
    try {
      const { raw } = await Raw.open(srv);
      await raw.cmd('l', `AUTHENTICATE PLAIN ${Buffer.from(`alice\0alice\0${PASSWORD}`).toString('base64')}`);
      assert.match(await raw.cmd('a', 'LIST "" "*"'), /^\* LIST \(\\HasChildren\) "\." INBOX\r\n\* LIST \(\\HasNoChildren\) "\." INBOX\.Sent\r\n/);
      assert.match(await raw.cmd('b', 'LIST "" "*" RETURN (SPECIAL-USE SUBSCRIBED)'), /^\* LIST \(\\sent \\HasNoChildren \\Subscribed\) "\." INBOX\.Sent\r\n\* LIST \(\\junk \\HasNoChildren\) "\." INBOX\.Junk\r\n/m);
      assert.match(await raw.cmd('c', 'LIST (SUBSCRIBED) "" "*"'), /^\* LIST \(\\HasChildren\) "\." INBOX\r\n\* LIST \(\\HasNoChildren\) "\." INBOX\.Sent\r\nc OK/);
      assert.match(await raw.cmd('d', 'LIST (SPECIAL-USE) "" "*"'), /^\* LIST \(\\sent \\HasNoChildren\) "\." INBOX\.Sent\r\n\* LIST \(\\junk \\HasNoChildren\) "\." INBOX\.Junk\r\nd OK/);
      assert.match(await raw.cmd('e', 'LIST "" ("INBOX.Junk" "INBOX")'), /^\* LIST \(\\HasNoChildren\) "\." INBOX\.Junk\r\n\* LIST \(\\HasChildren\) "\." INBOX\r\ne OK/);
      assert.match(lastLine(await raw.cmd('f', 'LIST "" "*" RETURN (STATUS (MESSAGES))')), /^f BAD Unsupported return option STATUS/);
      assert.match(lastLine(await raw.cmd('g', 'LIST (RECURSIVEMATCH) "" "*"')), /^g BAD/);
      assert.match(await raw.cmd('h', 'ENABLE CONDSTORE UTF8=ACCEPT QRESYNC'), /^\* ENABLED CONDSTORE\r\nh OK/);
      raw.close();
    } finally {
      await srv.stop();
    }
  });

  test('XLIST (Gmail): \\Inbox and special-use attributes', async () => {
    const srv = await startScriptedImap({ personality: gmail, users: { alice: { password: PASSWORD, folders: [folder('INBOX'), folder('[Gmail]', { attributes: ['\\Noselect'] }), folder('[Gmail]/Sent Mail', { attributes: ['\\Sent'] })] } } });
    try {
      const { raw } = await Raw.open(srv);
      await raw.cmd('l', login);
      assert.match(
        await raw.cmd('x', 'XLIST "" "*"'),
        /^\* XLIST \(\\HasNoChildren \\Inbox\) "\/" "INBOX"\r\n\* XLIST \(\\Noselect \\HasChildren\) "\/" "\[Gmail\]"\r\n\* XLIST \(\\Sent \\HasNoChildren\) "\/" "\[Gmail\]\/Sent Mail"\r\nx OK/,
      );
      raw.close();
    } finally {
      await srv.stop();
    }
  });

  test('SELECT/EXAMINE, STATUS, FETCH items and partials, SEARCH keys, UID ranges past the end', async () => {
    const srv = await startScriptedImap({ personality: exchange, users: users() });
    try {
      const { raw } = await Raw.open(srv);
      await raw.cmd('l', login);
      assert.match(await raw.cmd('s', 'STATUS INBOX (MESSAGES RECENT UIDNEXT UIDVALIDITY UNSEEN)'), /^\* STATUS INBOX \(MESSAGES 3 RECENT 0 UIDNEXT 7 UIDVALIDITY \d+ UNSEEN 1\)\r\n/);
      assert.match(lastLine(await raw.cmd('s2', 'STATUS A (MESSAGES)')), /^s2 NO \[NONEXISTENT\]/);
      const ex = await raw.cmd('e', 'EXAMINE INBOX');
      assert.match(ex, /^\* FLAGS \(\\Answered \\Flagged \\Deleted \\Seen \\Draft \$Work\)\r\n\* OK \[PERMANENTFLAGS \(\)\][^\r]*\r\n\* 3 EXISTS\r\n\* 0 RECENT\r\n\* OK \[UNSEEN 1\][^\r]*\r\n\* OK \[UIDVALIDITY \d+\][^\r]*\r\n\* OK \[UIDNEXT 7\][^\r]*\r\ne OK \[READ-ONLY\]/);
      assert.match(
        await raw.cmd('f', 'FETCH 1 (UID FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[HEADER.FIELDS (SUBJECT)] BODY.PEEK[]<2.5> BODY.PEEK[TEXT])'),
        /^\* 1 FETCH \(UID 1 FLAGS \(\) INTERNALDATE "01-Mar-2024 10:00:00 \+0000" RFC822\.SIZE 33 BODY\[HEADER\.FIELDS \(SUBJECT\)\] \{14\}\r\nSubject: a\r\n\r\n BODY\[\]<2> \{5\}\r\nbject BODY\[TEXT\] \{8\}\r\nbody a\r\n\)\r\nf OK/,
      );
      assert.match(await raw.cmd('g', 'UID FETCH 6:* FLAGS'), /^\* 3 FETCH \(UID 6 FLAGS \(\\Seen \$Work\)\)\r\ng OK/, 'n:* includes the last message');
      assert.match(await raw.cmd('h', 'UID FETCH 2:4 FLAGS'), /^h OK/, 'UIDs that do not exist are no error');
      assert.match(lastLine(await raw.cmd('i', 'FETCH 4 FLAGS')), /^i BAD/, 'sequence numbers must exist');
      assert.match(lastLine(await raw.cmd('j', 'FETCH 1 ENVELOPE')), /^j BAD ENVELOPE is not implemented/);
      assert.match(await raw.cmd('k', 'UID SEARCH ALL'), /^\* SEARCH 1 5 6\r\n/);
      assert.match(await raw.cmd('k2', 'SEARCH UNSEEN'), /^\* SEARCH 1\r\n/);
      assert.match(await raw.cmd('k3', 'UID SEARCH OR DELETED KEYWORD $Work'), /^\* SEARCH 5 6\r\n/);
      assert.match(await raw.cmd('k4', 'UID SEARCH NOT (SEEN) SINCE 1-Mar-2024'), /^\* SEARCH 1\r\n/);
      assert.match(await raw.cmd('k5', 'UID SEARCH UID 2:*'), /^\* SEARCH 5 6\r\n/);
      assert.match(lastLine(await raw.cmd('k6', 'SEARCH HEADER Subject a')), /^k6 BAD/);
      assert.match(lastLine(await raw.cmd('u', 'UNSELECT')), /^u OK/);
      assert.match(lastLine(await raw.cmd('u2', 'FETCH 1 FLAGS')), /^u2 BAD No mailbox selected/);
      assert.match(lastLine(await raw.cmd('c', 'DELETE "Sent Items"')), /^c NO \[CANNOT\]/, 'nothing is ever removed');
      raw.close();
    } finally {
      await srv.stop();
    }
  });

  test('read-write: BODY[] sets \\Seen (and says so), CLOSE expunges \\Deleted, for every later connection', async () => {
    const srv = await startScriptedImap({ personality: exchange, users: users() });
    try {
      const { raw } = await Raw.open(srv);
      await raw.cmd('l', login);
      assert.match(await raw.cmd('s', 'SELECT INBOX'), /PERMANENTFLAGS \(\\Answered \\Flagged \\Deleted \\Seen \\Draft \$Work \\\*\)[\s\S]*s OK \[READ-WRITE\]/);
      assert.match(await raw.cmd('f', 'FETCH 1 BODY[]'), /^\* 1 FETCH \(BODY\[\] \{33\}\r\n[\s\S]{33} FLAGS \(\\Seen\)\)\r\nf OK/);
      assert.match(await raw.cmd('c', 'CLOSE'), /^c OK/);
      assert.match(await raw.cmd('s2', 'STATUS INBOX (MESSAGES UNSEEN)'), /MESSAGES 2 UNSEEN 0/);
      raw.close();
    } finally {
      await srv.stop();
    }
  });

  test('bad input gets BAD and the connection goes on: garbage, unknown commands, long lines, huge literals, bad sets, deep lists', async () => {
    const srv = await startScriptedImap({ personality: exchange, users: users(), limits: { maxLineBytes: 1024, maxLiteralBytes: 4096 } });
    try {
      const { raw } = await Raw.open(srv);
      raw.write(Buffer.from([0x00, 0xff, 0xfe, 0x0d, 0x0a]));
      assert.match(await raw.until(/^\* BAD[^\r\n]*\r\n/m), /\* BAD Invalid tag/);
      raw.write('\r\n');
      assert.match(await raw.until(/^\* BAD[^\r\n]*\r\n/m), /\* BAD/);
      assert.match(lastLine(await raw.cmd('a1', 'FROBNICATE now')), /^a1 BAD Unknown command/);
      assert.match(lastLine(await raw.cmd('a2', 'FETCH 1 FLAGS')), /^a2 BAD/, 'not authenticated');
      assert.match(lastLine(await raw.cmd('a3', 'LOGIN "unterminated')), /^a3 BAD/);
      raw.write('+bad LOGIN alice s3cret\r\n');
      assert.match(await raw.until(/^\* BAD[^\r\n]*\r\n/m), /Invalid tag/);
      assert.ok(!srv.log.some((l) => l.includes('s3cret') || l.includes('unterminated')), srv.log.join('\n'));
      raw.write(`a4 NOOP ${'x'.repeat(5000)}\r\n`);
      assert.match(lastLine(await raw.tagged('a4')), /^a4 BAD \[TOOBIG\]/);
      raw.write('a5 LOGIN {99999}\r\n');
      assert.match(lastLine(await raw.tagged('a5')), /^a5 BAD \[TOOBIG\]/);
      assert.match(lastLine(await raw.cmd('a6', login)), /^a6 OK/);
      await raw.cmd('a7', 'EXAMINE INBOX');
      for (const bad of ['FETCH 1:x FLAGS', 'FETCH 0 FLAGS', 'FETCH 1 (FLAGS', 'FETCH 1 (FLAGS))', 'FETCH 1 BODY[HEADER.FIELDS ()]', 'FETCH 1 BODY.PEEK[1.2.MIME]', 'UID FETCH 99999999999 FLAGS', `SEARCH ${'('.repeat(40)}ALL${')'.repeat(40)}`, 'SELECT', 'LIST "" "*" EXTRA', 'UID FROB 1']) {
        const out = lastLine(await raw.cmd('b', bad));
        assert.match(out, /^b BAD /, bad);
      }
      assert.match(await raw.cmd('c', 'NOOP'), /^c OK/, 'still usable');
      raw.close();
    } finally {
      await srv.stop();
    }
  });

  test('one connection breaking does not affect another; stop() closes every connection', async () => {
    const srv = await startScriptedImap({ personality: exchange, users: users() });
    const good = await connect(srv);
    const { raw: broken } = await Raw.open(srv);
    const { raw: idle } = await Raw.open(srv);
    try {
      // Dies in the middle of a literal, and another sends rubbish.
      broken.write('z1 LOGIN {50}\r\n');
      await broken.until(/^\+ /m);
      broken.write('half');
      broken.socket.destroy();
      idle.write('\u00ff\u00fe garbage ((( \r\n');
      await idle.until(/BAD/);
      assert.equal((await good.list()).length, 4);
      assert.equal(srv.connections(), 2);
    } finally {
      await srv.stop();
    }
    await idle.closed;
    assert.equal(srv.connections(), 0);
    assert.equal(good.usable, false);
    good.close();
    await assert.rejects(Raw.open(srv), 'the listener is closed');
  });

  test('modified UTF-7 codec round-trips and refuses what is not modified UTF-7', () => {
    for (const s of ['Entwürfe', '&', 'A & B', '日本語', '~peter/mail/台北/日本語', 'emoji 😀', '']) assert.equal(decodeMutf7(encodeMutf7(s)), s);
    assert.equal(encodeMutf7('~peter/mail/台北/日本語'), '~peter/mail/&U,BTFw-/&ZeVnLIqe-');
    assert.equal(encodeMutf7('A & B'), 'A &- B');
    for (const bad of ['&', '&Jjo', '&AGE-', 'caf\u00e9', '&U,B-']) assert.equal(decodeMutf7(bad), null, bad);
  });

  test('every preset is covered above', () => {
    assert.deepEqual(Object.keys(PERSONALITIES).sort(), cases().map((c) => c.personality.name).sort());
  });
});
