/**
 * One Outlook mail item as an RFC 5322 message, built by nodemailer's MailComposer (MIT) from the
 * item's properties. The same item always gives the same bytes: boundaries come from the item's
 * identity (the file's record key and the node id), the Date from the item's own times, and a
 * Message-ID missing from the item is derived from the same identity; so sizes, content keys and
 * verify's hashes agree from one run to the next.
 *
 * Headers: the item's transport headers when it came over SMTP (with the MIME fields of the
 * original body left out, since the body is rebuilt), else From/Sender, To/Cc/Bcc (the recipient
 * table), Subject, Date, Message-ID, In-Reply-To and References from its properties.
 * Bodies: text and HTML as multipart/alternative; an RTF-only item gives the HTML or text its RTF
 * encapsulates, or the RTF as an attachment. Attachments by value keep their names, types and
 * content IDs; embedded messages become message/rfc822 parts; OLE and by-reference attachments
 * are left out and counted (see {@link Composed.leftOut}).
 */
import { createHash } from 'node:crypto';
import MailComposer from 'nodemailer/lib/mail-composer';
import { encodeWord, foldLines, isPlainText, quoteString } from 'nodemailer/lib/mime-funcs';
import type { MailComposerAttachment, MailComposerOptions } from 'nodemailer/lib/mail-composer';
import type { PSTAttachment, PSTMessage } from 'pst-extractor';
import { itemProps } from './item-props.js';
import { rtfBody } from './rtf-body.js';

/** Embedded messages inside embedded messages: deeper than this is a loop in a damaged file. */
const MAX_EMBED_DEPTH = 8;

const ATTACH_BY_VALUE = 1;
const ATTACH_EMBEDDED_MSG = 5;
const ATTACH_OLE = 6;

/** MIME fields of the original body, which the rebuilt body replaces. */
const MIME_FIELDS = /^(mime-version|content-type|content-transfer-encoding|content-disposition|content-length|content-id|content-description)$/i;

export interface Composed {
  body: Buffer;
  /** Attachments left out, by kind: 'attachment:ole', 'attachment:by-reference'. */
  leftOut: string[];
}

/**
 * Builds the message of a mail item. `identity` (the file's record key and the node id) seeds the
 * boundaries and a missing Message-ID; `fileSize` bounds what an attachment may claim (a damaged
 * size is refused before anything is allocated for it).
 */
export async function composeItem(item: PSTMessage, identity: string, fileSize: number, depth = 0): Promise<Composed> {
  const leftOut: string[] = [];
  const seed = createHash('sha256').update(identity).digest('hex');
  const transport = safeString(() => item.transportMessageHeaders).trim();
  const parsed = transport ? parseHeaderBlock(transport) : undefined;
  const date = itemSentDate(item);
  const messageId = angle(safeString(() => item.internetMessageId)) ?? parsed?.find((h) => /^message-id$/i.test(h.name))?.value.trim() ?? `<${seed.slice(0, 32)}@pst.mailmover.invalid>`;

  const mail: MailComposerOptions = {
    baseBoundary: seed.slice(32, 48),
    boundaryPrefix: '--_mm',
    newline: 'windows',
    disableFileAccess: true,
    disableUrlAccess: true,
    messageId,
    date,
    attachments: [],
  };
  const address = parsed ? undefined : addressHeaders(item);
  if (address) Object.assign(mail, address.options);

  const text = safeString(() => item.body);
  const html = safeString(() => item.bodyHTML);
  if (text) mail.text = text;
  if (html) mail.html = html;
  if (!text && !html) {
    const rtf = rtfBody(item);
    if (rtf?.kind === 'html') mail.html = rtf.text;
    else if (rtf?.kind === 'text') mail.text = rtf.text;
    else if (rtf?.kind === 'rtf') mail.attachments!.push({ filename: 'body.rtf', content: rtf.rtf, contentType: 'application/rtf' });
  }
  for (let i = 0; i < item.numberOfAttachments; i++) {
    const att = item.getAttachment(i);
    const part = await attachmentPart(att, i, `${identity}/${i}`, fileSize, depth, leftOut);
    if (part) mail.attachments!.push(part);
  }

  const node = new MailComposer(mail).compile();
  node.keepBcc = true;
  const built = await node.build();
  if (address) return { body: address.lines.length ? Buffer.concat([Buffer.from(address.lines.join('\r\n') + '\r\n', 'utf8'), built]) : built, leftOut };
  return { body: spliceTransportHeaders(parsed!, built, messageId, date), leftOut };
}

