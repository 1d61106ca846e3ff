/**
 * Folder trees as other vendors present them (scripted IMAP server: Courier, Cyrus, Exchange,
 * Gmail, a flat NIL-delimiter server, a server that sends every name as a literal), migrated by
 * the real CLI into a real Dovecot, read back independently and compared with the tree an
 * administrator expects: special folders mapped, Gmail views left out, names intact or safely
 * renamed, deep and wide trees complete, and a LIST line nobody can parse costing one folder only.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startDovecot, type DovecotServer } from '../helpers/dovecot.js';
import { expectedFromFixture, readMailbox, type FixtureFolder } from '../helpers/fixture.js';
import { runCli } from '../helpers/cli.js';
import { startScriptedImap, type Personality, type ScriptedFolder, type ScriptedMessage, type UserFaults } from '../helpers/scripted-imap/server.js';
import { courier, cyrus, exchange, flat, gmail, literalNames } from '../helpers/scripted-imap/personalities.js';

interface Report {
  status: string;
  totals: { copied: number; skipped: number; messages: number };
  folders: { source: string; destination: string; renamed: boolean; mappedBy?: string; error?: { code: string; serverResponse?: string } }[];
  items: { uid: number; code: string; reason: string }[];
  excluded: { source: string; reason: string }[];
}

/** What went wrong, for assertion messages. */
const why = (run: { stderr: string }, report: Report | undefined) =>
  JSON.stringify({ error: (report as { error?: unknown } | undefined)?.error, folders: report?.folders?.filter((f) => f.error), items: report?.items }) + run.stderr;

let serial = 0;
function msg(tag: string, flags: string[] = []): ScriptedMessage {
  serial++;
  return {
    raw: Buffer.from(`From: vendor@example.org\r\nTo: alice@example.org\r\nSubject: ${tag} #${serial}\r\nMessage-ID: <v${serial}.${tag.replace(/\W/g, '')}@example.org>\r\nDate: Tue, 2 Jan 2024 10:00:00 +0000\r\n\r\nbody of ${tag}\r\n`),
    flags,
    internalDate: new Date(Date.UTC(2021, serial % 12, 1 + (serial % 27), 8, serial % 60, 0)),
  };
}
const folder = (name: string, messages: ScriptedMessage[] = [], attributes?: string[], subscribed = true): ScriptedFolder => ({ name, messages, subscribed, ...(attributes ? { attributes } : {}) });
/** The destination as an administrator expects it, in fixture form (paths as segments). */
const want = (path: string[], messages: ScriptedMessage[] = [], subscribed = true): FixtureFolder => ({ path, subscribed, messages });

