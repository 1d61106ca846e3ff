/**
 * Hostile behaviours of the scripted IMAP server: a source server that hands out wrong, missing,
 * mislabelled, endless or oversized data while it still says OK, and one that echoes the credentials
 * it received. They exist to test that a client notices instead of reporting success (README.md,
 * "Hostile faults"). server.ts calls these helpers from its FETCH, login and greeting code; this file
 * holds the fault types, how a FETCH is classified, and the chunked writers that keep a 300 MB answer
 * out of memory. It imports nothing from server.ts, so there is no cycle.
 */
import type net from 'node:net';

/** Per-folder maps are keyed by the folder's full name as configured (e.g. 'INBOX'); UIDs are real UIDs. */
export interface HostileFaults {
  /** A body FETCH of the message sends only its first n bytes as the literal ({n} matches what is sent). */
  truncateBody?: Record<string, Record<number, number>>;
  /** In a body FETCH, uidA is answered with uidB's bytes and vice versa, each labelled with the UID asked for. */
  swapBodies?: Record<string, Array<[number, number]>>;
  /** A body FETCH leaves these messages out of its answer and still ends with the tagged OK. */
  omitFromBodyFetch?: Record<string, number[]>;
  /** Body FETCHes in the folder (with 'all', listing FETCHes too): the tagged OK is written first, the `* n FETCH` data after it, in one write. */
  okBeforeData?: Record<string, boolean | 'all'>;
  /** Body FETCH answers in the folder (with 'all', listing answers too) carry no UID item, even for UID FETCH. */
  fetchWithoutUid?: Record<string, boolean | 'all'>;
  /** Every FETCH answer (listing and body) reports the message with realUid as `UID fakeUid`. */
  reportUidAs?: Record<string, Record<number, number>>;
  /** A body FETCH answers with a literal of exactly `bytes` bytes: the message, then filler lines; streamed. */
  oversizeBody?: Record<string, Record<number, number>>;
  /** A listing FETCH writes each `* n FETCH` line delayMs after the previous one, then the tagged OK. */
  slowListing?: Record<string, { delayMs: number }>;
  /** A listing FETCH first writes `count` harmless untagged lines (EXISTS only; see README.md for EXPUNGE). */
  untaggedFlood?: Record<string, { kind: 'EXISTS' | 'EXPUNGE'; count: number }>;
  /** A listing FETCH writes `* 1 FETCH (UID 1 FLAGS (` and `bytes` bytes of 'a', no CRLF, then goes silent. */
  endlessLine?: Record<string, { bytes: number }>;
  /** A body FETCH that includes one of these messages gets `* BYE Server shutting down` and a close, no data. */
  byeOnBodyFetch?: Record<string, number[]>;
  /** Failed LOGIN / AUTHENTICATE answers quote the credentials received (see README.md). */
  echoSecrets?: boolean;
}

/** Server-level: instead of a greeting, `* OK ` and `bytes` bytes of 'a', no CRLF, then silence. */
export interface HostileGreeting {
  bytes: number;
}

/** Largest single write of the streaming writers. */
export const MAX_CHUNK = 1024 * 1024;

/** What a FETCH is for, by its items. */
export type FetchKind = 'body' | 'listing' | 'other';

/** The part of a FETCH item the classification needs. */
export type FetchItemShape = { kind: 'simple' } | { kind: 'section'; section: string; partial?: unknown };

/**
 * 'body': the whole message is asked for (BODY[] / BODY.PEEK[] without a partial, or RFC822), what a
 * client downloads with. 'listing': no section at all, or only header sections (BODY.PEEK[HEADER],
 * HEADER.FIELDS, RFC822.HEADER), what a client lists with (mailmover: UID FLAGS INTERNALDATE
 * RFC822.SIZE BODY.PEEK[HEADER]). Anything else (BODY[TEXT], a partial BODY[]<0.100>) is 'other' and
 * no hostile fault touches it.
 */
export function fetchKind(items: readonly FetchItemShape[]): FetchKind {
  const sections = items.filter((i): i is Extract<FetchItemShape, { kind: 'section' }> => i.kind === 'section');
  if (sections.some((s) => s.section === '' && s.partial === undefined)) return 'body';
  if (sections.every((s) => s.section.startsWith('HEADER'))) return 'listing';
  return 'other';
}

/** A per-folder fault entry: the exact configured name, or INBOX under any spelling. */
export function forFolder<T>(byFolder: Record<string, T> | undefined, folder: string): T | undefined {
  if (!byFolder) return undefined;
  if (Object.prototype.hasOwnProperty.call(byFolder, folder)) return byFolder[folder];
  if (folder === 'INBOX') for (const [name, value] of Object.entries(byFolder)) if (name.toUpperCase() === 'INBOX') return value;
  return undefined;
}

/** The UID a swapBodies pair gives `uid`'s bytes from, if any. */
export function swapPartner(pairs: ReadonlyArray<readonly [number, number]> | undefined, uid: number): number | undefined {
  for (const [a, b] of pairs ?? []) {
    if (a === uid) return b;
    if (b === uid) return a;
  }
  return undefined;
}

const isCount = (n: unknown) => Number.isSafeInteger(n) && (n as number) >= 0;

