/**
 * The benchmark corpus: a deterministic (seeded) mailbox that looks like a real one, and the
 * code that APPENDs it to the source user.
 *
 * Default (scale 1): 5,000 messages, ~410 MB, 25 folders up to 4 levels deep. Sizes: ~90.8 %
 * small (1.5–20 KB text), 9 % medium (100 KB–2 MB, log-uniform, base64 attachment), 8 large
 * (~10 MB). \Seen \Flagged \Answered \Draft and keywords on ~14 % of the messages.
 * INTERNALDATEs spread over 2019-01-01 .. 2024-12-31 (UTC).
 *
 * Everything is derived from the seed: the spec (folder, kind, size, flags, date) from one PRNG
 * stream, each message's bytes from its own PRNG (and an AES-CTR key stream for attachments), so
 * the same seed and message count give byte-identical messages in the same folder order.
 */
import { createCipheriv, createHash } from 'node:crypto';
import { ImapFlow } from 'imapflow';

export const SEPARATOR = '/';

/** Folders (path with '/', relative weight of messages). Parents come before children. */
export const FOLDERS: ReadonlyArray<readonly [string, number]> = [
  ['INBOX', 28],
  ['Sent', 10],
  ['Drafts', 1],
  ['Trash', 3],
  ['Junk', 2],
  ['Archive', 2],
  ['Archive/2019', 4],
  ['Archive/2020', 4],
  ['Archive/2021', 4],
  ['Archive/2022', 4],
  ['Archive/2023', 4],
  ['Archive/2023/Q4', 2],
  ['Archive/2023/Q4/Rechnungen & Belege', 2],
  ['Projects', 1],
  ['Projects/Website Relaunch', 3],
  ['Projects/Website Relaunch/Design Reviews', 2],
  ['Projects/Website Relaunch/Design Reviews/Round 2', 1],
  ['Sales & Marketing', 3],
  ['Familie', 2],
  ['Familie/Grüße aus Köln', 2],
  ['日本語のメール', 2],
  ['日本語のメール/東京オフィス', 1],
  ['Newsletters', 6],
  ['Receipts & Bills 2024', 2],
  ['Empty Folder', 0],
];

export const BASE_MESSAGES = 5000;
const BASE_MEDIUM = 450;
const BASE_LARGE = 8;
const FLAGGED_SHARE = 0.14;
const DATE_FROM = Date.UTC(2019, 0, 1);
const DATE_TO = Date.UTC(2025, 0, 1);
const KEYWORDS = ['$Forwarded', '$Label1', 'Work', 'todo', 'Client-ACME'];

/** sfc32 seeded through a string hash: small, fast, good enough for test data. */
export class Prng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;
  constructor(seed: string) {
    const h = createHash('sha256').update(seed).digest();
    this.a = h.readUInt32LE(0);
    this.b = h.readUInt32LE(4);
    this.c = h.readUInt32LE(8);
    this.d = h.readUInt32LE(12);
    for (let i = 0; i < 12; i++) this.next();
  }
  /** Uniform in [0, 1). */
  next(): number {
    this.a >>>= 0;
    this.b >>>= 0;
    this.c >>>= 0;
    this.d >>>= 0;
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return (t >>> 0) / 4294967296;
  }
  int(min: number, maxInclusive: number): number {
    return min + Math.floor(this.next() * (maxInclusive - min + 1));
  }
  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)]!;
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
}

export type Kind = 'small' | 'medium' | 'large';

export interface MessageSpec {
  index: number;
  folder: string;
  kind: Kind;
  /** Approximate size in bytes the generator aims at. */
  targetSize: number;
  flags: string[];
  internalDate: Date;
}

export interface CorpusSpec {
  seed: string;
  messages: MessageSpec[];
  folders: string[];
  counts: { small: number; medium: number; large: number; withFlags: number };
}