describe('vendor folder trees into a real Dovecot', () => {
  let dest: DovecotServer;
  let users = 0;
  before(async () => {
    dest = await startDovecot();
  });
  after(async () => dest?.stop());

  /** Migrates `folders` from a scripted server with `personality` into a fresh Dovecot user. */
  async function migrateFrom(personality: Personality, folders: ScriptedFolder[], extraArgs: string[] = [], faults?: UserFaults) {
    const source = await startScriptedImap({ personality, users: { alice: { password: 'src-pw', folders } }, ...(faults ? { faults: { alice: faults } } : {}) });
    const user = `u${++users}`;
    await dest.addUser(user, 'dst-pw');
    try {
      const run = await runCli(['migrate', '--from', `imap://alice@127.0.0.1:${source.port}`, '--to', dest.url(user), '--to-tls-insecure', '--json', ...extraArgs], {
        MAILMOVER_FROM_PASSWORD: 'src-pw',
        MAILMOVER_TO_PASSWORD: 'dst-pw',
      });
      const report = JSON.parse(run.stdout || '{}') as Report;
      return { run, report, got: await readMailbox(dest, user, 'dst-pw'), log: source.log };
    } finally {
      await source.stop();
    }
  }

  test('Courier: "INBOX." prefix, mUTF-7 names, no SPECIAL-USE: localized special folders found by name', async () => {
    const m = { inbox: [msg('in'), msg('in', ['\\Seen'])], sent: [msg('sent', ['\\Seen'])], drafts: [msg('draft', ['\\Draft'])], proj: [msg('p2024', ['$Forwarded', 'Client-ACME'])], gruss: [msg('gruss')] };
    const { run, report, got } = await migrateFrom(courier, [
      folder('INBOX', m.inbox),
      folder('INBOX.Gesendete Objekte', m.sent),
      folder('INBOX.Entwürfe', m.drafts),
      folder('INBOX.Papierkorb'),
      folder('INBOX.Projects'),
      folder('INBOX.Projects.2024', m.proj),
      folder('INBOX.Grüße & Co', m.gruss, undefined, false),
    ]);
    assert.equal(run.code, 0, why(run, report));
    assert.deepEqual(got, expectedFromFixture([
      want(['INBOX'], m.inbox), want(['Sent'], m.sent), want(['Drafts'], m.drafts), want(['Trash']),
      want(['Projects']), want(['Projects', '2024'], m.proj), want(['Grüße & Co'], m.gruss, false),
    ]));
    assert.deepEqual(report.folders.filter((f) => f.mappedBy).map((f) => `${f.source}->${f.destination}`).sort(), ['INBOX.Entwürfe->Drafts', 'INBOX.Gesendete Objekte->Sent', 'INBOX.Papierkorb->Trash']);
  });

  test("other users' and shared namespaces: left out and named by default; --include-other-namespaces copies them below the namespace", async () => {
    const m = { inbox: [msg('ns-in')], news: [msg('ns-news')], team: [msg('ns-team')] };
    const tree = [folder('INBOX', m.inbox), folder('#shared.Team', m.team), folder('#shared.Team.News', m.news)];
    const plain = await migrateFrom(courier, tree);
    assert.equal(plain.run.code, 0, why(plain.run, plain.report));
    assert.deepEqual(plain.got, expectedFromFixture([want(['INBOX'], m.inbox)]));
    assert.deepEqual(plain.report.excluded.map((e) => e.source).sort(), ['#shared.', 'shared.']);
    const all = await migrateFrom(courier, tree, ['--include-other-namespaces']);
    assert.equal(all.run.code, 0, why(all.run, all.report));
    assert.deepEqual(all.got, expectedFromFixture([want(['INBOX'], m.inbox), want(['#shared', 'Team'], m.team), want(['#shared', 'Team', 'News'], m.news)]));
  });

  test('Cyrus: lower-case special-use attributes on LIST RETURN (SPECIAL-USE) map by attribute, not name', async () => {
    const sent = [msg('envoi', ['\\Seen'])];
    const { run, report, got } = await migrateFrom(cyrus, [folder('INBOX', [msg('x')]), folder('INBOX.Mes envois', sent, ['\\Sent']), folder('INBOX.Poubelle', [], ['\\Trash'])]);
    assert.equal(run.code, 0, why(run, report));
    assert.deepEqual(got.find((f) => f.path.join('/') === 'Sent')?.messages.length, 1);
    assert.ok(!got.some((f) => f.path[0] === 'Mes envois' || f.path[0] === 'Poubelle'), JSON.stringify(got.map((f) => f.path)));
  });

  test('Exchange: "/" tree, \\Sent on plain LIST without the SPECIAL-USE capability, INBOX children', async () => {
    const m = { sent: [msg('s1'), msg('s2', ['\\Seen', '\\Answered'])], del: [msg('d', ['\\Deleted', '\\Seen'])], junk: [msg('j')], sub: [msg('sub')], conv: [msg('c')] };
    const { run, report, got } = await migrateFrom(exchange, [
      folder('INBOX'),
      folder('INBOX/Sub folder', m.sub),
      folder('Sent Items', m.sent, ['\\Sent']),
      folder('Deleted Items', m.del, ['\\Trash']),
      folder('Junk Email', m.junk, ['\\Junk']),
      folder('Drafts', [], ['\\Drafts']),
      folder('Conversation History', m.conv),
    ]);
    assert.equal(run.code, 0, why(run, report));
    assert.deepEqual(got, expectedFromFixture([
      want(['INBOX']), want(['INBOX', 'Sub folder'], m.sub), want(['Sent'], m.sent), want(['Trash'], m.del), want(['Junk'], m.junk), want(['Drafts']), want(['Conversation History'], m.conv),
    ]));
  });

  test('Gmail: All Mail, Important and Starred left out and listed; [Gmail] folders mapped; labels kept', async () => {
    const m = { inbox: [msg('g-in')], sent: [msg('g-sent', ['\\Seen'])], spam: [msg('g-spam')], work: [msg('g-work', ['\\Flagged'])], clients: [msg('g-cl')] };
    const all = [...m.inbox, ...m.sent, ...m.work, ...m.clients];
    const { run, report, got } = await migrateFrom(gmail, [
      folder('INBOX', m.inbox),
      folder('[Gmail]', [], ['\\Noselect']),
      folder('[Gmail]/All Mail', all, ['\\All']),
      folder('[Gmail]/Important', m.inbox, ['\\Important']),
      folder('[Gmail]/Starred', m.work, ['\\Flagged']),
      folder('[Gmail]/Sent Mail', m.sent, ['\\Sent']),
      folder('[Gmail]/Spam', m.spam, ['\\Junk']),
      folder('[Gmail]/Trash', [], ['\\Trash']),
      folder('[Gmail]/Drafts', [], ['\\Drafts']),
      folder('Work', m.work),
      folder('Work/Clients', m.clients),
      // The folders as Gmail lists them (this fixture's messages carry no X-GM-LABELS; reading by
      // labels is test/integration/gmail-labels.test.ts).
    ], ['--gmail-labels', 'off']);
    assert.equal(run.code, 0, why(run, report));
    assert.deepEqual(got, expectedFromFixture([want(['INBOX'], m.inbox), want(['Sent'], m.sent), want(['Junk'], m.spam), want(['Trash']), want(['Drafts']), want(['Work'], m.work), want(['Work', 'Clients'], m.clients)]));
    assert.deepEqual(report.excluded.map((e) => `${e.source}:${e.reason}`).sort(), ['[Gmail]/All Mail:gmail-view', '[Gmail]/Important:gmail-view', '[Gmail]/Starred:gmail-view']);
    assert.equal(report.totals.messages, 5, 'each message counted once');
  });

  test('UTF8=ACCEPT (RFC 6855): names travel as UTF-8 once enabled, and arrive intact', async () => {
    const utf8Gmail: Personality = { ...gmail, name: 'gmail-utf8', capabilitiesAfterLogin: [...(gmail.capabilitiesAfterLogin ?? []), 'UTF8=ACCEPT'] };
    const m = { jp: [msg('jp')], emoji: [msg('emoji')] };
    const source = [folder('INBOX'), folder('日本語/東京', m.jp), folder('📁 Projekte', m.emoji), folder('日本語')];
    const { run, report, got, log } = await migrateFrom(utf8Gmail, source);
    assert.equal(run.code, 0, why(run, report));
    assert.ok(log.some((l) => /ENABLE .*UTF8=ACCEPT/i.test(l)), 'the client enabled UTF8=ACCEPT');
    assert.ok(log.some((l) => /EXAMINE "日本語\/東京"/.test(l)), `UTF-8 on the wire: ${log.filter((l) => /EXAMINE/.test(l)).join(' | ')}`);
    assert.deepEqual(got, expectedFromFixture([want(['INBOX']), want(['日本語']), want(['日本語', '東京'], m.jp), want(['📁 Projekte'], m.emoji)]));
  });

  test('flat server (NIL delimiter): names with both separators arrive as one level, renamed and reported', async () => {
    const m = { a: [msg('flat-a')], b: [msg('flat-b')] };
    const { run, report, got } = await migrateFrom(flat, [folder('INBOX'), folder('Reports 2024', m.a), folder('a.b/c', m.b)]);
    assert.equal(run.code, 0, why(run, report));
    assert.deepEqual(got, expectedFromFixture([want(['INBOX']), want(['Reports 2024'], m.a), want(['a.b_c'], m.b)]));
    assert.equal(report.folders.find((f) => f.source === 'a.b/c')?.renamed, true);
  });

  test('names as literals with quotes, backslashes, control characters and ".."; 500 folders 12 levels deep', async () => {
    const folders: ScriptedFolder[] = [folder('INBOX', [msg('lit-in')])];
    const expected: FixtureFolder[] = [want(['INBOX'], folders[0]!.messages)];
    const odd = [
      ['He said "hi"', 'He said "hi"'],
      ['Back\\slash', 'Back\\slash'],
      ['Hostile', 'Hostile'],
      ['Hostile/..', 'Hostile/_..'],
      ['Hostile/bell\u0007ring', 'Hostile/bell_ring'],
      [' leading and trailing ', ' leading and trailing '],
    ] as const;
    for (const [name, landed] of odd) {
      const messages = name === 'Hostile' ? [] : [msg(`odd${folders.length}`)];
      folders.push(folder(name, messages));
      expected.push(want(landed.split('/'), messages));
    }
    // A chain 12 levels deep, and siblings, to 500 folders; every 25th holds a message.
    let chain: string[] = [];
    for (let i = 0; folders.length < 500 + odd.length; i++) {
      const path = i < 12 ? (chain = [...chain, `Level ${i + 1}`]) : [`Wide ${Math.floor(i / 40)}`, `Leaf ${i}`];
      if (i >= 12 && i % 40 === 12) {
        folders.push(folder(path[0]!));
        expected.push(want([path[0]!]));
      }
      const messages = i % 25 === 0 ? [msg(`deep${i}`)] : [];
      folders.push(folder(path.join('/'), messages));
      expected.push(want([...path], messages));
    }
    const { run, report, got } = await migrateFrom(literalNames, folders, ['--connections', '4']);
    assert.equal(run.code, 0, why(run, report));
    assert.deepEqual(got, expectedFromFixture(expected));
    assert.equal(got.filter((f) => f.path.length === 12).length, 1, 'the 12-level chain arrived');
    assert.deepEqual(report.folders.filter((f) => f.renamed).map((f) => f.destination).sort(), ['Hostile/_..', 'Hostile/bell_ring']);
  });

  test('a FETCH answer nobody can parse costs that message, reported raw; the rest arrives; exit 3', async () => {
    const m = [msg('mf1'), msg('mf2'), msg('mf3'), msg('mf4')];
    const { run, report, got } = await migrateFrom(courier, [folder('INBOX', m)], [], { malformedFetch: { INBOX: [3] } });
    assert.equal(run.code, 3, why(run, report));
    assert.deepEqual(report.items.map((i) => [i.uid, i.code]), [[3, 'MM-RESPONSE-UNPARSED']]);
    assert.match(report.items[0]!.reason, /unterminated body/);
    assert.deepEqual(got.find((f) => f.path[0] === 'INBOX')!.messages.length, 3);
  });

  test('a LIST line nobody can parse costs that folder, reported raw; a message that will not come is reported with the server words', async () => {
    const keep = [msg('keep1'), msg('keep2'), msg('keep3')];
    const { run, report, got } = await migrateFrom(courier, [folder('INBOX', keep), folder('INBOX.Fine', [msg('fine')])], [], {
      // An unterminated quoted string: one line imapflow cannot parse (the connection stays usable).
      malformedList: ['* LIST (\\HasNoChildren) "." "Reports {broken'],
      fetchFailures: { INBOX: { 2: { times: 'always', response: 'NO [UNAVAILABLE] Message is being scanned' } } },
    });
    assert.equal(run.code, 1, run.stderr);
    const broken = report.folders.find((f) => f.error?.code === 'MM-LIST-UNPARSED');
    assert.ok(broken, JSON.stringify(report.folders));
    assert.match(broken.error!.serverResponse!, /^\* LIST/);
    assert.equal(report.items.length, 1);
    assert.equal(report.items[0]!.uid, 2);
    assert.match(report.items[0]!.reason, /\[UNAVAILABLE\] Message is being scanned/);
    assert.equal(got.find((f) => f.path[0] === 'INBOX')!.messages.length, 2);
    assert.equal(got.find((f) => f.path[0] === 'Fine')!.messages.length, 1);
  });
});
