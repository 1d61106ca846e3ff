/**
 * The body of an item that has only compressed RTF (PR_RTF_COMPRESSED). pst-extractor
 * decompresses it (LZFu); rtf-stream-parser (MIT) de-encapsulates the HTML or plain text that
 * Outlook wraps in RTF (\fromhtml1, \fromtext). An RTF that encapsulates neither is returned as
 * is, to go in as an attachment: never nothing.
 */
import type { PSTMessage } from 'pst-extractor';
import { deEncapsulateSync } from 'rtf-stream-parser';
import { itemProps } from './item-props.js';

const PR_RTF_COMPRESSED = 0x1009;
/** LZFu writes at most 8 bytes of output per 17 of input; more than this claim is a corrupt header. */
const LZFU_MAX_RATIO = 8;
const RTF_MAX_BYTES = 64 * 1024 * 1024;

export type RtfBody = { kind: 'html' | 'text'; text: string } | { kind: 'rtf'; rtf: Buffer } | undefined;

/** The item's RTF body, de-encapsulated where possible; undefined when it has none. */
export function rtfBody(item: PSTMessage): RtfBody {
  const raw = itemProps(item).binary(PR_RTF_COMPRESSED);
  if (!raw || raw.length < 16) return undefined;
  // The header says how big the output is; pst-extractor allocates that much before it checks anything.
  const claimed = raw.readUInt32LE(4);
  if (claimed > RTF_MAX_BYTES || claimed > raw.length * LZFU_MAX_RATIO + 4096) throw new Error(`its compressed RTF body claims ${claimed} bytes from ${raw.length}: a damaged property`);
  const rtf = item.bodyRTF;
  if (!rtf) return undefined;
  try {
    const out = deEncapsulateSync(rtf, { decode: decodeCodepage, mode: 'either', htmlFixContentType: true });
    const text = typeof out.text === 'string' ? out.text : out.text.toString('utf8');
    return { kind: out.mode, text };
  } catch {
    // Not encapsulated HTML or text: a real RTF document, attached as it is.
    return { kind: 'rtf', rtf: Buffer.from(rtf, 'utf8') };
  }
}

/** RTF names Windows code pages (cp1252, cp932...); WHATWG's decoder knows them as windows-NNNN and by other labels. */
function decodeCodepage(buf: Buffer, enc: string): string {
  const label = /^cp12\d\d$/i.test(enc) ? `windows-${enc.slice(2)}` : /^cp(932|936|949|950)$/i.test(enc) ? { '932': 'shift_jis', '936': 'gbk', '949': 'euc-kr', '950': 'big5' }[enc.slice(2)]! : enc;
  try {
    return new TextDecoder(label).decode(buf);
  } catch {
    return buf.toString('latin1');
  }
}
