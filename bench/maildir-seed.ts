/**
 * Fast seeding of one big folder for bench/scale.ts: the messages are written as files straight
 * into a user's INBOX in the bench Dovecot's Maildir (LAYOUT=fs: INBOX is the Maildir root), with
 * Dovecot's file naming, then `doveadm force-resync` makes Dovecot index them. 200,000 messages
 * take seconds this way instead of minutes of APPEND, and the result is exactly what is written:
 * the bench reads the folder back over IMAP and checks the count before using it.
 *
 * Maildir naming (Dovecot's): `<secs>.M<micro>P<pid>Q<n>.<host>,S=<size>,W=<crlf size>:2,<flags>`,
 * flag letters in ASCII order, keywords as letters a-z listed in `dovecot-keywords`; the file's
 * mtime is the INTERNALDATE. The messages are CRLF already (the server stores what it was given,
 * `mail_save_crlf = yes`), so S= and W= are the same number.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** The keywords the scale corpus uses, in dovecot-keywords order (letter a, b, ...). */
const KEYWORDS = ['$Forwarded', 'Work'];

export interface ScaleMessage {
  body: Buffer;
  flags: string[];
  internalDate: Date;
}

/** Message `i` of the scale corpus: small (about 1 KB), unique Message-ID, deterministic flags and date. */
export function scaleMessage(i: number, tag = 'scale'): ScaleMessage {
  const flags: string[] = [];
  if (i % 3 === 0) flags.push('\\Seen');
  if (i % 7 === 0) flags.push('\\Flagged');
  if (i % 11 === 0) flags.push('$Forwarded');
  if (i % 13 === 0) flags.push('Work');
  const date = new Date(Date.UTC(2015, 0, 1) + i * 60_000);
  const body = Buffer.from(
    `From: Sender ${i % 97} <sender${i % 97}@example.org>\r\nTo: owner@example.net\r\nSubject: ${tag} message ${i}\r\n` +
      `Message-ID: <${tag}-${i}@bench.mailmover>\r\nDate: ${date.toUTCString().replace('GMT', '+0000')}\r\nMIME-Version: 1.0\r\n` +
      `Content-Type: text/plain; charset=us-ascii\r\n\r\n${`Line ${i} of a small message for the big-folder benchmark.\r\n`.repeat(14)}`,
  );
  return { body, flags, internalDate: date };
}

function infoLetters(flags: string[]): string {
  const sys: Record<string, string> = { '\\Draft': 'D', '\\Flagged': 'F', '$Forwarded': '', '\\Answered': 'R', '\\Seen': 'S', '\\Deleted': 'T' };
  const letters = flags.filter((f) => sys[f]).map((f) => sys[f]!);
  const kw = flags.filter((f) => KEYWORDS.includes(f)).map((f) => String.fromCharCode(97 + KEYWORDS.indexOf(f)));
  return [...letters.sort(), ...kw.sort()].join('');
}

/**
 * Writes `count` messages into the INBOX of the Maildir at `maildir` (created), owned by
 * `owner` ("uid:gid", for Dovecot running its mail processes as another user), then has Dovecot
 * index them. Returns the seconds it took.
 */
export function seedMaildirInbox(opts: { maildir: string; count: number; doveadm: string; conf: string; user: string; owner?: string; tag?: string; onProgress?: (done: number) => void }): number {
  const t0 = performance.now();
  const { maildir } = opts;
  for (const d of ['cur', 'new', 'tmp']) mkdirSync(join(maildir, d), { recursive: true });
  // Dovecot's own keyword file of the folder: "<index> <name>" per line.
  writeFileSync(join(maildir, 'dovecot-keywords'), KEYWORDS.map((k, i) => `${i} ${k}\n`).join(''));
  const base = Math.floor(Date.now() / 1000);
  for (let i = 0; i < opts.count; i++) {
    const m = scaleMessage(i, opts.tag);
    const name = `${base}.M${i}P${process.pid}.bench,S=${m.body.length},W=${m.body.length}:2,${infoLetters(m.flags)}`;
    const file = join(maildir, 'cur', name);
    writeFileSync(file, m.body);
    utimesSync(file, m.internalDate, m.internalDate);
    if (opts.onProgress && (i + 1) % 50_000 === 0) opts.onProgress(i + 1);
  }
  if (opts.owner) {
    const r = spawnSync('chown', ['-R', opts.owner, join(maildir, '..')], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`chown ${opts.owner} ${maildir}: ${r.stderr}`);
  }
  const r = spawnSync(opts.doveadm, ['-c', opts.conf, 'force-resync', '-u', opts.user, 'INBOX'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`doveadm force-resync -u ${opts.user} INBOX: ${r.stderr || r.stdout}`);
  return (performance.now() - t0) / 1000;
}
