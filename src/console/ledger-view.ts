/**
 * What the console reads from a ledger, through its own SELECTs over the tables that
 * src/state/ledger.ts and src/state/pg-ledger.ts write: batch_job (one row per mailbox of a
 * batch), mailbox, folder, message and skipped.
 *
 * The reader takes the schema as it finds it: columns added by later schema versions are used
 * when present (`to_copy`, `verdict`) and read as unknown when not, and a status it does not
 * know is passed on as it is written. Every URL and text it returns has passwords masked.
 */
import { redactUrl } from '../core/endpoint.js';
import { maskUrl } from '../state/types.js';
import type { LedgerDb, Row } from './ledger-db.js';

/** One status of one batch: how many mailboxes, and their sums. */
export interface StatusGroup {
  batch: string;
  status: string;
  mailboxes: number;
  copied: number;
  skipped: number;
  /** The sum of the rows' recorded to-copy counts, over `toCopyKnown` rows. */
  toCopy: number;
  toCopyKnown: number;
  /** The earliest start the rows show (a finished row's time less its duration). */
  firstAt: string | undefined;
  lastAt: string | undefined;
}

/** One mailbox of a batch. */
export interface JobView {
  line: number;
  source: string;
  destination: string;
  /** The source user, for display and search. */
  user: string;
  status: string;
  code: string | undefined;
  message: string | undefined;
  copied: number;
  skipped: number;
  toCopy: number | undefined;
  seconds: number | undefined;
  report: string | undefined;
  verdict: string | undefined;
  /** A parked (`waiting`) mailbox: when it goes on (schema 7). */
  resumeAt: string | undefined;
  updatedAt: string | undefined;
}

/** A folder of a mailbox as the ledger records it. */
export interface FolderView {
  source: string;
  destination: string;
  copies: number;
  intents: number;
  skipped: number;
  sourceCount: number | undefined;
  syncedAt: string | undefined;
}

/** What the throughput chart needs of a row. */
export interface JobTimes {
  status: string;
  copied: number;
  seconds: number | undefined;
  updatedAt: string | undefined;
}

/** What the mailbox table asks for. */
export interface TableQuery {
  status?: string | undefined;
  /** A part of the source or destination URL (so of the user), any case. */
  q?: string | undefined;
  sort?: string | undefined;
  dir?: 'asc' | 'desc' | undefined;
  offset?: number | undefined;
  limit?: number | undefined;
}

/** One page of the table. */
export interface TablePage {
  /** Mailboxes in the batch. */
  total: number;
  /** Mailboxes that match the filter and search. */
  matched: number;
  offset: number;
  limit: number;
  rows: JobView[];
}

/** The statuses in the table's order (sort by status); any other status follows them. */
export const STATUS_ORDER = ['running', 'queued', 'waiting', 'paused', 'not started', 'failed', 'partial', 'interrupted', 'cancelled', 'complete'];

/**
 * The table's sort keys, as SQL over batch_job (both dialects). The user is the URL's user part,
 * so sorting by the source URL sorts by user within a batch (one source server).
 */
const SORTS: Record<string, (col: (n: string) => string, dialect: 'sqlite' | 'pg') => string> = {
  line: () => 'line',
  user: () => 'source',
  status: () => `CASE status ${STATUS_ORDER.map((s, i) => `WHEN '${s}' THEN ${i}`).join(' ')} ELSE ${STATUS_ORDER.length} END`,
  copied: () => 'copied',
  skipped: () => 'skipped',
  code: () => "coalesce(code, '')",
  seconds: () => 'coalesce(seconds, -1)',
  progress: (col, dialect) =>
    `CASE WHEN status = 'complete' THEN 1.0 WHEN ${col('to_copy')} > 0 THEN ${dialect === 'pg' ? 'least' : 'min'}(1.0, copied * 1.0 / ${col('to_copy')}) ELSE -1.0 END`,
};

/** The sort keys the table accepts. */
export const SORT_KEYS = Object.keys(SORTS);

/** A skipped item: folder, UID, code and the server's own words. */
export interface SkipView {
  folder: string;
  uid: number;
  code: string;
  reason: string;
  attempts: number | undefined;
  at: string | undefined;
}

