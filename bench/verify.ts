/**
 * Independent fidelity check with imapflow: reads every folder of a user (EXAMINE, so nothing
 * changes) and compares a copy with the source: folders, message count, the multiset of SHA-256
 * of the raw messages, flags (without \Recent) and INTERNALDATE. Differences are summarised in a
 * short sentence ("adds header X-TUID (22 B) to 250/250; drops keywords Work ×3 ...").
 */
import { createHash } from 'node:crypto';
import { imapClient, type ImapTarget } from './corpus.js';

export interface MessageInfo {
  uid: number;
  sha256: string;
  size: number;
  /** The header block (up to the empty line), for describing differences. */
  header: string;
  /** sha256 of everything after the header block. */
  bodySha256: string;
  messageId: string;
  flags: string[];
  internalDate: number;
}

export interface FolderInfo {
  path: string;
  noSelect: boolean;
  messages: MessageInfo[];
}

export interface Snapshot {
  folders: Map<string, FolderInfo>;
  messages: number;
  bytes: number;
}

function splitHeader(raw: Buffer): { header: string; body: Buffer } {
  let end = raw.indexOf('\r\n\r\n');
  let sep = 4;
  if (end < 0) {
    end = raw.indexOf('\n\n');
    sep = 2;
  }
  if (end < 0) return { header: raw.toString('latin1'), body: Buffer.alloc(0) };
  return { header: raw.subarray(0, end).toString('latin1'), body: raw.subarray(end + sep) };
}

/** Header fields (unfolded text, one entry per field) in order. */
function headerFields(header: string): string[] {
  const fields: string[] = [];
  for (const line of header.split(/\r?\n/)) {
    if (/^[ \t]/.test(line) && fields.length) fields[fields.length - 1] += '\r\n' + line;
    else if (line) fields.push(line);
  }
  return fields;
}

function fieldName(field: string): string {
  const i = field.indexOf(':');
  return i > 0 ? field.slice(0, i) : field.slice(0, 20);
}

/** Reads every selectable folder of a user with bodies, flags and dates. */
export async function snapshot(target: ImapTarget, opts: { bodies?: boolean } = {}): Promise<Snapshot> {
  const bodies = opts.bodies ?? true;
  const c = imapClient(target);
  await c.connect();
  const folders = new Map<string, FolderInfo>();
  let messages = 0;
  let bytes = 0;
  try {
    const list = await c.list();
    for (const box of list) {
      const noSelect = box.flags.has('\\Noselect') || box.flags.has('\\NonExistent');
      const info: FolderInfo = { path: box.path, noSelect, messages: [] };
      folders.set(box.path, info);
      if (noSelect) continue;
      const lock = await c.getMailboxLock(box.path, { readOnly: true });
      try {
        const mailbox = c.mailbox;
        if (mailbox && mailbox.exists > 0) {
          for await (const f of c.fetch('1:*', { uid: true, flags: true, internalDate: true, size: true, ...(bodies ? { source: true } : {}) })) {
            if (bodies && !f.source) continue; // an unsolicited FETCH (FLAGS) update, not our answer
            const raw = f.source ?? Buffer.alloc(0);
            const { header, body } = splitHeader(raw);
            const mid = /^message-id:\s*(.*)$/im.exec(header)?.[1]?.trim() ?? '';
            info.messages.push({
              uid: f.uid,
              sha256: bodies ? createHash('sha256').update(raw).digest('hex') : '',
              size: f.size ?? raw.length,
              header,
              bodySha256: bodies ? createHash('sha256').update(body).digest('hex') : '',
              messageId: mid,
              flags: [...(f.flags ?? [])].filter((x) => x !== '\\Recent').sort(),
              internalDate: f.internalDate instanceof Date ? f.internalDate.getTime() : new Date(f.internalDate ?? 0).getTime(),
            });
            messages++;
            bytes += f.size ?? raw.length;
          }
        }
      } finally {
        lock.release();
      }
    }
  } finally {
    await c.logout().catch(() => undefined);
  }
  return { folders, messages, bytes };
}

/** Message counts per folder through STATUS (cheap; used after every run). */
export async function folderCounts(target: ImapTarget): Promise<Map<string, number>> {
  const c = imapClient(target);
  await c.connect();
  const counts = new Map<string, number>();
  try {
    for (const box of await c.list()) {
      if (box.flags.has('\\Noselect') || box.flags.has('\\NonExistent')) continue;
      const st = await c.status(box.path, { messages: true });
      counts.set(box.path, st ? (st.messages ?? 0) : 0);
    }
  } finally {
    await c.logout().catch(() => undefined);
  }
  return counts;
}

