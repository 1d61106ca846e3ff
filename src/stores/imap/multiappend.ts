/**
 * MULTIAPPEND (RFC 3502) on top of an imapflow connection.
 *
 * Why hand-written: imapflow 2.1.2 sends one APPEND per message and has no MULTIAPPEND. Writing
 * is the bottleneck of an IMAP-to-IMAP copy (every APPEND is its own save transaction on the
 * server); one MULTIAPPEND of many messages is one transaction, measured at 2-2.5x the rate of
 * single APPENDs against Dovecot (shared/notes/performance-facts.md). We reuse imapflow's own
 * command compiler (quoting, literals, LITERAL+/continuations) through its `exec`, so the only
 * new code is the argument list and the APPENDUID parsing.
 *
 * RFC 3502 §6.3.11: the command is atomic - if the server refuses any message, none is
 * appended. The caller relies on that to fall back to single APPENDs to isolate a bad item.
 */
import type { ImapFlow } from 'imapflow';
import { encodePath, formatDateTime, formatFlag } from 'imapflow/lib/tools.js';
import type { AppendItem } from '../mail-store.js';

/** The part of imapflow's connection we use (exec is internal but stable in 2.x). */
interface ExecConnection {
  exec(command: string, attributes: unknown[], options?: object): Promise<{ response: ResponseNode; next: () => void }>;
}
interface ResponseNode {
  attributes?: { section?: { value?: unknown }[] }[];
}

/** Result of one MULTIAPPEND: the UIDs the server assigned, in order, when it said (UIDPLUS). */
export interface MultiAppendResult {
  uidValidity: bigint | undefined;
  uids: number[] | undefined;
}

/**
 * Appends all `items` to `mailbox` (the server's full name) in one command.
 * Messages containing NUL bytes must not be passed here (they need literal8, see the caller).
 */
export async function multiAppend(client: ImapFlow, mailbox: string, items: readonly AppendItem[]): Promise<MultiAppendResult> {
  const conn = client as unknown as ExecConnection;
  const attributes: unknown[] = [{ type: 'ATOM', value: encodePath(client, mailbox) }];
  for (const item of items) {
    attributes.push(item.flags.map((flag) => ({ type: 'ATOM', value: formatFlag(flag) })));
    if (item.internalDate) attributes.push({ type: 'STRING', value: formatDateTime(item.internalDate) });
    attributes.push({ type: 'LITERAL', value: item.body });
  }
  const response = await conn.exec('APPEND', attributes);
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
