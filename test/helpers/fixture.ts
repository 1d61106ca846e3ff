/**
 * A rich, deterministic fixture mailbox for migration tests, a seeder that stores it on a real IMAP
 * server, and an independent reader that captures what a server holds in a comparable form.
 *
 * The reader deliberately uses nothing from mailmover's own code (only imapflow, node:crypto), so a bug
 * in the engine's path mapping, flag handling or fetching cannot hide itself by being present on both
 * sides of a comparison.
 *
 * Typical use:
 * ```ts
 * const fixture = buildFixture();
 * await seedMailbox(src, 'alice', 'pw', fixture);
 * // ... run mailmover src -> dst ...
 * const got = await readMailbox(dst, 'bob', 'pw');
 * assert.deepEqual(got, expectedFromFixture(fixture, { namespace: dstNamespace }));
 * ```
 */
import { createHash } from 'node:crypto';
import { ImapFlow } from 'imapflow';

// ---------------------------------------------------------------------------------------------
// Public types
// ---------------------------------------------------------------------------------------------

/** One message as it is to be APPENDed. */
export interface FixtureMessage {
  /** Exact bytes (CRLF line ends, as IMAP requires). */
  raw: Buffer;
  /** System flags and keywords; never `\Recent` (a server sets that, it cannot be stored). */
  flags: string[];
  /** INTERNALDATE; whole seconds, because IMAP carries no more. */
  internalDate: Date;
}

/** One folder of the fixture. */
export interface FixtureFolder {
  /**
   * Path segments, independent of any server's separator or namespace prefix. The inbox is `['INBOX']`,
   * its children `['INBOX', 'Child']`. No segment contains '/' or '.', so the fixture fits both layouts.
   * Ancestors that are not themselves listed in the fixture are never created: the server shows them
   * as `\Noselect` placeholders (see {@link expectedFromFixture}).
   */
  path: string[];
  subscribed: boolean;
  messages: FixtureMessage[];
}

/** A message as read back from a server (see {@link readMailbox}). */
export interface ReadBackMessage {
  /** Hex SHA-256 of the full message source (BODY.PEEK[]). */
  sha256: string;
  /** Byte length of the source. */
  size: number;
  /** Sorted, without `\Recent`. */
  flags: string[];
  /** INTERNALDATE in ms since the epoch. */
  internalDate: number;
}

/** A folder as read back from a server (see {@link readMailbox}). */
export interface ReadBackFolder {
  /** Segments after removing the personal namespace prefix and splitting on the server's delimiter. */
  path: string[];
  subscribed: boolean;
  /** `\Noselect` (or `\NonExistent`): a placeholder parent that cannot hold messages. */
  noSelect: boolean;
  /** Sorted by sha256, then internalDate, then flags (byte-identical duplicates need the tie-breakers). */
  messages: ReadBackMessage[];
}

/** Where a server is reachable; a `DovecotServer` fits. */
export interface ImapEndpoint {
  host: string;
  port: number;
}

/** A personal namespace as NAMESPACE reports it (imapflow's `client.namespace`). */
export interface NamespaceInfo {
  prefix: string;
  delimiter: string;
}

/** A folder the server creates by itself (not part of the fixture). */
export interface AutoFolder {
  path: string[];
  subscribed: boolean;
}

/**
 * The folders our Dovecot config auto-creates and auto-subscribes (special-use Drafts/Sent/Trash/Junk).
 * They appear on every Dovecot account, source and destination alike, so {@link expectedFromFixture}
 * adds them by default. (`Archive` is defined with `auto = no`: it exists only because the fixture
 * creates it, and Dovecot then marks it `\Archive`.)
 */
export const DOVECOT_AUTO_FOLDERS: readonly AutoFolder[] = Object.freeze([
  { path: ['Drafts'], subscribed: true },
  { path: ['Sent'], subscribed: true },
  { path: ['Trash'], subscribed: true },
  { path: ['Junk'], subscribed: true },
]);

// ---------------------------------------------------------------------------------------------
// Deterministic randomness
// ---------------------------------------------------------------------------------------------

/**
 * mulberry32: a tiny seeded PRNG. Math.random() would make every run (and every test author's run)
 * different; a fixed seed keeps sizes, flags and hashes identical across runs and machines.
 */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Deterministic pseudo-random bytes (xorshift32; fast enough for 20 MB in ~30 ms). */
function pseudoRandomBytes(length: number, seed: number): Buffer {
  const buf = Buffer.allocUnsafe(length);
  let x = seed >>> 0 || 1;
  let i = 0;
  for (; i + 4 <= length; i += 4) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    buf.writeUInt32LE(x, i);
  }
  for (; i < length; i++) buf[i] = (x = (x * 1103515245 + 12345) >>> 0) >>> 24;
  return buf;
}

// ---------------------------------------------------------------------------------------------
// Message building
// ---------------------------------------------------------------------------------------------

const CRLF = '\r\n';
const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const pad2 = (n: number) => String(n).padStart(2, '0');

/** RFC 5322 date in a given UTC offset (minutes), e.g. `Sun, 16 Mar 2003 02:15:10 +0530`. */
function rfc5322Date(date: Date, offsetMinutes = 0): string {
  const local = new Date(date.getTime() + offsetMinutes * 60_000);
  const sign = offsetMinutes < 0 ? '-' : '+';
  const abs = Math.abs(offsetMinutes);
  return `${DAYS[local.getUTCDay()]}, ${local.getUTCDate()} ${MONTHS[local.getUTCMonth()]} ${local.getUTCFullYear()} ` +
    `${pad2(local.getUTCHours())}:${pad2(local.getUTCMinutes())}:${pad2(local.getUTCSeconds())} ${sign}${pad2(Math.floor(abs / 60))}${pad2(abs % 60)}`;
}