/** Throws at start for a hostile fault that cannot be meant (a typo must not make a test pass silently). */
export function checkHostileFaults(user: string, faults: HostileFaults): void {
  const fail = (what: string) => {
    throw new Error(`scripted-imap: ${what} for ${user}`);
  };
  const perUid = (name: keyof HostileFaults, rec: Record<string, Record<number, number>> | undefined) => {
    for (const byUid of Object.values(rec ?? {})) for (const v of Object.values(byUid)) if (!isCount(v)) fail(`${name} needs whole numbers >= 0`);
  };
  perUid('truncateBody', faults.truncateBody);
  perUid('oversizeBody', faults.oversizeBody);
  perUid('reportUidAs', faults.reportUidAs);
  for (const pairs of Object.values(faults.swapBodies ?? {})) {
    for (const p of pairs) if (!Array.isArray(p) || p.length !== 2 || !p.every(isCount) || p[0] === p[1]) fail('swapBodies needs pairs of two different UIDs');
  }
  for (const v of Object.values(faults.slowListing ?? {})) if (!isCount(v?.delayMs)) fail('slowListing.delayMs must be a whole number >= 0');
  for (const v of Object.values(faults.untaggedFlood ?? {})) if (!isCount(v?.count) || (v.kind !== 'EXISTS' && v.kind !== 'EXPUNGE')) fail("untaggedFlood needs kind 'EXISTS' | 'EXPUNGE' and a count");
  for (const v of Object.values(faults.endlessLine ?? {})) if (!isCount(v?.bytes)) fail('endlessLine.bytes must be a whole number >= 0');
}

/** A writer that resolves once the bytes are accepted (after 'drain' when the socket is full). */
export type Write = (data: Buffer) => Promise<void>;

/** `total` bytes made of `unit` repeated (the last copy cut short), in writes of at most MAX_CHUNK. */
export async function writeRepeated(write: Write, unit: Buffer, total: number): Promise<void> {
  // One reusable chunk of whole units: never more than ~1 MiB of filler exists, whatever `total` is.
  const perChunk = Math.max(1, Math.floor(Math.min(MAX_CHUNK, Math.max(total, unit.length)) / unit.length));
  const chunk = Buffer.alloc(perChunk * unit.length, unit);
  let left = total;
  while (left > 0) {
    const n = Math.min(left, chunk.length);
    await write(n === chunk.length ? chunk : chunk.subarray(0, n));
    left -= n;
  }
}

/** Writes a buffer in pieces of at most MAX_CHUNK (a large message is not one huge write either). */
export async function writeChunked(write: Write, data: Buffer): Promise<void> {
  for (let at = 0; at < data.length; at += MAX_CHUNK) await write(data.subarray(at, Math.min(data.length, at + MAX_CHUNK)));
}

/** Filler for oversizeBody: 78 'X' and CRLF, so the literal stays made of short lines. */
const FILLER_LINE = Buffer.from('X'.repeat(78) + '\r\n');

/**
 * The literal bytes of an oversizeBody answer, streamed: the first `bytes` bytes of the message and
 * then filler lines, exactly `bytes` bytes in all.
 */
export async function writeOversize(write: Write, raw: Buffer, bytes: number): Promise<void> {
  const head = raw.subarray(0, Math.min(raw.length, bytes));
  await writeChunked(write, head);
  await writeRepeated(write, FILLER_LINE, bytes - head.length);
}

/** `count` copies of one untagged line, with CRLF, in writes of at most MAX_CHUNK. */
export function writeLines(write: Write, line: string, count: number): Promise<void> {
  const unit = Buffer.from(line + '\r\n');
  return writeRepeated(write, unit, unit.length * count);
}

/** Resolves when the socket has closed (at once if it already has). */
export function untilClosed(socket: net.Socket): Promise<void> {
  if (socket.destroyed) return Promise.resolve();
  return new Promise((resolve) => socket.once('close', () => resolve()));
}

/** Waits `ms`, or less if the socket closes first (so stop() is never held up by a slow listing). */
export function pause(socket: net.Socket, ms: number): Promise<void> {
  if (socket.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      socket.off('close', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    socket.once('close', done);
  });
}

/** The credentials one connection sent most recently (for echoSecrets and the {placeholders}). */
export interface SentSecrets {
  password?: string;
  /** A SASL response as received, base64. */
  sasl?: string;
  /** An OAuth access token. */
  token?: string;
}

/** Keeps a secret on one response line: CR, LF and NUL would break the framing, so they become spaces. */
const oneLine = (text: string) => text.replace(/[\r\n\0]/g, ' ');

/** A configured response text with {password}, {sasl} and {token} replaced by what the connection sent. */
export function fillSecrets(text: string, sent: SentSecrets): string {
  return text.replace(/\{(password|sasl|token)\}/g, (_m, key: keyof SentSecrets) => oneLine(sent[key] ?? ''));
}

/** The echoSecrets answer to a failed LOGIN. */
export const echoLogin = (user: string, password: string) => `NO [AUTHENTICATIONFAILED] Invalid login "${oneLine(user)}" "${oneLine(password)}"`;

/** The echoSecrets answer to a failed AUTHENTICATE: the base64 as received, then the password or token. */
export const echoAuthenticate = (sasl: string, secret: string) => `NO [AUTHENTICATIONFAILED] Bad credentials ${oneLine(sasl)} ${oneLine(secret)}`;