/** Builds the spec for `total` messages (kinds and weights scaled from the 5,000-message default). */
export function buildSpec(seed: string, total: number): CorpusSpec {
  const rng = new Prng(`${seed}/spec`);
  const large = total >= 50 ? Math.max(1, Math.round((BASE_LARGE * total) / BASE_MESSAGES)) : 0;
  const medium = Math.round((BASE_MEDIUM * total) / BASE_MESSAGES);
  const small = total - medium - large;
  const kinds: Kind[] = [...Array<Kind>(small).fill('small'), ...Array<Kind>(medium).fill('medium'), ...Array<Kind>(large).fill('large')];
  for (let i = kinds.length - 1; i > 0; i--) {
    const j = Math.floor(rng.next() * (i + 1));
    [kinds[i], kinds[j]] = [kinds[j]!, kinds[i]!];
  }
  const filled = FOLDERS.filter(([, w]) => w > 0);
  const weightSum = filled.reduce((s, [, w]) => s + w, 0);
  const pickFolder = (): string => {
    let x = rng.next() * weightSum;
    for (const [name, w] of filled) {
      x -= w;
      if (x < 0) return name;
    }
    return filled[filled.length - 1]![0];
  };
  const messages: MessageSpec[] = [];
  let withFlags = 0;
  for (let i = 0; i < total; i++) {
    const kind = kinds[i]!;
    // every folder with a weight gets at least one message (when there are enough messages)
    const folder = i < filled.length && total >= filled.length * 4 ? filled[i]![0] : pickFolder();
    let targetSize: number;
    if (kind === 'small') targetSize = rng.int(1500, 20000);
    else if (kind === 'medium') targetSize = Math.round(100_000 * Math.exp(rng.next() * Math.log(20))); // 100 KB..2 MB, log-uniform
    else targetSize = rng.int(9_500_000, 10_500_000);
    const flags: string[] = [];
    if (rng.chance(FLAGGED_SHARE)) {
      if (rng.chance(0.7)) flags.push('\\Seen');
      if (rng.chance(0.25)) flags.push('\\Flagged');
      if (rng.chance(0.2)) flags.push('\\Answered');
      if (folder === 'Drafts' ? rng.chance(0.9) : rng.chance(0.03)) flags.push('\\Draft');
      if (rng.chance(0.35)) {
        flags.push(rng.pick(KEYWORDS));
        if (rng.chance(0.3)) flags.push(rng.pick(KEYWORDS));
      }
      if (flags.length === 0) flags.push('\\Seen');
      withFlags++;
    }
    const internalDate = new Date(Math.floor((DATE_FROM + rng.next() * (DATE_TO - DATE_FROM)) / 1000) * 1000);
    messages.push({ index: i, folder, kind, targetSize, flags: [...new Set(flags)], internalDate });
  }
  return { seed, messages, folders: FOLDERS.map(([n]) => n), counts: { small, medium, large, withFlags } };
}

// ---------------------------------------------------------------------------------------------
// Message bytes

const WORDS = (
  'the of and to in is that for it as with was on be by this are from at or an have not but which ' +
  'project meeting invoice report quarter budget review schedule update please thanks regards draft ' +
  'attached agenda minutes customer server migration mailbox folder message release deadline estimate ' +
  'Rechnung Grüße Besprechung Übersicht Köln Straße Angebot Prüfung müssen möglich ' +
  'よろしく お願いします 会議 資料 確認 東京 予定'
).split(' ');
const FIRST = ['Anna', 'Ben', 'Chloé', 'David', 'Eva', 'Jürgen', 'Kenji', 'Lena', 'Marco', 'Nadia', 'Oskar', 'Yuki'];
const LAST = ['Müller', 'Smith', 'Tanaka', 'García', 'Schröder', 'Rossi', 'Nakamura', 'Dubois', 'Kowalski', 'Berg'];
const DOMAINS = ['example.com', 'example.org', 'mail.example.net', 'firma.example.de', 'example.jp'];
const SUBJECTS = [
  'Re: Quarterly report',
  'Invoice #%n',
  'Meeting notes %n',
  'Fwd: Website relaunch – design round %n',
  'Your order %n has shipped',
  'Grüße aus Köln',
  'Angebot Nr. %n – Überarbeitung',
  '会議の資料について (%n)',
  'Newsletter %n: what is new',
  'Lunch?',
];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];