/** RFC 2047 B-encoded word (headers of "well-behaved" messages are 7-bit). */
const encodedWord = (s: string) => `=?UTF-8?B?${Buffer.from(s, 'utf8').toString('base64')}?=`;

/** Base64 in 76-character lines, CRLF-separated, as MIME bodies carry it. */
function base64Lines(data: Buffer): string {
  const b64 = data.toString('base64');
  const lines: string[] = [];
  for (let i = 0; i < b64.length; i += 76) lines.push(b64.slice(i, i + 76));
  return lines.join(CRLF);
}

/** Quoted-printable for UTF-8 text (soft line breaks at 76). */
function quotedPrintable(text: string): string {
  const out: string[] = [];
  for (const line of text.split('\n')) {
    let enc = '';
    for (const byte of Buffer.from(line, 'utf8')) {
      const ch = String.fromCharCode(byte);
      enc += (byte >= 33 && byte <= 126 && ch !== '=') || byte === 32 ? ch : `=${byte.toString(16).toUpperCase().padStart(2, '0')}`;
    }
    enc = enc.replace(/ $/, '=20');
    while (enc.length > 75) {
      let cut = 75;
      // never split an =XX escape
      const eq = enc.lastIndexOf('=', cut - 1);
      if (eq > cut - 3) cut = eq;
      out.push(enc.slice(0, cut) + '=');
      enc = enc.slice(cut);
    }
    out.push(enc);
  }
  return out.join(CRLF);
}

/** Joins header lines and a body with CRLF; the body is used as given (it may end without CRLF). */
function assemble(headers: string[], body: string | Buffer): Buffer {
  const head = Buffer.from(headers.join(CRLF) + CRLF + CRLF, 'utf8');
  return Buffer.concat([head, typeof body === 'string' ? Buffer.from(body, 'utf8') : body]);
}

const PEOPLE = [
  ['Alice Example', 'alice@example.org'],
  ['Bob Builder', 'bob@example.net'],
  ['Jürgen Müller', 'juergen@example.de'],
  ['Zoë Saldaña', 'zoe@example.com'],
  ['山田 太郎', 'taro@example.jp'],
  ['Chloé Dubois', 'chloe@example.fr'],
  ['Support Team', 'support@example.com'],
  ['Newsletter', 'news@lists.example.com'],
] as const;

const WORDS = ('invoice meeting report update project budget draft review contract schedule lunch release ' +
  'question answer travel weekend photos backup server migration mailbox folder quarterly summary').split(' ');
const PHRASES = [
  'Please find the details below.',
  'Grüße aus Köln – bis bald!',
  'Können wir das nächste Woche besprechen?',
  'よろしくお願いします。',
  'Thanks for the quick reply 👍',
  'Le café est prêt.',
  'This line is plain ASCII and rather boring.',
];

/** Everything the generators need: one PRNG drives all choices, so the fixture is reproducible. */
class Gen {
  readonly rnd: () => number;
  private counter = 0;
  constructor(seed: number) {
    this.rnd = prng(seed);
  }
  int(min: number, max: number): number {
    return min + Math.floor(this.rnd() * (max - min + 1));
  }
  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.rnd() * items.length)]!;
  }
  /** A whole-second instant in [from, to) (years, UTC). */
  date(fromYear = 1995, toYear = 2026): Date {
    const a = Date.UTC(fromYear, 0, 1);
    const b = Date.UTC(toYear, 0, 1);
    return new Date(Math.floor((a + this.rnd() * (b - a)) / 1000) * 1000);
  }
  /** Realistic flag mix for ordinary mail. */
  flags(): string[] {
    const f: string[] = [];
    if (this.rnd() < 0.7) f.push('\\Seen');
    if (this.rnd() < 0.12) f.push('\\Flagged');
    if (this.rnd() < 0.15) f.push('\\Answered');
    if (this.rnd() < 0.05) f.push('\\Deleted');
    if (this.rnd() < 0.06) f.push('$Forwarded');
    if (this.rnd() < 0.04) f.push('CustomKw');
    return f;
  }
  nextId(): number {
    return ++this.counter;
  }
  /** The INTERNALDATE of a delivered message: a little after its Date header. */
  delivered(sent: Date): Date {
    return new Date(sent.getTime() + this.int(1, 900) * 1000);
  }
}

/** An ordinary text/plain message with MIME-encoded headers. */
function plainMessage(g: Gen, opts: { sent?: Date; subject?: string; offset?: number; messageId?: boolean } = {}): Buffer {
  const n = g.nextId();
  const [fromName, fromAddr] = g.pick(PEOPLE);
  const [toName, toAddr] = g.pick(PEOPLE);
  const sent = opts.sent ?? g.date();
  const subject = opts.subject ?? `${g.pick(WORDS)} ${g.pick(WORDS)} #${n}${g.rnd() < 0.3 ? ' – Ümläut' : ''}`;
  const lines = Array.from({ length: g.int(1, 6) }, () => g.pick(PHRASES));
  const headers = [
    `From: ${encodedWord(fromName)} <${fromAddr}>`,
    `To: ${encodedWord(toName)} <${toAddr}>`,
    `Subject: ${/^[\x20-\x7e]*$/.test(subject) ? subject : encodedWord(subject)}`,
    `Date: ${rfc5322Date(sent, opts.offset ?? 0)}`,
    ...(opts.messageId === false ? [] : [`Message-ID: <fixture-${n}@mailmover.test>`]),
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=utf-8',
    'Content-Transfer-Encoding: quoted-printable',
  ];
  return assemble(headers, quotedPrintable(lines.join('\n')) + CRLF);
}