/** What /metrics reports from the ledger as a whole. */
export interface LedgerTotals {
  messagesCopied: number;
  bytesCopied: number;
  skippedByCode: { code: string; items: number }[];
}

/** A text as it may be shown: passwords in URLs masked. */
export function shown(text: string): string;
export function shown(text: string | undefined | null): string | undefined;
export function shown(text: string | undefined | null): string | undefined {
  return text === undefined || text === null ? undefined : maskUrl(redactUrl(text));
}

const num = (v: unknown): number => (v === null || v === undefined ? 0 : Number(v));
const optNum = (v: unknown): number | undefined => (v === null || v === undefined ? undefined : Number(v));
const optText = (v: unknown): string | undefined => (v === null || v === undefined || v === '' ? undefined : String(v));
const iso = (v: unknown): string | undefined => (v === null || v === undefined ? undefined : v instanceof Date ? v.toISOString() : String(v));

/** The user of a mailbox URL (`imap://alice@host` -> alice), else the URL. */
export function userOf(url: string): string {
  const m = /^[a-z]+:\/\/([^@/]+)@/i.exec(url);
  if (!m) return url;
  try {
    return decodeURIComponent(m[1]!.split(':')[0]!);
  } catch {
    return m[1]!;
  }
}

/** The console's queries over one ledger connection. */
export class LedgerView {
  constructor(readonly db: LedgerDb) {}

  get location(): string {
    return this.db.location;
  }

  /** A column of batch_job when the schema has it, else NULL (an older or newer schema). */
  private async jobColumns(): Promise<(name: string) => string> {
    const have = await this.db.columns('batch_job');
    return (name) => (have.has(name) ? name : 'NULL');
  }

  /** Per batch and status: counts and sums. Empty when the ledger has no batch table yet. */
  async statusGroups(): Promise<StatusGroup[]> {
    const have = await this.db.columns('batch_job');
    if (have.size === 0) return [];
    const toCopy = have.has('to_copy') ? 'to_copy' : 'NULL';
    const start =
      this.db.dialect === 'sqlite'
        ? "strftime('%Y-%m-%dT%H:%M:%fZ', julianday(updated_at) - coalesce(seconds, 0) / 86400.0)"
        : "updated_at - coalesce(seconds, 0) * interval '1 second'";
    const rows = await this.db.all(
      `SELECT batch, status, count(*) AS n, sum(copied) AS copied, sum(skipped) AS skipped, sum(${toCopy}) AS to_copy, count(${toCopy}) AS to_copy_known,
         min(${start}) AS first_at, max(updated_at) AS last_at
       FROM ${this.db.table('batch_job')} GROUP BY batch, status ORDER BY batch, status`,
    );
    return rows.map((r) => ({
      batch: String(r.batch),
      status: String(r.status),
      mailboxes: num(r.n),
      copied: num(r.copied),
      skipped: num(r.skipped),
      toCopy: num(r.to_copy),
      toCopyKnown: num(r.to_copy_known),
      firstAt: iso(r.first_at),
      lastAt: iso(r.last_at),
    }));
  }