/** Compares STATUS counts with the source snapshot; '' when equal. */
export function describeCounts(src: Snapshot, dst: Map<string, number>): string {
  const issues: string[] = [];
  let missing = 0;
  let extra = 0;
  const missingFolders: string[] = [];
  for (const [path, f] of src.folders) {
    if (f.noSelect) continue;
    const n = dst.get(path);
    if (n === undefined) {
      missingFolders.push(path);
      missing += f.messages.length;
    } else if (n < f.messages.length) missing += f.messages.length - n;
    else if (n > f.messages.length) extra += n - f.messages.length;
  }
  if (missingFolders.length) issues.push(`missing folders: ${few(missingFolders)}`);
  if (missing) issues.push(`${missing} messages missing`);
  if (extra) issues.push(`${extra} extra messages`);
  return issues.join('; ');
}

export interface Fidelity {
  exact: boolean;
  summary: string;
  issues: string[];
  details: {
    missingFolders: string[];
    extraFolders: string[];
    missingMessages: number;
    extraMessages: number;
    headerChanges: Record<string, { count: number; avgBytes: number }>;
    bodyChanges: number;
    flagsDropped: Record<string, number>;
    flagsAdded: Record<string, number>;
    flagsKept: string[];
    dateMismatches: number;
    dateExample?: string;
  };
}

/** At most `max` items, then "+N more". */
function few(items: string[], max = 4): string {
  return items.length <= max ? items.join(', ') : `${items.slice(0, max).join(', ')} +${items.length - max} more`;
}

function bump(map: Map<string, number>, key: string, by = 1): void {
  map.set(key, (map.get(key) ?? 0) + by);
}