/** multipart/mixed with a text part, an HTML alternative and `attachments` base64 parts. */
function multipartMessage(g: Gen, attachments: { name: string; type: string; bytes: number }[], sent = g.date()): Buffer {
  const n = g.nextId();
  const outer = `=_mixed_${n}_${g.int(1e5, 1e6)}`;
  const alt = `=_alt_${n}`;
  const parts: string[] = [
    `--${outer}`,
    `Content-Type: multipart/alternative; boundary="${alt}"`,
    '',
    `--${alt}`,
    'Content-Type: text/plain; charset=utf-8',
    'Content-Transfer-Encoding: quoted-printable',
    '',
    quotedPrintable(`Anbei die Unterlagen (${attachments.length}).\nGrüße`),
    `--${alt}`,
    'Content-Type: text/html; charset=utf-8',
    'Content-Transfer-Encoding: quoted-printable',
    '',
    quotedPrintable(`<p>Anbei die Unterlagen (${attachments.length}).</p><p>Grüße</p>`),
    `--${alt}--`,
  ];
  for (const [i, a] of attachments.entries()) {
    parts.push(
      `--${outer}`,
      `Content-Type: ${a.type}; name="${a.name}"`,
      `Content-Disposition: attachment; filename="${a.name}"`,
      'Content-Transfer-Encoding: base64',
      '',
      base64Lines(pseudoRandomBytes(a.bytes, n * 100 + i)),
    );
  }
  parts.push(`--${outer}--`, '');
  const headers = [
    `From: ${encodedWord('Jürgen Müller')} <juergen@example.de>`,
    'To: Alice Example <alice@example.org>',
    `Subject: ${encodedWord(`Unterlagen Nr. ${n} 📎`)}`,
    `Date: ${rfc5322Date(sent, 60)}`,
    `Message-ID: <fixture-${n}@mailmover.test>`,
    'MIME-Version: 1.0',
    `Content-Type: multipart/mixed; boundary="${outer}"`,
  ];
  return assemble(headers, ['This is a multi-part message in MIME format.', ...parts].join(CRLF));
}

/**
 * The large message: multipart with one base64 attachment, padded in the epilogue to exactly `bytes`.
 * Exact size lets tests reason about limits (APPENDLIMIT, chunking) without rounding.
 */
function bigMessage(bytes: number): Buffer {
  if (bytes < 4096) throw new Error('bigMessageBytes must be at least 4096');
  const boundary = '=_big_boundary_0001';
  const head = [
    'From: Backup Robot <backup@example.com>',
    'To: Alice Example <alice@example.org>',
    'Subject: Large attachment (exact size test)',
    `Date: ${rfc5322Date(new Date(Date.UTC(2021, 6, 4, 9, 30, 0)))}`,
    'Message-ID: <fixture-big@mailmover.test>',
    'MIME-Version: 1.0',
    `Content-Type: multipart/mixed; boundary="${boundary}"`,
    '',
    `--${boundary}`,
    'Content-Type: text/plain; charset=us-ascii',
    '',
    'The attachment is pseudo-random data.',
    `--${boundary}`,
    'Content-Type: application/octet-stream; name="blob.bin"',
    'Content-Disposition: attachment; filename="blob.bin"',
    'Content-Transfer-Encoding: base64',
    '',
    '',
  ].join(CRLF);
  const tail = `${CRLF}--${boundary}--${CRLF}`;
  // Each 57 raw bytes become one 76-character base64 line + CRLF (78 bytes). Leave 200+ bytes for padding.
  const budget = bytes - head.length - tail.length - 200;
  const raw = pseudoRandomBytes(Math.floor(budget / 78) * 57, 0xb16);
  const body = base64Lines(raw);
  let rest = bytes - head.length - body.length - tail.length;
  // Epilogue (text after the closing boundary, ignored by MIME readers): lines of 'x' summing to `rest`.
  const pad: string[] = [];
  while (rest > 0) {
    const len = rest >= 80 + 2 ? 76 : rest - 2; // keep the last line at least CRLF long
    pad.push('x'.repeat(len) + CRLF);
    rest -= len + 2;
  }
  const msg = Buffer.from(head + body + tail + pad.join(''), 'latin1');
  if (msg.length !== bytes) throw new Error(`big message is ${msg.length} bytes, wanted ${bytes}`);
  return msg;
}