function rfc2822(d: Date, offsetMin: number): string {
  const local = new Date(d.getTime() + offsetMin * 60_000);
  const p = (n: number) => String(n).padStart(2, '0');
  const sign = offsetMin < 0 ? '-' : '+';
  const off = Math.abs(offsetMin);
  return (
    `${DAYS[local.getUTCDay()]}, ${local.getUTCDate()} ${MONTHS[local.getUTCMonth()]} ${local.getUTCFullYear()} ` +
    `${p(local.getUTCHours())}:${p(local.getUTCMinutes())}:${p(local.getUTCSeconds())} ${sign}${p(Math.floor(off / 60))}${p(off % 60)}`
  );
}

function encodeWord(s: string): string {
  return /^[\x20-\x7e]*$/.test(s) ? s : `=?UTF-8?B?${Buffer.from(s, 'utf8').toString('base64')}?=`;
}

function person(rng: Prng): { name: string; addr: string } {
  const f = rng.pick(FIRST);
  const l = rng.pick(LAST);
  const addr = `${f}.${l}`
    .normalize('NFD')
    .replace(/[^A-Za-z.]/g, '')
    .toLowerCase();
  return { name: `${f} ${l}`, addr: `${addr}@${rng.pick(DOMAINS)}` };
}

/** Text of about `bytes` UTF-8 bytes in lines of at most ~72 characters, CRLF-terminated. */
function text(rng: Prng, bytes: number): string {
  const lines: string[] = [];
  let size = 0;
  let line = '';
  while (size + line.length < bytes) {
    const w = rng.pick(WORDS);
    if (line.length + w.length + 1 > 72) {
      lines.push(line);
      size += Buffer.byteLength(line) + 2;
      line = rng.chance(0.08) ? '' : w;
      if (line === '') {
        lines.push('');
        size += 2;
      }
    } else line = line ? `${line} ${w}` : w;
  }
  if (line) lines.push(line);
  return lines.join('\r\n') + '\r\n';
}

/** Deterministic pseudo-random bytes (AES-256-CTR key stream of a seed-derived key). */
function randomBytes(seed: string, n: number): Buffer {
  const key = createHash('sha256').update(seed).digest();
  const cipher = createCipheriv('aes-256-ctr', key, Buffer.alloc(16));
  return cipher.update(Buffer.alloc(n));
}

function base64Lines(data: Buffer): string {
  const b64 = data.toString('base64');
  const out: string[] = [];
  for (let i = 0; i < b64.length; i += 76) out.push(b64.slice(i, i + 76));
  return out.join('\r\n') + '\r\n';
}

/** The RFC 5322 bytes of one message (CRLF line ends). */
export function buildMessage(seed: string, m: MessageSpec): Buffer {
  const rng = new Prng(`${seed}/msg/${m.index}`);
  const from = person(rng);
  const to = person(rng);
  const subject = rng.pick(SUBJECTS).replace('%n', String(rng.int(100, 99999)));
  const offset = rng.pick([0, 60, 120, -300, 540, 330]);
  const sent = new Date(m.internalDate.getTime() - rng.int(5, 3600) * 1000);
  const headers = [
    `Return-Path: <${from.addr}>`,
    `Received: from mx${rng.int(1, 9)}.example.net (mx.example.net [192.0.2.${rng.int(1, 254)}])\r\n\tby imap.example.com with ESMTPS id ${m.index.toString(36)}x${rng.int(1e5, 1e6)};\r\n\t${rfc2822(m.internalDate, 0)}`,
    `Date: ${rfc2822(sent, offset)}`,
    `From: ${encodeWord(from.name)} <${from.addr}>`,
    `To: ${encodeWord(to.name)} <${to.addr}>`,
    `Subject: ${encodeWord(subject)}`,
    `Message-ID: <bench.${m.index}.${rng.int(1e6, 1e7)}@mailmover.test>`,
    'MIME-Version: 1.0',
  ];
  if (m.kind === 'small') {
    const head = [...headers, 'Content-Type: text/plain; charset=utf-8', 'Content-Transfer-Encoding: 8bit'].join('\r\n') + '\r\n\r\n';
    const body = text(rng, Math.max(200, m.targetSize - Buffer.byteLength(head)));
    return Buffer.from(head + body, 'utf8');
  }
  const boundary = `=_bench_${m.index}_${rng.int(1e6, 1e7)}`;
  const ext = rng.pick(['pdf', 'zip', 'jpg', 'docx']);
  const mime = { pdf: 'application/pdf', zip: 'application/zip', jpg: 'image/jpeg', docx: 'application/octet-stream' }[ext];
  const head =
    [...headers, `Content-Type: multipart/mixed; boundary="${boundary}"`].join('\r\n') +
    '\r\n\r\nThis is a multi-part message in MIME format.\r\n\r\n' +
    `--${boundary}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n` +
    text(rng, rng.int(300, 3000)) +
    `\r\n--${boundary}\r\nContent-Type: ${mime}; name="file-${m.index}.${ext}"\r\n` +
    `Content-Disposition: attachment; filename="file-${m.index}.${ext}"\r\nContent-Transfer-Encoding: base64\r\n\r\n`;
  const tailPart = `\r\n--${boundary}--\r\n`;
  const room = Math.max(1000, m.targetSize - Buffer.byteLength(head) - tailPart.length);
  const raw = randomBytes(`${seed}/att/${m.index}`, Math.floor((room * 57) / 78));
  return Buffer.concat([Buffer.from(head, 'utf8'), Buffer.from(base64Lines(raw), 'latin1'), Buffer.from(tailPart, 'latin1')]);
}