/** Compares a copy with the source. */
export function compare(src: Snapshot, dst: Snapshot): Fidelity {
  const missingFolders: string[] = [];
  const extraFolders: string[] = [];
  let missingMessages = 0;
  let extraMessages = 0;
  let bodyChanges = 0;
  let dateMismatches = 0;
  let dateExample: string | undefined;
  let pairs = 0;
  let pairsWithHeaderChange = 0;
  const headerAdded = new Map<string, { count: number; bytes: number }>();
  const headerRemoved = new Map<string, { count: number; bytes: number }>();
  const flagsDropped = new Map<string, number>();
  const flagsAdded = new Map<string, number>();
  const flagsSeen = new Map<string, number>();

  for (const [path, sf] of src.folders) {
    const df = dst.folders.get(path);
    if (!df) {
      if (!sf.noSelect) missingFolders.push(path);
      missingMessages += sf.messages.length;
      continue;
    }
    // pair exact copies first (multiset of SHA-256), then by Message-ID
    const dstBySha = new Map<string, MessageInfo[]>();
    for (const m of df.messages) dstBySha.set(m.sha256, [...(dstBySha.get(m.sha256) ?? []), m]);
    const pairList: [MessageInfo, MessageInfo][] = [];
    const unmatched: MessageInfo[] = [];
    for (const m of sf.messages) {
      const cands = dstBySha.get(m.sha256);
      const d = cands?.shift();
      if (d) pairList.push([m, d]);
      else unmatched.push(m);
    }
    const dstLeft = new Map<string, MessageInfo[]>();
    for (const list of dstBySha.values()) for (const m of list) dstLeft.set(m.messageId, [...(dstLeft.get(m.messageId) ?? []), m]);
    for (const m of unmatched) {
      const d = m.messageId ? dstLeft.get(m.messageId)?.shift() : undefined;
      if (!d) {
        missingMessages++;
        continue;
      }
      pairList.push([m, d]);
      const sFields = headerFields(m.header);
      const dFields = headerFields(d.header);
      const sCount = new Map<string, number>();
      for (const f of sFields) bump(sCount, f);
      let changed = false;
      for (const f of dFields) {
        const n = sCount.get(f) ?? 0;
        if (n > 0) sCount.set(f, n - 1);
        else {
          const e = headerAdded.get(fieldName(f)) ?? { count: 0, bytes: 0 };
          e.count++;
          e.bytes += Buffer.byteLength(f, 'latin1') + 2;
          headerAdded.set(fieldName(f), e);
          changed = true;
        }
      }
      for (const [f, n] of sCount) {
        if (n <= 0) continue;
        const e = headerRemoved.get(fieldName(f)) ?? { count: 0, bytes: 0 };
        e.count += n;
        e.bytes += (Buffer.byteLength(f, 'latin1') + 2) * n;
        headerRemoved.set(fieldName(f), e);
        changed = true;
      }
      if (changed) pairsWithHeaderChange++;
      if (m.bodySha256 !== d.bodySha256) bodyChanges++;
    }
    for (const list of dstLeft.values()) extraMessages += list.length;
    for (const [s, d] of pairList) {
      pairs++;
      const dset = new Set(d.flags);
      const sset = new Set(s.flags);
      for (const f of s.flags) {
        bump(flagsSeen, f);
        if (!dset.has(f)) bump(flagsDropped, f);
      }
      for (const f of d.flags) if (!sset.has(f)) bump(flagsAdded, f);
      if (s.internalDate !== d.internalDate) {
        dateMismatches++;
        dateExample ??= `${new Date(s.internalDate).toISOString()} -> ${new Date(d.internalDate).toISOString()}`;
      }
    }
  }
  for (const [path, df] of dst.folders) {
    if (!src.folders.has(path) && !(df.noSelect || (path === 'INBOX' && df.messages.length === 0))) {
      extraFolders.push(path);
      extraMessages += df.messages.length;
    }
  }

  const issues: string[] = [];
  if (missingFolders.length) issues.push(`missing folders: ${few(missingFolders.map((f) => JSON.stringify(f)))}`);
  if (extraFolders.length) issues.push(`extra folders: ${few(extraFolders.map((f) => JSON.stringify(f)))}`);
  if (missingMessages) issues.push(`${missingMessages} messages missing`);
  if (extraMessages) issues.push(`${extraMessages} extra messages`);
  for (const [name, e] of headerAdded) issues.push(`adds header ${name} (${Math.round(e.bytes / e.count)} B) to ${e.count}/${pairs}`);
  for (const [name, e] of headerRemoved) issues.push(`removes header ${name} from ${e.count}/${pairs}`);
  if (pairsWithHeaderChange === 0 && bodyChanges) issues.push(`${bodyChanges} messages changed`);
  else if (bodyChanges) issues.push(`${bodyChanges} bodies changed`);
  const isKeyword = (f: string) => !f.startsWith('\\');
  const droppedKw = [...flagsDropped].filter(([f]) => isKeyword(f));
  const droppedSys = [...flagsDropped].filter(([f]) => !isKeyword(f));
  const flagsKept = [...flagsSeen.keys()].filter((f) => !flagsDropped.has(f)).sort();
  if (droppedKw.length) {
    const kept = flagsKept.filter(isKeyword);
    issues.push(`drops keywords ${droppedKw.map(([f, n]) => `${f} ×${n}`).join(', ')}${kept.length ? ` (kept: ${kept.join(', ')})` : ''}`);
  }
  if (droppedSys.length) issues.push(`drops flags ${droppedSys.map(([f, n]) => `${f} ×${n}`).join(', ')}`);
  if (flagsAdded.size) issues.push(`adds flags ${[...flagsAdded].map(([f, n]) => `${f} ×${n}`).join(', ')}`);
  if (dateMismatches) issues.push(`INTERNALDATE differs on ${dateMismatches}/${pairs} (e.g. ${dateExample})`);

  const toRecord = (m: Map<string, { count: number; bytes: number }>, sign: string) =>
    Object.fromEntries([...m].map(([k, e]) => [`${sign}${k}`, { count: e.count, avgBytes: Math.round(e.bytes / e.count) }]));
  return {
    exact: issues.length === 0,
    summary: issues.length ? issues.join('; ') : 'exact',
    issues,
    details: {
      missingFolders,
      extraFolders,
      missingMessages,
      extraMessages,
      headerChanges: { ...toRecord(headerAdded, '+'), ...toRecord(headerRemoved, '-') },
      bodyChanges,
      flagsDropped: Object.fromEntries(flagsDropped),
      flagsAdded: Object.fromEntries(flagsAdded),
      flagsKept,
      dateMismatches,
      ...(dateExample ? { dateExample } : {}),
    },
  };
}
