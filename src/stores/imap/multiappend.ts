/**
 * APPEND and MULTIAPPEND (RFC 3502) on top of an imapflow connection, with the message bytes
 * written to the socket as they are.
 *
 * Why hand-written: imapflow 2.1.2 sends one APPEND per message and has no MULTIAPPEND. Writing
 * is the bottleneck of an IMAP-to-IMAP copy (every APPEND is its own save transaction on the
 * server); one MULTIAPPEND of many messages is one transaction, measured at 2-2.5x the rate of
 * single APPENDs against Dovecot (shared/notes/performance-facts.md). And imapflow's command
 * compiler joins a command and its literals into one new Buffer, which its writer then copies
 * once more to add the final CRLF: a 50 MB message was held three times (profiled: 270 MB peak
 * RSS for one 50 MB message). Here imapflow compiles and sends only the command line up to the
 * first literal's size (`{N}`, synchronizing); on the server's "+" the bodies go to the socket
 * as they are (no copy), the next messages' flags, dates and sizes between them, as
 * non-synchronizing literals (`{N+}`) when the server has LITERAL+ and the caller allows it,
 * else each after its own "+".
 *
 * RFC 3502 §6.3.11: the command is atomic - if the server refuses any message, none is
 * appended. The caller relies on that to fall back to single APPENDs to isolate a bad item.
 */
import type { ImapFlow } from 'imapflow';
import { encodePath, formatDateTime, formatFlag } from 'imapflow/lib/tools.js';
import type { AppendItem } from '../mail-store.js';

/** The part of imapflow's connection we use (exec, writeSocket and the counter are internal but stable in 2.x). */
interface ExecConnection {
  exec(command: string, attributes: unknown[], options?: { onPlusTag?: () => Promise<void> }): Promise<{ response: ResponseNode; next: () => void }>;
  writeSocket?: { write(chunk: Buffer): boolean; destroyed?: boolean };
  writeBytesCounter?: number;
}
interface ResponseNode {
  attributes?: { section?: { value?: unknown }[] }[];
}

/** Result of one APPEND or MULTIAPPEND: the UIDs the server assigned, in order, when it said (UIDPLUS). */
export interface MultiAppendResult {
  uidValidity: bigint | undefined;
  uids: number[] | undefined;
}

/** An item's arguments before its literal, as they go on the wire: ` (\Seen $Label) "01-Jan-2024 10:00:00 +0000" {123+}` + CRLF. */
export function itemPrefix(item: AppendItem, nonSync: boolean): Buffer {
  // Flags were checked against the atom grammar before they got here (core/flags.ts); dates are formatted by imapflow.
  const flags = item.flags.map((flag) => formatFlag(flag)).join(' ');
  const date = item.internalDate ? ` "${formatDateTime(item.internalDate)}"` : '';
  return Buffer.from(` (${flags})${date} {${item.body.length}${nonSync ? '+' : ''}}\r\n`, 'latin1');
}

/**
 * Appends all `items` to `mailbox` (the server's full name) in one command (an APPEND for one
 * item). Messages containing NUL bytes must not be passed here (they need literal8, see the
 * caller). `nonSync`: messages after the first follow without waiting for "+" (LITERAL+).
 */
export async function multiAppend(client: ImapFlow, mailbox: string, items: readonly AppendItem[], options: { nonSync?: boolean } = {}): Promise<MultiAppendResult> {
  if (items.length === 0) return { uidValidity: undefined, uids: [] };
  const conn = client as unknown as ExecConnection;
  const first = items[0]!;
  const attributes: unknown[] = [{ type: 'ATOM', value: encodePath(client, mailbox) }];
  attributes.push(first.flags.map((flag) => ({ type: 'ATOM', value: formatFlag(flag) })));
  if (first.internalDate) attributes.push({ type: 'STRING', value: formatDateTime(first.internalDate) });
  // The first literal's size, written verbatim at the end of the command line (imapflow adds the CRLF).
  attributes.push({ type: 'TEXT', value: `{${first.body.length}}` });
  const nonSync = options.nonSync === true;
  let next = 0;
  const write = (chunk: Buffer) => {
    const socket = conn.writeSocket;
    if (!socket || socket.destroyed) throw new Error('the connection closed while a message was being sent');
    conn.writeBytesCounter = (conn.writeBytesCounter ?? 0) + chunk.length;
    socket.write(chunk);
  };
  // Each "+" asks for the literal announced last: send it, then what follows up to the next
  // synchronizing literal (or the end of the command).
  const onPlusTag = async () => {
    if (next >= items.length) return;
    write(items[next]!.body);
    next++;
    while (next < items.length) {
      write(itemPrefix(items[next]!, nonSync));
      if (!nonSync) return;
      write(items[next]!.body);
      next++;
    }
    write(Buffer.from('\r\n'));
  };
  const response = await conn.exec('APPEND', attributes, { onPlusTag });
  try {
    return parseAppendUid(response.response, items.length);
  } finally {
    response.next();
  }
}

/** Reads `[APPENDUID uidvalidity uid-set]` from a tagged OK (RFC 4315 §3). */
function parseAppendUid(response: ResponseNode, count: number): MultiAppendResult {
  const section = response?.attributes?.[0]?.section;
  const code = typeof section?.[0]?.value === 'string' ? section[0].value.toUpperCase() : '';
  if (code !== 'APPENDUID') return { uidValidity: undefined, uids: undefined };
  const validity = String(section?.[1]?.value ?? '');
  const set = String(section?.[2]?.value ?? '');
  const uids = expandUidSet(set);
  return {
    uidValidity: /^\d{1,10}$/.test(validity) ? BigInt(validity) : undefined,
    uids: uids && uids.length === count ? uids : undefined,
  };
}

/**
 * Expands a UID set such as `101:103,107` into its UIDs, in the order given (RFC 4315 allows
 * `uid-range` in either direction). Returns undefined for anything malformed or huge: a hostile
 * server must not make us allocate without bound.
 */
export function expandUidSet(set: string, limit = 100_000): number[] | undefined {
  if (!/^[0-9:,]+$/.test(set)) return undefined;
  const out: number[] = [];
  for (const part of set.split(',')) {
    const [a, b] = part.split(':');
    const from = Number(a);
    const to = b === undefined ? from : Number(b);
    if (!Number.isSafeInteger(from) || !Number.isSafeInteger(to) || from < 1 || to < 1) return undefined;
    const step = to >= from ? 1 : -1;
    if (Math.abs(to - from) + out.length >= limit) return undefined;
    for (let u = from; u !== to + step; u += step) out.push(u);
  }
  return out;
}
