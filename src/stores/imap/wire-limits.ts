/**
 * What one IMAP connection will read and how it writes literals: the guards against a hostile or
 * broken server (and against our own command lines being refused half-way).
 *
 * imapflow 2.1.2 accepts a 1 GiB literal and a 1 GiB line by default, so a server announcing a
 * 300 MB body for a message it listed at 177 bytes, or a greeting that never ends, would be read
 * into memory whole. Its stream keeps the caps as plain fields, read for each line and literal
 * marker, so they can be tightened per phase and per command:
 * - before login, only short lines (the greeting, capabilities, the login answer);
 * - after login, lines long enough for a UID SEARCH of a million messages, and literals of the
 *   size a header block can sensibly have (listings read headers, not bodies);
 * - for a body FETCH, literals up to the largest listed size of the batch, with some slack: a
 *   larger literal is refused at its marker, before its bytes are read.
 */
import type { ImapFlow } from 'imapflow';

/** Caps for one phase of a connection. */
export interface WireLimits {
  maxLineLength: number;
  maxLiteralSize: number;
  maxResponseSize: number;
}

const MiB = 1024 * 1024;

/** Before login: nothing longer than a greeting, a capability list and a login answer. */
export const PRE_LOGIN_LIMITS: WireLimits = { maxLineLength: 1 * MiB, maxLiteralSize: 1 * MiB, maxResponseSize: 4 * MiB };

/**
 * After login. A line: a UID SEARCH answer for a million-message folder is about 8 MB, a LIST
 * line with a long name a few KB. A literal outside body fetches: a header block or a name
 * (servers cap headers far lower; Dovecot at 10 MB of header lines).
 */
export const SESSION_LIMITS: WireLimits = { maxLineLength: 64 * MiB, maxLiteralSize: 16 * MiB, maxResponseSize: 128 * MiB };

/** The most a body literal may exceed the listed size before it is refused (servers' sizes differ by line endings at most). */
export function bodyLiteralCap(listedBytes: number): number {
  return Math.max(SESSION_LIMITS.maxLiteralSize, Math.ceil(listedBytes * 1.1) + 64 * 1024);
}

interface StreamLimits {
  maxLineLength: number;
  maxLiteralSize: number;
  maxResponseSize: number;
}

function stream(client: ImapFlow): StreamLimits | undefined {
  return (client as unknown as { streamer?: StreamLimits }).streamer;
}

/** Applies `limits` to the connection's response reader from now on. */
export function applyLimits(client: ImapFlow, limits: WireLimits): void {
  const s = stream(client);
  if (!s) return;
  s.maxLineLength = limits.maxLineLength;
  s.maxLiteralSize = limits.maxLiteralSize;
  s.maxResponseSize = limits.maxResponseSize;
}

/** Runs `fn` with the literal cap raised to `maxLiteral` (a body fetch), then restores the session's cap. */
export async function withLiteralCap<T>(client: ImapFlow, maxLiteral: number, fn: () => Promise<T> | T): Promise<T> {
  const s = stream(client);
  if (s) {
    s.maxLiteralSize = maxLiteral;
    s.maxResponseSize = Math.max(SESSION_LIMITS.maxResponseSize, maxLiteral * 2);
  }
  try {
    return await fn();
  } finally {
    if (s) {
      s.maxLiteralSize = SESSION_LIMITS.maxLiteralSize;
      s.maxResponseSize = SESSION_LIMITS.maxResponseSize;
    }
  }
}

/** True for imapflow's "the server sent more than the cap" stream errors. */
export function isOversize(err: unknown): err is { code: string; message: string; literalSize?: number; lineLength?: number; maxSize?: number } {
  const code = (err as { code?: unknown })?.code;
  return code === 'LiteralTooLarge' || code === 'LineTooLarge' || code === 'ResponseTooLarge';
}

/**
 * Runs `fn` (one APPEND command) with synchronizing literals only: the client sends a message's
 * bytes only after the server's "+" said it accepted the command line so far.
 *
 * Why: with a non-synchronizing literal (LITERAL+, or LITERAL- up to 4 KB, which imapflow uses
 * whenever the server has either), the bytes follow the command line at once. A server that
 * refuses the line (a keyword it does not allow, one too long) answers BAD and then reads the
 * message's own lines as commands: a header line "X-A: CREATE PWNED" creates a folder. Flags are
 * checked against the grammar before they are sent (core/flags.ts), but whether a server accepts
 * a given keyword is its own business, so a command carrying keywords waits for "+".
 * imapflow decides per command from its capability map, so the map is hidden for the duration of
 * the command; the lane sends one command at a time on this connection.
 */
export async function withSynchronizingLiterals<T>(client: ImapFlow, fn: () => Promise<T>): Promise<T> {
  const caps = client.capabilities as Map<string, unknown>;
  const saved: [string, unknown][] = [];
  for (const name of ['LITERAL+', 'LITERAL-']) {
    if (caps.has(name)) {
      saved.push([name, caps.get(name)]);
      caps.delete(name);
    }
  }
  try {
    return await fn();
  } finally {
    for (const [name, value] of saved) caps.set(name, value);
  }
}