/**
 * From, Sender, To, Cc, Bcc, Subject, In-Reply-To and References from the item's properties.
 * `lines`: address fields MailComposer cannot write (see below), as finished header lines.
 */
function addressHeaders(item: PSTMessage): { options: Partial<MailComposerOptions>; lines: string[] } {
  const props = itemProps(item);
  const out: Partial<MailComposerOptions> = { subject: safeString(() => item.subject) };
  const lines: string[] = [];
  // PR_SENT_REPRESENTING_SMTP_ADDRESS / PR_SENDER_SMTP_ADDRESS: Exchange senders' addresses are X.500 names otherwise.
  const from = mailbox(safeString(() => item.sentRepresentingName), props.string(0x5d02) || smtpOnly(item.sentRepresentingAddressType, item.sentRepresentingEmailAddress));
  const sender = mailbox(safeString(() => item.senderName), props.string(0x5d01) || smtpOnly(item.senderAddrtype, item.senderEmailAddress));
  // MailComposer drops a mailbox without an address (and takes no prepared value for address
  // fields); an Exchange sender or recipient known only by name keeps its name as an empty group (RFC 6854).
  const put = (field: 'from' | 'sender' | 'to' | 'cc' | 'bcc', header: string, list: Mailbox[]) => {
    if (list.length === 0) return;
    if (list.every((m) => m.address)) out[field] = list;
    else lines.push(foldLines(`${header}: ${list.map(formatMailbox).join(', ')}`, 76).replace(/\r?\n/g, '\r\n').replace(/\r\n$/, ''));
  };
  if (from) put('from', 'From', [from]);
  else if (sender) put('from', 'From', [sender]);
  if (from && sender && sender.address && sender.address.toLowerCase() !== from.address.toLowerCase()) put('sender', 'Sender', [sender]);
  const lists: Record<number, Mailbox[]> = { 1: [], 2: [], 3: [] };
  for (let i = 0; i < item.numberOfRecipients; i++) {
    const r = item.getRecipient(i);
    if (!r) continue;
    const m = mailbox(r.displayName, r.smtpAddress || smtpOnly(r.addrType, r.emailAddress));
    if (m) lists[r.recipientType]?.push(m);
  }
  put('to', 'To', lists[1]!);
  put('cc', 'Cc', lists[2]!);
  put('bcc', 'Bcc', lists[3]!);
  const inReplyTo = angle(safeString(() => item.inReplyToId));
  if (inReplyTo) out.inReplyTo = inReplyTo;
  const references = props.string(0x1039).trim(); // PR_INTERNET_REFERENCES
  if (references) out.references = references.split(/\s+/);
  return { options: out, lines };
}

