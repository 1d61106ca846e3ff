/**
 * The independent check of the PST source: what reached Dovecot (read back over IMAP) against
 * what Debian's `readpst` (libpst, an unrelated implementation) makes of the same file. Both are
 * parsed by Python's stdlib `email` package into per-message records: subject, sender, date,
 * attachments (name and decoded size), the plain-text body, and whether it was read (readpst's
 * `Status: RO`, Dovecot's \\Seen).
 *
 * Normalised, because the two legitimately encode these differently:
 * - whitespace in subjects and bodies is collapsed (line ends: CRLF from mailmover, LF from readpst;
 *   readpst's quoted-printable and line wrapping differ);
 * - the sender is compared by address when both sides have an Internet address, else by display
 *   name (readpst writes `<MAILER-DAEMON>` for an Exchange sender without an SMTP address,
 *   mailmover an empty group `"Name":;`, RFC 6854);
 * - readpst adds an `iNNN.ics` calendar attachment of its own making to meeting items (built from
 *   appointment properties): left out; mailmover copies the item's own attachments only;
 * - an RTF body that encapsulates no HTML or text is attached by both, under a name of each one's
 *   choosing: readpst's `rtf-body.rtf` is read as mailmover's `body.rtf` (the bytes must agree);
 * - the date is compared as an instant (seconds), not as text;
 * - a long attachment name that a writer folded over lines is unfolded (RFC 5322 2.2.3).
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { ImapFlow } from 'imapflow';

export interface MessageRecord {
  subject: string;
  sender: string;
  senderName: string;
  date: number | null;
  attachments: [string, number][];
  body: string;
  /** readpst: `R` in its `Status:` field; Dovecot: the \\Seen flag. */
  seen: boolean;
}

const PY = String.raw`
import json, mailbox, os, re, sys, email, email.header, email.utils
from email import policy

def ws(s):
    return re.sub(r'\s+', ' ', s or '').strip()

def text_of(part):
    data = part.get_payload(decode=True) or b''
    return data.decode(part.get_content_charset() or 'utf-8', 'replace')

def record(msg):
    subject = ws(str(msg.get('Subject', '') or ''))
    addrs = email.utils.getaddresses([str(msg.get('From', '') or '')])
    name, addr = addrs[0] if addrs else ('', '')
    group = re.match(r'^\s*(.*?)\s*:\s*;\s*$', str(msg.get('From', '') or ''), re.S)
    if not addr and group:  # a sender known by name only, written as an empty group
        name = str(email.header.make_header(email.header.decode_header(group.group(1).strip('"'))))
    try:
        date = int(email.utils.parsedate_to_datetime(str(msg['Date'])).timestamp()) if msg['Date'] else None
    except Exception:
        date = None
    atts, body = [], None
    def walk(part):
        nonlocal body
        ctype = part.get_content_type()
        if ctype == 'message/rfc822':
            atts.append([part.get_filename() or '', -1])
            return
        if part.is_multipart():
            for p in part.get_payload():
                walk(p)
            return
        fn = part.get_filename()
        if fn:
            fn = re.sub(r'\r?\n(?=[ \t])', '', fn)  # RFC 5322 unfolding (compat32 leaves a folded parameter folded)
        if fn or part.get_content_disposition() == 'attachment':
            atts.append([fn or '', len(part.get_payload(decode=True) or b'')])
        elif ctype == 'text/plain' and body is None:
            body = text_of(part)
    walk(msg)
    return {'subject': subject, 'sender': addr.lower() if '@' in addr else '', 'senderName': ws(name), 'date': date,
            'attachments': sorted(atts), 'body': ws(body or ''), 'seen': 'R' in str(msg.get('Status', '') or '')}

manifest = json.load(open(sys.argv[1]))
out = {'readpst': {}, 'imap': {}}
for folder, path in manifest['readpst'].items():
    out['readpst'][folder] = [record(m) for m in mailbox.mbox(path, factory=lambda f: email.message_from_binary_file(f, policy=policy.compat32))]
for folder, files in manifest['imap'].items():
    out['imap'][folder] = [dict(record(email.message_from_binary_file(open(f['file'], 'rb'), policy=policy.compat32)), seen=f['seen']) for f in files]
print(json.dumps(out))
`;

/** readpst's mbox files of a PST, by folder path below the store's root (readpst -D: Deleted Items too). */
export function readpstFolders(pst: string, outDir: string): Map<string, string> {
  mkdirSync(outDir, { recursive: true });
  execFileSync('readpst', ['-D', '-q', '-r', '-o', outDir, pst], { stdio: 'pipe' });
  const out = new Map<string, string>();
  const walk = (dir: string) => {
    for (const name of readdirSync(dir)) {
      const p = join(dir, name);
      if (statSync(p).isDirectory()) walk(p);
      else if (name === 'mbox') out.set(relative(outDir, dir).split('/').slice(1).join('/'), p);
    }
  };
  walk(outDir);
  return out;
}

/** Every message of the given IMAP folders, written to files (for the Python reader). */
export async function dumpImapFolders(url: { host: string; port: number; user: string; pass: string }, folders: readonly string[], outDir: string): Promise<Map<string, { file: string; seen: boolean }[]>> {
  mkdirSync(outDir, { recursive: true });
  const c = new ImapFlow({ host: url.host, port: url.port, secure: false, auth: { user: url.user, pass: url.pass }, logger: false });
  await c.connect();
  const out = new Map<string, { file: string; seen: boolean }[]>();
  try {
    let n = 0;
    for (const folder of folders) {
      const files: { file: string; seen: boolean }[] = [];
      const lock = await c.getMailboxLock(folder, { readOnly: true });
      try {
        if (c.mailbox && c.mailbox.exists) {
          for await (const m of c.fetch('1:*', { source: true, flags: true })) {
            const f = join(outDir, `${n++}.eml`);
            writeFileSync(f, m.source!);
            files.push({ file: f, seen: !!m.flags?.has('\\Seen') });
          }
        }
      } finally {
        lock.release();
      }
      out.set(folder, files);
    }
  } finally {
    await c.logout();
  }
  return out;
}

/** Both sides' records, by folder, as Python's email package reads them. */
export function records(readpst: Map<string, string>, imap: Map<string, { file: string; seen: boolean }[]>, workDir: string): { readpst: Record<string, MessageRecord[]>; imap: Record<string, MessageRecord[]> } {
  mkdirSync(workDir, { recursive: true });
  const manifest = join(workDir, 'manifest.json');
  writeFileSync(manifest, JSON.stringify({ readpst: Object.fromEntries(readpst), imap: Object.fromEntries(imap) }));
  const script = join(workDir, 'records.py');
  writeFileSync(script, PY);
  return JSON.parse(execFileSync('python3', [script, manifest], { maxBuffer: 256 * 1024 * 1024 }).toString('utf8'));
}

/** A record with readpst's own additions taken out (see the module comment). */
export function normalised(r: MessageRecord, side: 'readpst' | 'imap'): MessageRecord {
  const attachments =
    side === 'readpst'
      ? r.attachments.filter(([name]) => !/^i\d+\.ics$/.test(name)).map(([name, size]): [string, number] => [name === 'rtf-body.rtf' ? 'body.rtf' : name, size])
      : r.attachments;
  return { ...r, attachments };
}