// ---------------------------------------------------------------------------------------------
// Seeding

export interface ImapTarget {
  host: string;
  port: number;
  user: string;
  pass: string;
}

export function imapClient(t: ImapTarget): ImapFlow {
  return new ImapFlow({
    host: t.host,
    port: t.port,
    secure: false,
    doSTARTTLS: false,
    auth: { user: t.user, pass: t.pass },
    logger: false,
    connectionTimeout: 30_000,
    greetingTimeout: 30_000,
    socketTimeout: 600_000,
  });
}

export interface SeedResult {
  messages: number;
  bytes: number;
  seconds: number;
  /** sha256 (hex) of every generated message, by spec index. */
  sha256: string[];
}

/**
 * Creates the folders (parents first, all subscribed) and APPENDs every message with its flags
 * and INTERNALDATE. Whole folders are handed to `connections` parallel connections, so the UID
 * order inside a folder is the spec order.
 */
export async function seedCorpus(
  target: ImapTarget,
  spec: CorpusSpec,
  connections: number,
  onProgress?: (done: number, total: number) => void,
): Promise<SeedResult> {
  const started = performance.now();
  const admin = imapClient(target);
  await admin.connect();
  try {
    for (const f of spec.folders) {
      if (f !== 'INBOX') await admin.mailboxCreate(f.split(SEPARATOR));
      await admin.mailboxSubscribe(f);
    }
  } finally {
    await admin.logout();
  }
  const byFolder = new Map<string, MessageSpec[]>();
  for (const m of spec.messages) {
    const list = byFolder.get(m.folder) ?? [];
    list.push(m);
    byFolder.set(m.folder, list);
  }
  // biggest folders first so the parallel connections finish at about the same time
  const queue = [...byFolder.entries()].sort((a, b) => b[1].length - a[1].length);
  const sha256: string[] = new Array<string>(spec.messages.length);
  let done = 0;
  let bytes = 0;
  const worker = async () => {
    const c = imapClient(target);
    await c.connect();
    try {
      for (let item = queue.shift(); item; item = queue.shift()) {
        const [folder, msgs] = item;
        for (const m of msgs) {
          const raw = buildMessage(spec.seed, m);
          sha256[m.index] = createHash('sha256').update(raw).digest('hex');
          const res = await c.append(folder, raw, m.flags, m.internalDate);
          if (!res) throw new Error(`APPEND to ${folder} failed for message ${m.index}`);
          bytes += raw.length;
          done++;
          onProgress?.(done, spec.messages.length);
        }
      }
    } finally {
      await c.logout().catch(() => undefined);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, connections) }, worker));
  return { messages: done, bytes, seconds: (performance.now() - started) / 1000, sha256 };
}
