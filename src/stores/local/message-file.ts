/**
 * One message file of a local archive (Maildir, EML tree): its header block for the identity, and
 * its bytes as IMAP would serve them.
 *
 * IMAP serves messages with CRLF line ends; many archives (Dovecot's default Maildir, Courier,
 * mutt, most .eml exporters) store bare LF. A file is served as IMAP would serve it: each bare LF
 * becomes CRLF, and its size is that of the served bytes. mailmover writes the bytes it was given,
 * which come from IMAP with CRLF, so what it writes reads back byte for byte.
 */
import { open, readFile } from 'node:fs/promises';

const HEADER_CHUNK = 16 * 1024;
/** A header block longer than this is read no further (the identity fields come first in practice). */
const MAX_HEADER_BYTES = 1024 * 1024;

/** The header block of a file (up to and including the blank line), and whether it looks like a message. */
export async function readHeaderBlock(file: string): Promise<{ headers: Buffer; fileSize: number; looksLikeMessage: boolean }> {
  const handle = await open(file, 'r');
  try {
    const { size } = await handle.stat();
    const chunks: Buffer[] = [];
    let total = 0;
    let end = -1;
    while (total < Math.min(size, MAX_HEADER_BYTES)) {
      const buf = Buffer.alloc(Math.min(HEADER_CHUNK, size - total));
      const { bytesRead } = await handle.read(buf, 0, buf.length, total);
      if (bytesRead === 0) break;
      chunks.push(buf.subarray(0, bytesRead));
      total += bytesRead;
      const sofar = Buffer.concat(chunks);
      const lf = sofar.indexOf('\n\n');
      const crlf = sofar.indexOf('\r\n\r\n');
      end = lf < 0 ? (crlf < 0 ? -1 : crlf + 4) : crlf < 0 ? lf + 2 : Math.min(lf + 2, crlf + 4);
      if (end >= 0) break;
    }
    const all = Buffer.concat(chunks);
    const headers = end >= 0 ? all.subarray(0, end) : all;
    // A message starts with a header field ("Name: value"); Maildirs copied from mbox may keep a
    // leading "From " line, which Dovecot accepts too.
    const first = headers.subarray(0, Math.min(headers.length, 1000)).toString('latin1');
    const looksLikeMessage = size > 0 && (/^[!-9;-~]+:/.test(first) || /^From /.test(first));
    return { headers, fileSize: size, looksLikeMessage };
  } finally {
    await handle.close();
  }
}

/** The size of a file as IMAP serves it (CRLF line ends), from its bytes. */
export function servedSize(bytes: Buffer): number {
  return bytes.length + bareLfCount(bytes);
}

export function bareLfCount(bytes: Buffer): number {
  let n = 0;
  for (let i = bytes.indexOf(10); i >= 0; i = bytes.indexOf(10, i + 1)) if (i === 0 || bytes[i - 1] !== 13) n++;
  return n;
}

/** Reads a file and returns it as IMAP would serve it. */
export async function readServed(file: string): Promise<Buffer> {
  const bytes = await readFile(file);
  if (bareLfCount(bytes) === 0) return bytes;
  const out = Buffer.alloc(servedSize(bytes));
  let o = 0;
  for (let i = 0; i < bytes.length; i++) {
    if (bytes[i] === 10 && (i === 0 || bytes[i - 1] !== 13)) out[o++] = 13;
    out[o++] = bytes[i]!;
  }
  return out;
}

/** Syncs a directory, so that renames into it survive a crash. */
export async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