async function attachmentPart(att: PSTAttachment, index: number, identity: string, fileSize: number, depth: number, leftOut: string[]): Promise<MailComposerAttachment | undefined> {
  const method = att.attachMethod;
  const name = att.longFilename || att.filename || att.displayName || `attachment-${index + 1}`;
  if (method === ATTACH_EMBEDDED_MSG) {
    if (depth >= MAX_EMBED_DEPTH) throw new Error(`embedded messages nest deeper than ${MAX_EMBED_DEPTH} levels`);
    const inner = att.embeddedPSTMessage;
    if (!inner) throw new Error(`embedded message ${index + 1} cannot be read`);
    const composed = await composeItem(inner, identity, fileSize, depth + 1);
    leftOut.push(...composed.leftOut);
    // eslint-disable-next-line no-control-regex -- the point is to keep control characters out of a file name
    const subject = safeString(() => inner.subject).replace(/[\\/:*?"<>|\u0000-\u001f]/g, '_').slice(0, 100);
    return { filename: `${att.displayName || subject || 'message'}.eml`, content: composed.body, contentType: 'message/rfc822' };
  }
  if (method === ATTACH_OLE) {
    leftOut.push('attachment:ole');
    return undefined;
  }
  if (method !== ATTACH_BY_VALUE && method !== 0) {
    // 2-4: by reference (a path on the sender's disk or share), 7: a web reference: the bytes are not in the file.
    leftOut.push('attachment:by-reference');
    return undefined;
  }
  const stream = att.fileInputStream;
  const size = stream ? stream.length.toNumber() : 0;
  if (size < 0 || size > fileSize) throw new Error(`attachment "${name}" claims ${size} bytes, more than the whole file: a damaged size`);
  const content = Buffer.alloc(size);
  if (stream && size > 0) stream.readCompletely(content);
  const part: MailComposerAttachment = { filename: name, content };
  const type = att.mimeTag.trim();
  if (/^[\w.+-]+\/[\w.+-]+$/.test(type)) part.contentType = type.toLowerCase();
  const cid = att.contentId.trim().replace(/^<|>$/g, '');
  if (cid) part.cid = cid;
  return part;
}

/** The item's Date: when it was sent, else delivered, else made; the Unix epoch when it says none (MailComposer would use the clock). */
function itemSentDate(item: PSTMessage): Date {
  for (const get of [() => item.clientSubmitTime, () => item.messageDeliveryTime, () => item.creationTime]) {
    try {
      const d = get();
      if (d instanceof Date && !Number.isNaN(d.getTime())) return d;
    } catch {
      // try the next
    }
  }
  return new Date(0);
}

interface HeaderField {
  name: string;
  /** The value as it was, folding kept. */
  value: string;
}

/** Splits a header block into fields (continuation lines stay with their field). */
export function parseHeaderBlock(block: string): HeaderField[] {
  const fields: HeaderField[] = [];
  for (const line of block.split(/\r?\n/)) {
    if (line === '') break;
    const last = fields[fields.length - 1];
    if (/^[ \t]/.test(line) && last) last.value += `\r\n${line}`;
    else {
      const colon = line.indexOf(':');
      if (colon > 0) fields.push({ name: line.slice(0, colon), value: line.slice(colon + 1) });
    }
  }
  return fields;
}

/**
 * The item's transport headers over the rebuilt body: the original's own fields (less its MIME
 * fields), then the MIME fields of the body MailComposer built, then that body.
 */
function spliceTransportHeaders(fields: HeaderField[], built: Buffer, messageId: string, date: Date): Buffer {
  const end = built.indexOf('\r\n\r\n');
  const builtFields = parseHeaderBlock(built.subarray(0, end).toString('utf8'));
  const kept = fields.filter((f) => !MIME_FIELDS.test(f.name));
  if (!kept.some((f) => /^message-id$/i.test(f.name))) kept.push({ name: 'Message-ID', value: ` ${messageId}` });
  if (!kept.some((f) => /^date$/i.test(f.name))) kept.push({ name: 'Date', value: ` ${date.toUTCString().replace(/GMT/, '+0000')}` });
  const mime = builtFields.filter((f) => MIME_FIELDS.test(f.name));
  const head = [...kept, ...mime].map((f) => `${f.name}:${f.value}`).join('\r\n');
  return Buffer.concat([Buffer.from(head, 'utf8'), built.subarray(end)]);
}

interface Mailbox {
  name: string;
  address: string;
}

/** `Name <address>`, or `Name:;` (an empty group: the name, with no address to give). */
function formatMailbox(m: Mailbox): string {
  const phrase = isPlainText(m.name) ? quoteString(m.name) : encodeWord(m.name, 'Q', 52);
  if (!m.address) return `${phrase}:;`;
  return m.name ? `${phrase} <${m.address}>` : `<${m.address}>`;
}

function mailbox(name: string, address: string): Mailbox | undefined {
  const a = address.trim();
  const n = name.trim();
  if (!a && !n) return undefined;
  return { name: n === a ? '' : n, address: a };
}

/** An address only when it is an Internet one (an Exchange X.500 name is not). */
function smtpOnly(type: string, address: string): string {
  return /^smtp$/i.test(type.trim()) || /^[^\s@/]+@[^\s@]+$/.test(address.trim()) ? address.trim() : '';
}

function angle(id: string): string | undefined {
  const t = id.trim();
  if (!t) return undefined;
  return t.startsWith('<') ? t : `<${t}>`;
}

function safeString(f: () => string): string {
  try {
    return f() ?? '';
  } catch {
    return '';
  }
}