/** Messages that stress byte-exactness and header parsing. */
function oddMessages(g: Gen): FixtureMessage[] {
  const at = (iso: string) => new Date(iso);
  const out: FixtureMessage[] = [];
  const add = (raw: Buffer, internalDate: Date, flags: string[] = ['\\Seen']) => out.push({ raw, flags, internalDate });

  // 1. Raw 8-bit UTF-8 headers (RFC 6532 style, no encoded words) and an 8-bit body.
  add(assemble([
    'From: Jürgen Müller <juergen@example.de>',
    'To: 山田 太郎 <taro@example.jp>',
    'Subject: Grüße aus Köln – 日本語 📧 unencoded',
    `Date: ${rfc5322Date(at('2019-05-06T07:08:09Z'))}`,
    'Message-ID: <fixture-8bit-headers@mailmover.test>',
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=utf-8',
    'Content-Transfer-Encoding: 8bit',
  ], 'Schöne Grüße, ¡olé! 👋 こんにちは' + CRLF), at('2019-05-06T07:10:00Z'));

  // 2. No Message-ID at all: dedup/resume logic must not rely on it.
  add(assemble([
    'From: Old Client <old@example.net>',
    'To: Alice Example <alice@example.org>',
    'Subject: I have no Message-ID',
    `Date: ${rfc5322Date(at('1998-11-30T23:59:59Z'), -300)}`,
  ], 'Sent by a client from the last century.' + CRLF), at('1998-12-01T05:00:01Z'), []);

  // 3. ISO-8859-1 body bytes that are invalid UTF-8: any string round-trip in the engine breaks them.
  add(assemble([
    'From: Latin One <latin1@example.de>',
    'To: Alice Example <alice@example.org>',
    'Subject: =?ISO-8859-1?Q?Gr=FC=DFe_in_Latin-1?=',
    `Date: ${rfc5322Date(at('2001-02-03T04:05:06Z'), 60)}`,
    'Message-ID: <fixture-latin1@mailmover.test>',
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=iso-8859-1',
    'Content-Transfer-Encoding: 8bit',
  ], Buffer.concat([Buffer.from('Gr'), Buffer.from([0xfc, 0xdf]), Buffer.from('e, M'), Buffer.from([0xe4, 0x64, 0x63, 0x68, 0x65, 0x6e]), Buffer.from(CRLF)])),
  at('2001-02-03T04:06:00Z'));

  // 4. Last line without CRLF: the message must not gain a trailing newline.
  add(assemble([
    'From: Alice Example <alice@example.org>',
    'To: Bob Builder <bob@example.net>',
    'Subject: No final CRLF',
    `Date: ${rfc5322Date(at('2012-12-12T12:12:12Z'))}`,
    'Message-ID: <fixture-no-final-crlf@mailmover.test>',
  ], 'The body ends right here'), at('2012-12-12T12:12:13Z'), ['\\Seen', '\\Answered']);

  // 5. Headers only, empty body.
  add(assemble([
    'From: Alice Example <alice@example.org>',
    'To: Bob Builder <bob@example.net>',
    'Subject: (empty body)',
    `Date: ${rfc5322Date(at('2016-02-29T00:00:00Z'))}`,
    'Message-ID: <fixture-empty-body@mailmover.test>',
  ], ''), at('2016-02-29T00:00:00Z'));

  // 6. Folded headers, a 2,000-character unfolded header line and a 5,000-character body line
  //    (RFC 5322 says 998, real mail does not care; servers store it anyway).
  add(assemble([
    'From: Alice Example <alice@example.org>',
    'To: a@example.org,',
    '\tb@example.org,',
    '    c@example.org',
    'Subject: Long lines and folded',
    '  headers',
    `X-Long-Header: ${'abcdefghij'.repeat(200)}`,
    `Date: ${rfc5322Date(at('2007-07-07T07:07:07Z'))}`,
    'Message-ID: <fixture-long-lines@mailmover.test>',
  ], 'L'.repeat(5000) + CRLF + 'short' + CRLF), at('2007-07-07T07:07:07Z'), ['\\Flagged']);

  // 7. Body lines that trip naive mbox/SMTP handling: 'From ' at line start, lone dots, trailing spaces.
  add(assemble([
    'From: Alice Example <alice@example.org>',
    'To: Bob Builder <bob@example.net>',
    'Subject: From lines and dots',
    `Date: ${rfc5322Date(at('2004-04-04T04:04:04Z'))}`,
    'Message-ID: <fixture-from-dots@mailmover.test>',
  ], ['From the top.', '>From quoted.', '.', '..', '. leading dot', 'trailing spaces   ', '\ttab', '', '', ''].join(CRLF)),
  at('2004-04-04T04:04:04Z'), []);

  // 8. A message/rfc822 attachment (a message inside a message).
  const inner = plainMessage(g, { sent: at('2010-10-10T10:10:10Z'), subject: 'The forwarded original' });
  add(assemble([
    'From: Bob Builder <bob@example.net>',
    'To: Alice Example <alice@example.org>',
    'Subject: Fwd: The forwarded original',
    `Date: ${rfc5322Date(at('2010-10-11T08:00:00Z'), 120)}`,
    'Message-ID: <fixture-fwd-rfc822@mailmover.test>',
    'MIME-Version: 1.0',
    'Content-Type: multipart/mixed; boundary="fwd-b"',
  ], Buffer.concat([
    Buffer.from(['--fwd-b', 'Content-Type: text/plain', '', 'See below.', '--fwd-b', 'Content-Type: message/rfc822', '', ''].join(CRLF)),
    inner,
    Buffer.from(`${CRLF}--fwd-b--${CRLF}`),
  ])), at('2010-10-11T08:00:30Z'), ['\\Seen', '$Forwarded']);

  // 9. Headers with unusual but legal syntax: whitespace before the colon, empty header, no Date header.
  add(assemble([
    'From: Strange <strange@example.org>',
    'Subject : space before colon',
    'X-Empty:',
    'X-Unicode-Raw: ✓ ✗ ☃',
    'Message-ID: <fixture-odd-syntax@mailmover.test>',
  ], 'No Date header either.' + CRLF), at('2015-06-15T15:15:15Z'), ['\\Seen']);

  return out;
}

// ---------------------------------------------------------------------------------------------
// The fixture
// ---------------------------------------------------------------------------------------------

/** Default size of the big message: 20 MiB. */
export const DEFAULT_BIG_MESSAGE_BYTES = 20 * 1024 * 1024;

