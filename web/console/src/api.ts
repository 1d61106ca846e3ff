/** The console's JSON API as the page uses it (types mirror src/console/*). */

export interface LedgerState {
  state: 'ok' | 'missing' | 'error';
  location: string;
  code?: string;
  message?: string;
}

export interface Batch {
  name: string;
  mailboxes: number;
  statuses: Record<string, number>;
  copied: number;
  toCopy: number | null;
  skipped: number;
  startedAt: string | null;
  lastUpdateAt: string | null;
  finishedAt: string | null;
  rate: number | null;
  etaSeconds: number | null;
}

export interface Throughput {
  bucketSeconds: number;
  start: string;
  counts: number[];
}

export interface Job {
  line: number;
  source: string;
  destination: string;
  user: string;
  status: string;
  code?: string;
  message?: string;
  copied: number;
  skipped: number;
  toCopy?: number;
  seconds?: number;
  verdict?: string;
  /** A parked (`waiting`) mailbox: when it goes on. */
  resumeAt?: string;
  updatedAt?: string;
}

export interface TablePage {
  total: number;
  matched: number;
  offset: number;
  limit: number;
  rows: Job[];
}

export interface Folder {
  source: string;
  destination: string;
  copies: number;
  intents: number;
  skipped: number;
  sourceCount?: number;
  syncedAt?: string;
}

export interface Skip {
  folder: string;
  uid: number;
  code: string;
  reason: string;
  attempts?: number;
  at?: string;
}

export interface Detail {
  job: Job;
  folders: Folder[];
  skipped: Skip[];
  report: { available: boolean; reason?: string };
}

export interface ErrorDoc {
  code: string;
  scope?: string;
  exitCode?: string;
  symptom: string;
  cause: string;
  resolution: string;
}

/** An answer the API refused, with its message. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly ledger?: LedgerState,
  ) {
    super(message);
  }
}

/** GETs a JSON resource of the console (the session cookie goes along). */
export async function get<T>(path: string): Promise<T> {
  const res = await fetch(path, { headers: { Accept: 'application/json' }, credentials: 'same-origin' });
  const body = (await res.json().catch(() => ({}))) as T & { error?: { message?: string }; ledger?: LedgerState };
  if (!res.ok && !(path === '/api/batches' && body.ledger)) throw new ApiError(res.status, body.error?.message ?? `${res.status} ${res.statusText}`, body.ledger);
  return body;
}

let errorDocs: Promise<Map<string, ErrorDoc>> | undefined;

/** The error-code explanations (fetched once). */
export function explanations(): Promise<Map<string, ErrorDoc>> {
  errorDocs ??= get<{ errors: ErrorDoc[] }>('/api/errors').then((r) => new Map(r.errors.map((d) => [d.code, d])));
  return errorDocs;
}

export interface BatchAction {
  id: number;
  action: 'retry' | 'pause' | 'resume' | 'cancel';
  operator: string;
  at: string;
  mailboxes: number;
  note?: string;
}

export interface ActionsInfo {
  operator: string;
  mode: 'queued' | 'local';
  state: 'active' | 'paused' | 'cancelled';
  actions: BatchAction[];
}

export interface ActionResult {
  action: string;
  mailboxes: number;
  note?: string;
  command?: string;
}

export interface Worker {
  id: string;
  host: string;
  pid: number;
  startedAt: string;
  lastSeen: string;
  heartbeatSeconds: number;
  running: { batch: string; line: number; source: string }[];
  stoppedAt?: string;
  alive: boolean;
}

let csrf: Promise<string> | undefined;

/** POSTs to the console with the session's CSRF token; resolves with the JSON answer. */
export async function post<T>(path: string): Promise<T> {
  csrf ??= get<{ csrf: string | null }>('/api/session').then((s) => s.csrf ?? '');
  const res = await fetch(path, { method: 'POST', headers: { Accept: 'application/json', 'X-CSRF-Token': await csrf }, credentials: 'same-origin' });
  const body = (await res.json().catch(() => ({}))) as T & { error?: { code?: string; message?: string } };
  if (!res.ok) throw new ApiError(res.status, [body.error?.code, body.error?.message ?? `${res.status} ${res.statusText}`].filter(Boolean).join(': '));
  return body;
}