  /**
   * One page of a batch's mailboxes: filtered by status, searched, sorted (then by line) and cut
   * in the database, so that only the page's rows are read out (a batch may have many thousands).
   */
  async jobPage(batch: string, query: TableQuery): Promise<TablePage> {
    const col = await this.jobColumns();
    const limit = Math.max(1, Math.min(500, query.limit ?? 100));
    if (col('batch') === 'NULL') return { total: 0, matched: 0, offset: 0, limit, rows: [] };
    const where = ['batch = ?'];
    const params: unknown[] = [batch];
    if (query.status) {
      where.push('status = ?');
      params.push(query.status);
    }
    const q = query.q?.trim();
    if (q) {
      const like = this.db.dialect === 'pg' ? 'ILIKE' : 'LIKE';
      where.push(`(source ${like} ? ESCAPE '\\' OR destination ${like} ? ESCAPE '\\')`);
      const pattern = `%${q.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
      params.push(pattern, pattern);
    }
    const t = this.db.table('batch_job');
    const [counts] = await this.db.all(`SELECT (SELECT count(*) FROM ${t} WHERE batch = ?) AS total, count(*) AS matched FROM ${t} WHERE ${where.join(' AND ')}`, [batch, ...params]);
    const matched = num(counts?.matched);
    const offset = Math.max(0, Math.min(query.offset ?? 0, Math.max(0, matched - 1)));
    const order = (SORTS[query.sort ?? 'line'] ?? SORTS.line!)(col, this.db.dialect);
    const rows = await this.db.all(
      `SELECT line, source, destination, status, code, message, copied, skipped, ${col('to_copy')} AS to_copy, seconds, report, ${col('verdict')} AS verdict, ${col('resume_at')} AS resume_at, updated_at
       FROM ${t} WHERE ${where.join(' AND ')} ORDER BY ${order} ${query.dir === 'desc' ? 'DESC' : 'ASC'}, line LIMIT ? OFFSET ?`,
      [...params, limit, offset],
    );
    return { total: num(counts?.total), matched, offset, limit, rows: rows.map(jobOf) };
  }

  /** The times of every mailbox of a batch, for the throughput chart. */
  async jobTimes(batch: string): Promise<JobTimes[]> {
    if ((await this.db.columns('batch_job')).size === 0) return [];
    const rows = await this.db.all(`SELECT status, copied, seconds, updated_at FROM ${this.db.table('batch_job')} WHERE batch = ?`, [batch]);
    return rows.map((r) => ({ status: String(r.status), copied: num(r.copied), seconds: optNum(r.seconds), updatedAt: iso(r.updated_at) }));
  }

  /** One mailbox of a batch by its line in the list. */
  async job(batch: string, line: number): Promise<JobView | undefined> {
    const col = await this.jobColumns();
    if (col('batch') === 'NULL') return undefined;
    const rows = await this.db.all(
      `SELECT line, source, destination, status, code, message, copied, skipped, ${col('to_copy')} AS to_copy, seconds, report, ${col('verdict')} AS verdict, ${col('resume_at')} AS resume_at, updated_at
       FROM ${this.db.table('batch_job')} WHERE batch = ? AND line = ? ORDER BY source LIMIT 1`,
      [batch, line],
    );
    return rows[0] ? jobOf(rows[0]) : undefined;
  }

  /**
   * The ledger's mailbox rows that a batch row stands for. A batch row names the mailbox by the
   * user's URL; the ledger names it as the run logged in: the same URL, a master login
   * (`imap://alice*admin@host`) or an authorization identity (`imap://admin@host (as alice)`).
   * `named` (the names in the mailbox's report file) is taken first when the ledger has it.
   */
  async mailboxIds(batch: string, line: number, named?: { source: string; destination: string }): Promise<number[]> {
    if ((await this.db.columns('mailbox')).size === 0) return [];
    const [job] = await this.db.all(`SELECT source, destination FROM ${this.db.table('batch_job')} WHERE batch = ? AND line = ? ORDER BY source LIMIT 1`, [batch, line]);
    if (!job) return [];
    const rows = (await this.db.all(`SELECT id, source, destination FROM ${this.db.table('mailbox')}`)).map((r) => ({ id: num(r.id), source: String(r.source), destination: String(r.destination) }));
    const exact = named ? rows.filter((r) => r.source === named.source && r.destination === named.destination) : [];
    if (exact.length > 0) return exact.map((r) => r.id);
    return rows.filter((r) => sameMailbox(String(job.source), r.source) && sameMailbox(String(job.destination), r.destination)).map((r) => r.id);
  }

  /** The folders of mailbox rows: source -> destination, copies, intents left over, skipped, last complete pass. */
  async folders(ids: readonly number[]): Promise<FolderView[]> {
    if (ids.length === 0) return [];
    const t = (n: string) => this.db.table(n);
    const rows = await this.db.all(
      `SELECT f.source_name, f.dest_name, f.source_count, f.synced_at,
         (SELECT count(*) FROM ${t('message')} WHERE folder_id = f.id AND state = 'done') AS copies,
         (SELECT count(*) FROM ${t('message')} WHERE folder_id = f.id AND state = 'intent') AS intents,
         (SELECT count(*) FROM ${t('skipped')} WHERE folder_id = f.id) AS skipped
       FROM ${t('folder')} f WHERE f.mailbox_id IN (${ids.map(() => '?').join(', ')})
       ORDER BY f.source_name`,
      ids,
    );
    return rows.map((r) => ({
      source: String(r.source_name),
      destination: String(r.dest_name),
      copies: num(r.copies),
      intents: num(r.intents),
      skipped: num(r.skipped),
      sourceCount: r.synced_at === null ? undefined : optNum(r.source_count),
      syncedAt: iso(r.synced_at),
    }));
  }

  /** The skipped items of mailbox rows, by folder and UID: code and the server's own words. */
  async skipped(ids: readonly number[]): Promise<SkipView[]> {
    if (ids.length === 0) return [];
    const t = (n: string) => this.db.table(n);
    const rows = await this.db.all(
      `SELECT f.source_name AS folder, s.source_uid, s.code, s.reason, s.attempts, s.at
       FROM ${t('skipped')} s JOIN ${t('folder')} f ON f.id = s.folder_id WHERE f.mailbox_id IN (${ids.map(() => '?').join(', ')})
       ORDER BY f.source_name, s.source_uid`,
      ids,
    );
    return rows.map((r) => ({ folder: String(r.folder), uid: num(r.source_uid), code: String(r.code), reason: shown(String(r.reason)), attempts: optNum(r.attempts), at: iso(r.at) }));
  }

  /** Messages and bytes recorded as copied, and skipped items by code, over the whole ledger. */
  async totals(): Promise<LedgerTotals> {
    if ((await this.db.columns('message')).size === 0) return { messagesCopied: 0, bytesCopied: 0, skippedByCode: [] };
    const [m] = await this.db.all(`SELECT count(*) AS n, coalesce(sum(size), 0) AS bytes FROM ${this.db.table('message')} WHERE state = 'done'`);
    const codes = await this.db.all(`SELECT code, count(*) AS n FROM ${this.db.table('skipped')} GROUP BY code ORDER BY code`);
    return { messagesCopied: num(m?.n), bytesCopied: num(m?.bytes), skippedByCode: codes.map((r) => ({ code: String(r.code), items: num(r.n) })) };
  }
}

/**
 * True when the ledger's mailbox `name` is the mailbox of the batch URL `url`
 * (`scheme://USER@HOST[:PORT]`): the same text, USER with a master login after a separator
 * (`USER*admin@HOST`), or another login acting as USER (`scheme://admin@HOST (as USER)`).
 */
export function sameMailbox(url: string, name: string): boolean {
  if (name === url) return true;
  const split = (u: string) => /^([a-z][a-z0-9+.-]*:\/\/)([^@/]*)@(.*)$/i.exec(u);
  const job = split(url);
  if (!job) return false;
  const [scheme, user, rest] = [job[1]!, job[2]!, job[3]!];
  const as = /^(.*) \(as (.*)\)$/.exec(name);
  if (as) {
    const login = split(as[1]!);
    return !!login && login[1] === scheme && login[3] === rest && (as[2] === user || as[2] === safeDecode(user));
  }
  const login = split(name);
  if (!login || login[1] !== scheme || login[3] !== rest) return false;
  const who = login[2]!;
  // A master login: the user, a separator that is not part of a user name here, the master user.
  return who.length > user.length + 1 && who.startsWith(user) && /^(?:[*!]|%25|%2A)/i.test(who.slice(user.length));
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

function jobOf(r: Row): JobView {
  const source = shown(String(r.source));
  return {
    line: num(r.line),
    source,
    destination: shown(String(r.destination)),
    user: userOf(source),
    status: String(r.status),
    code: optText(r.code),
    message: shown(optText(r.message)),
    copied: num(r.copied),
    skipped: num(r.skipped),
    toCopy: optNum(r.to_copy),
    seconds: optNum(r.seconds),
    report: optText(r.report),
    verdict: optText(r.verdict),
    resumeAt: r.status === 'waiting' && r.resume_at ? iso(r.resume_at) : undefined,
    updatedAt: iso(r.updated_at),
  };
}