/**
 * Builds the fixture: 39 folders (plus 2 implicit `\Noselect` ancestors that are never created), 178
 * messages (~1.4 MB, plus the big one of exactly `bigMessageBytes`). Deterministic: the same options
 * give byte-identical output on every run. On Dovecot an account then lists 45 folders (39 + 2
 * placeholders + Drafts/Sent/Trash/Junk).
 *
 * Folder names cover: spaces, double quotes, `&` (mUTF-7 `&-`), a name that *looks* like mUTF-7 (a
 * double-decoding trap), umlauts, Japanese, emoji (UTF-16 surrogate pairs in mUTF-7), a backslash,
 * IMAP wildcards `%` and `*`, brackets/braces/`#`/`~`, a nested folder called `Inbox`, 5 levels of
 * depth, INBOX children, a selectable empty parent (`Work`), an implicit parent (`Placeholder Parent`
 * and its `Child B`, never created), an empty folder and unsubscribed folders (empty and non-empty).
 *
 * Not included although Dovecot 2.3 accepts them: leading/trailing spaces in names (other servers
 * trim or refuse them), and '/' or '.' (each is the separator of one of the two layouts).
 * Dovecot refuses control characters in names.
 */
export function buildFixture(opts: { bigMessageBytes?: number } = {}): FixtureFolder[] {
  const g = new Gen(0x6d61696c); // "mail"
  const folders: FixtureFolder[] = [];
  const folder = (path: string[], subscribed: boolean, messages: FixtureMessage[]) => {
    folders.push({ path, subscribed, messages });
    return messages;
  };
  /** `count` ordinary messages, optionally restricted to a year range. */
  const ordinary = (count: number, years?: [number, number]): FixtureMessage[] =>
    Array.from({ length: count }, () => {
      const sent = years ? g.date(years[0], years[1] + 1) : g.date();
      return { raw: plainMessage(g, { sent }), flags: g.flags(), internalDate: g.delivered(sent) };
    });
  const withAttachments = (count: number): FixtureMessage[] =>
    Array.from({ length: count }, (_, i) => {
      const sent = g.date(2005, 2026);
      const raw = multipartMessage(g, [
        { name: `Rechnung-${i + 1}.pdf`, type: 'application/pdf', bytes: g.int(2_000, 60_000) },
        ...(i % 2 ? [{ name: 'Foto Über.jpg', type: 'image/jpeg', bytes: g.int(10_000, 120_000) }] : []),
      ], sent);
      return { raw, flags: g.flags(), internalDate: g.delivered(sent) };
    });

  // --- INBOX and its children -------------------------------------------------------------
  const inbox = folder(['INBOX'], true, [...ordinary(48), ...withAttachments(2)]);
  // A message without Message-ID and one with raw 8-bit headers also live in INBOX, where a migration
  // starts; the rest of the odd ones get their own folder.
  const odd = oddMessages(g);
  inbox.push(odd[0]!, odd[1]!);
  folder(['INBOX', 'Rechnungen'], true, withAttachments(6));
  folder(['INBOX', 'Rechnungen', '2024'], true, ordinary(4, [2024, 2024]));
  folder(['INBOX', 'Newsletter'], false, ordinary(8));

  // --- Archive by year (Dovecot marks a folder named Archive \Archive) -----------------------
  folder(['Archive'], true, ordinary(3));
  for (const year of [1995, 2003, 2010, 2025]) {
    const msgs = folder(['Archive', String(year)], true, ordinary(4, [year, year]));
    if (year === 2003) {
      // Non-UTC zone: 2003-03-16 02:15:10 +0530 is still the 15th in UTC. (imapflow always sends
      // INTERNALDATE as +0000 and Dovecot's Maildir keeps only the instant, so only the instant can be
      // compared, but the Date header keeps the zone and day boundary for engines that parse it.)
      const sent = new Date('2003-03-16T02:15:10+05:30');
      msgs.push({ raw: plainMessage(g, { sent, offset: 330, subject: 'Zeitzone +0530' }), flags: ['\\Seen'], internalDate: sent });
      const west = new Date('2003-12-31T23:30:00-08:00'); // already 2004 in UTC
      msgs.push({ raw: plainMessage(g, { sent: west, offset: -480, subject: 'Silvester -0800' }), flags: [], internalDate: west });
    }
  }
  folder(['Archive', 'Inbox'], true, ordinary(2)); // a nested folder named like the inbox is NOT the inbox

  // --- Deep tree: Work > Clients > ACME & Co > Contracts > Signed (5 levels) -----------------
  folder(['Work'], true, []); // selectable but empty parent
  folder(['Work', 'Clients'], true, ordinary(3));
  folder(['Work', 'Clients', 'ACME & Co'], true, ordinary(4));
  folder(['Work', 'Clients', 'ACME & Co', 'Contracts'], true, withAttachments(2));
  folder(['Work', 'Clients', 'ACME & Co', 'Contracts', 'Signed'], true, ordinary(3));
  folder(['Work', 'Clients', 'He said "hi"'], false, ordinary(2));
  folder(['Work', 'Meeting Notes'], true, ordinary(3));

  // --- Implicit parents: 'Placeholder Parent' and its 'Child B' are never created --------------
  folder(['Placeholder Parent', 'Child A'], true, ordinary(2));
  folder(['Placeholder Parent', 'Child B', 'Grandchild'], true, ordinary(2));

  // --- International names ---------------------------------------------------------------
  folder(['Grüße'], true, ordinary(3));
  folder(['Grüße', 'Ünïcødé Straße'], true, ordinary(2));
  folder(['日本語'], true, ordinary(3));
  folder(['日本語', 'メール'], false, ordinary(2));
  folder(['📁 Projekte'], true, ordinary(3));
  folder(['📁 Projekte', '🚀 Launch 2025'], true, ordinary(2, [2025, 2025]));

  // --- Awkward ASCII names -----------------------------------------------------------------
  folder(['With "quotes" and spaces'], true, ordinary(3));
  folder(['Back\\slash'], true, ordinary(2));
  folder(['Wildcards % and *'], true, ordinary(2));
  folder(['[Brackets] {Braces} #Hash ~Tilde'], true, ordinary(2));
  folder(['R&D'], true, ordinary(2));
  folder(['R&D', '&ZeVnLIqe- is not Japanese'], true, ordinary(1)); // must stay literal, not decode to 日本語

  // --- Empty folders ------------------------------------------------------------------------
  folder(['Leer'], true, []);
  folder(['Empty and unsubscribed'], false, []);

  // --- Byte-identical duplicates (all copies must arrive) -------------------------------------
  const dupA = plainMessage(g, { sent: new Date('2020-02-02T20:20:20Z'), subject: 'Duplicate pair' });
  const dupB = plainMessage(g, { sent: new Date('2021-03-03T21:21:21Z'), subject: 'Duplicate triple' });
  folder(['Duplicates'], true, [
    // two copies, identical in everything
    { raw: dupA, flags: ['\\Seen'], internalDate: new Date('2020-02-02T20:21:00Z') },
    { raw: dupA, flags: ['\\Seen'], internalDate: new Date('2020-02-02T20:21:00Z') },
    // three copies, same bytes, different flags and dates
    { raw: dupB, flags: [], internalDate: new Date('2021-03-03T21:22:00Z') },
    { raw: dupB, flags: ['\\Seen'], internalDate: new Date('2021-03-04T09:00:00Z') },
    { raw: dupB, flags: ['\\Seen', '\\Flagged'], internalDate: new Date('2022-01-01T00:00:00Z') },
    // the same bytes as a message in INBOX (cross-folder duplicate)
    { ...inbox[0]!, flags: [...inbox[0]!.flags] },
  ]);

  // --- Flags and keywords -------------------------------------------------------------------
  const flagSets: string[][] = [
    [], ['\\Seen'], ['\\Flagged'], ['\\Answered'], ['\\Draft'], ['\\Deleted'],
    ['\\Seen', '\\Answered'], ['\\Seen', '\\Flagged', '\\Answered'], ['\\Seen', '\\Deleted'],
    ['\\Draft', '\\Seen'], ['\\Seen', '\\Answered', '\\Flagged', '\\Deleted', '\\Draft'],
    ['\\Seen', '$Forwarded', 'CustomKw'],
  ];
  folder(['Flags'], true, flagSets.map((flags) => {
    const sent = g.date();
    return { raw: plainMessage(g, { sent }), flags, internalDate: g.delivered(sent) };
  }));
  const keywordSets: string[][] = [
    ['$Forwarded'], ['$Junk'], ['$NotJunk', '\\Seen'], ['$MDNSent', '\\Answered'],
    ['CustomKw', 'Another_Keyword', '$label1'], ['NonJunk', 'Junk', '\\Seen', '\\Flagged'],
  ];
  folder(['Keywords'], true, keywordSets.map((flags) => {
    const sent = g.date();
    return { raw: plainMessage(g, { sent }), flags, internalDate: g.delivered(sent) };
  }));

  // --- Odd messages, attachments, the big one -------------------------------------------------
  folder(['Headers & Bytes'], true, odd.slice(2));
  folder(['Attachments'], true, withAttachments(5));
  folder(['Big'], true, [{
    raw: bigMessage(opts.bigMessageBytes ?? DEFAULT_BIG_MESSAGE_BYTES),
    flags: ['\\Seen'],
    internalDate: new Date('2021-07-04T09:31:00Z'),
  }]);

  validateFixture(folders);
  return folders;
}

/** Catches fixture edits that could not be seeded into both layouts. */
function validateFixture(folders: FixtureFolder[]): void {
  const seen = new Set<string>();
  for (const f of folders) {
    for (const s of f.path) {
      if (!s || s.includes('/') || s.includes('.')) throw new Error(`fixture segment ${JSON.stringify(s)} must be non-empty without '/' or '.'`);
    }
    const key = JSON.stringify(f.path);
    if (seen.has(key)) throw new Error(`duplicate fixture folder ${key}`);
    seen.add(key);
    for (const m of f.messages) {
      if (m.flags.some((x) => x.toLowerCase() === '\\recent')) throw new Error('\\Recent cannot be stored');
      if (m.internalDate.getTime() % 1000) throw new Error('internal dates must be whole seconds');
      // IMAP (RFC 3501 §2.3.1 via RFC 5322) wants CRLF line ends, and a plain literal may not carry NUL.
      const bad = (why: string, at: number) => new Error(`${f.path.join('/')}: message has ${why} at byte ${at}`);
      if (m.raw.includes(0)) throw bad('NUL', m.raw.indexOf(0));
      for (let i = m.raw.indexOf(0x0a); i !== -1; i = m.raw.indexOf(0x0a, i + 1)) if (m.raw[i - 1] !== 0x0d) throw bad('a bare LF', i);
      for (let i = m.raw.indexOf(0x0d); i !== -1; i = m.raw.indexOf(0x0d, i + 1)) if (m.raw[i + 1] !== 0x0a) throw bad('a bare CR', i);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Server names
// ---------------------------------------------------------------------------------------------

/** True if a namespace prefix puts every folder below INBOX (Courier/Cyrus style `INBOX.`). */
function prefixIsInbox(ns: NamespaceInfo): boolean {
  return !!ns.delimiter && ns.prefix.toUpperCase() === `INBOX${ns.delimiter}`;
}

/**
 * Spells fixture segments as a server name. With an `INBOX.` prefix, INBOX children and top-level folders
 * share one space: `['INBOX', 'Child']` becomes `INBOX.Child`, exactly like `['Child']` would.
 */
function serverName(path: string[], ns: NamespaceInfo): string {
  for (const s of path) {
    if (ns.delimiter && s.includes(ns.delimiter)) {
      throw new Error(`segment ${JSON.stringify(s)} contains the server's separator ${JSON.stringify(ns.delimiter)}`);
    }
  }
  if (path[0]!.toUpperCase() === 'INBOX') {
    if (path.length === 1) return 'INBOX';
    if (prefixIsInbox(ns)) return ns.prefix + path.slice(1).join(ns.delimiter);
    return ['INBOX', ...path.slice(1)].join(ns.delimiter);
  }
  return ns.prefix + path.join(ns.delimiter);
}

/** The inverse for what LIST returns: strip the personal prefix, split on the delimiter. */
function segmentsOf(name: string, delimiter: string, ns: NamespaceInfo): string[] {
  if (name.toUpperCase() === 'INBOX') return ['INBOX'];
  const rest = ns.prefix && name.startsWith(ns.prefix) ? name.slice(ns.prefix.length) : name;
  return delimiter ? rest.split(delimiter) : [rest];
}

/** A logged-in client; on failure the half-open client is closed so it cannot keep the process alive. */
async function connect(server: ImapEndpoint, user: string, password: string): Promise<ImapFlow> {
  const client = new ImapFlow({
    host: server.host,
    port: server.port,
    secure: false,
    doSTARTTLS: false, // plain loopback: TLS is tested separately and would only cost time here
    auth: { user, pass: password },
    logger: false,
  });
  try {
    await client.connect();
  } catch (e) {
    client.close();
    throw e;
  }
  return client;
}

// ---------------------------------------------------------------------------------------------
// Seeding
// ---------------------------------------------------------------------------------------------

/**
 * Stores the fixture in a (fresh) account over real IMAP: CREATE, SUBSCRIBE/UNSUBSCRIBE, APPEND with
 * flags and INTERNALDATE. Names are built from the server's NAMESPACE prefix and delimiter.
 *
 * imapflow's `mailboxCreate()` always SUBSCRIBEs the new mailbox, so unsubscribed folders are
 * explicitly unsubscribed afterwards. Appends run sequentially on one connection (imapflow does not
 * pipeline, so parallel appends on one connection gain nothing), and with no mailbox selected, because
 * imapflow silently drops keywords that the *selected* mailbox's PERMANENTFLAGS does not allow.
 */
export async function seedMailbox(server: ImapEndpoint, user: string, password: string, folders: FixtureFolder[]): Promise<void> {
  const client = await connect(server, user, password);
  try {
    const ns = namespaceOf(client);
    // Parents before children, so explicitly listed parents are created as real (selectable) folders
    // before a child's CREATE would make them implicit placeholders.
    const ordered = [...folders].sort((a, b) => a.path.length - b.path.length);
    for (const f of ordered) {
      const name = serverName(f.path, ns);
      if (name !== 'INBOX') await client.mailboxCreate(name);
      if (f.subscribed) await client.mailboxSubscribe(name);
      else await client.mailboxUnsubscribe(name);
      for (const m of f.messages) {
        const res = await client.append(name, m.raw, m.flags, m.internalDate);
        if (!res) throw new Error(`APPEND to ${name} returned nothing`);
      }
    }
  } finally {
    await client.logout().catch(() => client.close());
  }
}

function namespaceOf(client: ImapFlow): NamespaceInfo {
  const ns = client.namespace;
  if (!ns) throw new Error('server reported no personal namespace');
  return { prefix: ns.prefix ?? '', delimiter: ns.delimiter ?? '' };
}

// ---------------------------------------------------------------------------------------------
// Reading back
// ---------------------------------------------------------------------------------------------

/** Segment-wise ordinal comparison: deterministic and independent of locale and separator. */
function comparePaths(a: string[], b: string[]): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    if (a[i] !== b[i]) return a[i]! < b[i]! ? -1 : 1;
  }
  return a.length - b.length;
}

function compareMessages(a: ReadBackMessage, b: ReadBackMessage): number {
  if (a.sha256 !== b.sha256) return a.sha256 < b.sha256 ? -1 : 1;
  if (a.internalDate !== b.internalDate) return a.internalDate - b.internalDate;
  const fa = a.flags.join(' ');
  const fb = b.flags.join(' ');
  return fa < fb ? -1 : fa > fb ? 1 : 0;
}

/** Flags as compared: a set (no duplicates), sorted, `\Recent` dropped (session state, never copied). */
function normalizeFlags(flags: Iterable<string>): string[] {
  return [...new Set([...flags].filter((f) => f.toLowerCase() !== '\\recent'))].sort();
}

/**
 * Reads everything an account holds: every folder LIST shows (with subscription state and `\Noselect`),
 * and for every selectable folder every message's SHA-256, size, flags and INTERNALDATE.
 *
 * Folders are opened read-only (EXAMINE) and bodies fetched with BODY.PEEK, so reading changes nothing
 * (no `\Seen`). Nothing is filtered: server-created folders (Drafts, Sent, ... on Dovecot) are included,
 * see {@link expectedFromFixture}. Folder paths are segments relative to the personal namespace, so a
 * `'/'` server and a `'.'`+`INBOX.` server holding the same tree read back alike (except INBOX children,
 * which an `INBOX.` server cannot tell apart from top-level folders).
 */
export async function readMailbox(server: ImapEndpoint, user: string, password: string): Promise<ReadBackFolder[]> {
  const client = await connect(server, user, password);
  try {
    const ns = namespaceOf(client);
    const result: ReadBackFolder[] = [];
    for (const entry of await client.list()) {
      const noSelect = entry.flags.has('\\Noselect') || entry.flags.has('\\NonExistent');
      const folder: ReadBackFolder = {
        path: segmentsOf(entry.path, entry.delimiter || ns.delimiter, ns),
        // undefined when the server did not report it as subscribed
        subscribed: entry.subscribed === true,
        noSelect,
        messages: noSelect ? [] : await readMessages(client, entry.path),
      };
      result.push(folder);
    }
    return result.sort((a, b) => comparePaths(a.path, b.path));
  } finally {
    await client.logout().catch(() => client.close());
  }
}

async function readMessages(client: ImapFlow, path: string): Promise<ReadBackMessage[]> {
  const lock = await client.getMailboxLock(path, { readOnly: true });
  try {
    const mailbox = client.mailbox;
    const exists = mailbox ? mailbox.exists : 0;
    if (!exists) return [];
    const byUid = new Map<number, ReadBackMessage>();
    const query = { uid: true, flags: true, internalDate: true, size: true, source: true };
    for await (const m of client.fetch('1:*', query)) {
      // A server may interleave unsolicited FETCH (FLAGS) updates; they carry no body. Skip them.
      if (!m.source || !m.internalDate) continue;
      if (m.size !== undefined && m.size !== m.source.length) {
        throw new Error(`${path} uid ${m.uid}: RFC822.SIZE ${m.size} but ${m.source.length} bytes fetched`);
      }
      byUid.set(m.uid, {
        sha256: createHash('sha256').update(m.source).digest('hex'),
        size: m.source.length,
        flags: normalizeFlags(m.flags ?? []),
        internalDate: new Date(m.internalDate).getTime(),
      });
    }
    if (byUid.size !== exists) throw new Error(`${path}: ${exists} messages exist but ${byUid.size} were fetched`);
    return [...byUid.values()].sort(compareMessages);
  } finally {
    lock.release();
  }
}

// ---------------------------------------------------------------------------------------------
// Expected state
// ---------------------------------------------------------------------------------------------

/**
 * What {@link readMailbox} should return for an account that holds exactly the fixture, on a server
 * with the given namespace.
 *
 * - `namespace` (default `{ prefix: '', delimiter: '/' }`): the namespace(s) the fixture passed through.
 *   Only an `INBOX.`-style prefix matters: there the fixture's INBOX children (`['INBOX', 'Rechnungen']`)
 *   are the same folders as top-level ones and read back as `['Rechnungen']`. For a migration test pass
 *   both sides, `[sourceNs, destNs]`: if either has an `INBOX.` prefix the distinction is gone (seeded
 *   into an `INBOX.` source, INBOX children already are top-level folders there; copied to an `INBOX.`
 *   destination, they can only become `INBOX.Child`).
 * - `autoFolders` (default {@link DOVECOT_AUTO_FOLDERS}): folders the server creates by itself; they
 *   are added as empty selectable folders unless the fixture has a folder with that path. Pass `[]` for
 *   a server without auto-created folders. Decision: the reader reports what is there, and the
 *   expectation names the server's own additions explicitly, rather than the reader hiding folders (a
 *   hidden folder could hide a migration bug, e.g. messages wrongly appended to Sent).
 * - Ancestors that the fixture does not list are expected as `\Noselect`, unsubscribed, empty.
 * - INTERNALDATE is truncated to whole seconds (IMAP precision).
 */
export function expectedFromFixture(
  folders: FixtureFolder[],
  opts: { namespace?: NamespaceInfo | readonly NamespaceInfo[]; autoFolders?: readonly AutoFolder[] } = {},
): ReadBackFolder[] {
  const namespaces: readonly NamespaceInfo[] = Array.isArray(opts.namespace) ? opts.namespace : [opts.namespace ?? { prefix: '', delimiter: '/' }];
  const flatten = namespaces.some(prefixIsInbox);
  const mapPath = (p: string[]) => (flatten && p.length > 1 && p[0]!.toUpperCase() === 'INBOX' ? p.slice(1) : [...p]);

  const byKey = new Map<string, ReadBackFolder>();
  for (const f of folders) {
    const path = mapPath(f.path);
    const key = JSON.stringify(path);
    if (byKey.has(key)) throw new Error(`fixture folders collide as ${key} in namespace ${JSON.stringify(namespaces)}`);
    byKey.set(key, {
      path,
      subscribed: f.subscribed,
      noSelect: false,
      messages: f.messages
        .map((m) => ({
          sha256: createHash('sha256').update(m.raw).digest('hex'),
          size: m.raw.length,
          flags: normalizeFlags(m.flags),
          internalDate: Math.floor(m.internalDate.getTime() / 1000) * 1000,
        }))
        .sort(compareMessages),
    });
  }
  for (const a of opts.autoFolders ?? DOVECOT_AUTO_FOLDERS) {
    const key = JSON.stringify(a.path);
    if (!byKey.has(key)) byKey.set(key, { path: [...a.path], subscribed: a.subscribed, noSelect: false, messages: [] });
  }
  // Implicit ancestors (never created): placeholders.
  for (const f of [...byKey.values()]) {
    for (let i = 1; i < f.path.length; i++) {
      const parent = f.path.slice(0, i);
      const key = JSON.stringify(parent);
      if (!byKey.has(key)) byKey.set(key, { path: parent, subscribed: false, noSelect: true, messages: [] });
    }
  }
  return [...byKey.values()].sort((a, b) => comparePaths(a.path, b.path));
}

/** Counts for reports and sanity checks: folders, messages, total bytes. */
export function fixtureStats(folders: FixtureFolder[]): { folders: number; messages: number; bytes: number } {
  let messages = 0;
  let bytes = 0;
  for (const f of folders) {
    messages += f.messages.length;
    for (const m of f.messages) bytes += m.raw.length;
  }
  return { folders: folders.length, messages, bytes };
}
