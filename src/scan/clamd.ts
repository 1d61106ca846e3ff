/**
 * A client for the ClamAV daemon (clamd): scans one message with `zINSTREAM` over TCP or a unix
 * socket and says clean, infected (with the signature name) or too large.
 *
 * Hand-written over node:net on purpose: no well-kept npm package speaks INSTREAM with the failure
 * semantics mailmover needs. A scanner that cannot give a verdict must never look like "clean":
 * - a connection that cannot be made, or closes without an answer (clamd killed mid-stream closes
 *   cleanly with an empty reply), silence, or a reply that is not clamd's is a {@link MigrateError}
 *   `MM-SCAN-UNAVAILABLE`: the scanner is down;
 * - clamd's own answer that it did not judge this message is a verdict of its own: over
 *   `StreamMaxLength` (`INSTREAM size limit exceeded. ERROR`) or over `MaxFileSize`/`MaxScanSize`
 *   with `AlertExceedsMax yes` (`Heuristics.Limits.Exceeded.* FOUND`, which is no finding) is
 *   'too-large'; any other `... ERROR` answer, or no answer within the timeout after the whole
 *   message was sent while clamd still answers PING, is 'unscanned'.
 *
 * Protocol (clamd(8)): `zINSTREAM\0`, then chunks each prefixed with its length as a 4-byte big-endian
 * number, then a zero-length chunk; clamd answers `stream: OK`, `stream: NAME FOUND` or
 * `INSTREAM size limit exceeded. ERROR`, terminated by NUL, and closes the connection.
 *
 * Quirks this is built on (measured against Debian 12's clamd 1.4.6):
 * - a stream over `MaxFileSize` or `MaxScanSize` (but within `StreamMaxLength`) is answered
 *   `stream: OK` without being scanned, even with the EICAR string in its first bytes; only
 *   `AlertExceedsMax yes` makes clamd say so. Nothing here can tell such an OK from a real one:
 *   the limits must be set as README "Scanning in transit" says.
 * - over the size limit clamd stops reading, answers and closes; the client's further writes fail
 *   with EPIPE or ECONNRESET, possibly before it has read the answer. Write errors are therefore only
 *   recorded, the answer is read until close, and no more is written once the answer has begun or a
 *   write has failed. A plain net.Socket is not enough for that: it destroys itself on a failed write,
 *   and the answer still unread in the kernel is lost with it (measured: 1-3 % of over-limit scans,
 *   up to 8 % with parallel scans, TCP and unix socket alike, reported as a dead clamd). Hence
 *   {@link TolerantSocket}; with it, 0 of 1,800 over-limit scans lost the answer.
 * - clamd killed mid-stream gives a clean close with an empty reply, no socket error.
 */
import net, { type Socket } from 'node:net';
import { ERROR_CODES, MigrateError } from '../core/errors.js';

/** Where clamd listens: a TCP host and port, or a unix socket file. */
export type ClamdAddress = { kind: 'tcp'; host: string; port: number } | { kind: 'unix'; path: string };

/** What clamd said about one message. */
export type ScanVerdict =
  | { status: 'clean' }
  | { status: 'infected'; signature: string }
  /** Over one of clamd's size limits; `reply` is clamd's own answer. */
  | { status: 'too-large'; reply: string }
  /** clamd gave no verdict for this message (an error answer, a scan that timed out); `reason` in clamd's words where it gave any. */
  | { status: 'unscanned'; reason: string; reply?: string };

/** Options for {@link ClamdClient}. */
export interface ClamdClientOptions {
  /**
   * Milliseconds without any progress (connecting, sending, receiving) after which a scan or ping
   * fails with `MM-SCAN-UNAVAILABLE`. Default 30000.
   */
  timeoutMs?: number;
  /** Bytes of the message per INSTREAM chunk. Default 64 KiB. */
  chunkBytes?: number;
}

/** The accepted forms of a scan URL, as error messages show them. */
const URL_FORMS = 'clamd://HOST:PORT (e.g. clamd://127.0.0.1:3310 or clamd://[::1]:3310) or clamd:///ABSOLUTE/PATH/TO/clamd.sock';
/** One DNS label; a host name is labels joined by dots (an IPv4 address is one too). */
const LABEL = '[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?';
const HOST_NAME = new RegExp(`^${LABEL}(?:\\.${LABEL})*\\.?$`);
/** sun_path holds 108 bytes on Linux, including the terminating NUL. */
const MAX_SOCKET_PATH_BYTES = 107;
/** A reply longer than this is not clamd talking: give up instead of buffering without end. */
const MAX_REPLY_BYTES = 4096;

const DEFAULT_TIMEOUT_MS = 30_000;
const DEFAULT_CHUNK_BYTES = 64 * 1024;
/** clamd refuses chunks above StreamMaxLength anyway; this only keeps the length field sane. */
const MAX_CHUNK_BYTES = 16 * 1024 * 1024;

/**
 * Parses a scan URL: `clamd://HOST:PORT` (a host name, an IPv4 address or an IPv6 address in
 * brackets; the port is required) or `clamd:///ABSOLUTE/PATH` (a unix socket, taken literally).
 * Throws {@link MigrateError} `MM-CONFIG-OPTION` naming the accepted forms for anything else.
 */
export function parseScanUrl(url: string): ClamdAddress {
  const bad = (why: string) =>
    new MigrateError(ERROR_CODES.CONFIG_OPTION, `Scan URL ${JSON.stringify(url)} ${why}. Use ${URL_FORMS}.`, { scope: 'config' });
  const match = /^clamd:\/\/(.*)$/is.exec(url);
  if (!match) throw bad('is not a clamd:// URL');
  const rest = match[1] ?? '';
  if (rest === '') throw bad('has neither a host nor a socket path');
  return rest.startsWith('/') ? parseSocketPath(rest, bad) : parseHostPort(rest, bad);
}

/** The unix-socket form: everything after `clamd://` is the absolute path. */
function parseSocketPath(socketPath: string, bad: (why: string) => MigrateError): ClamdAddress {
  if (socketPath.endsWith('/')) throw bad('names a directory, not a socket file');
  if (/[\0\r\n]/.test(socketPath)) throw bad('has a control character in its socket path');
  if (Buffer.byteLength(socketPath) > MAX_SOCKET_PATH_BYTES) {
    throw bad(`has a socket path longer than ${MAX_SOCKET_PATH_BYTES} bytes, the limit of a unix socket`);
  }
  return { kind: 'unix', path: socketPath };
}

/** The TCP form: `HOST:PORT` or `[IPV6]:PORT`, nothing before or after. */
function parseHostPort(hostPort: string, bad: (why: string) => MigrateError): ClamdAddress {
  const match = /^(\[[^\]]*\]|[^:[\]]*)(?::(.*))?$/s.exec(hostPort);
  if (!match) throw bad('has an invalid host (an IPv6 address needs brackets: clamd://[::1]:3310)');
  const [, rawHost = '', rawPort] = match;
  if (!rawHost.startsWith('[') && rawPort?.includes(':')) throw bad('has an IPv6 address without brackets (write clamd://[::1]:3310)');
  let host: string;
  if (rawHost.startsWith('[')) {
    host = rawHost.slice(1, -1);
    if (!net.isIPv6(host)) throw bad(`has ${rawHost}, which is not an IPv6 address`);
  } else {
    host = rawHost;
    if (!HOST_NAME.test(host)) throw bad(host ? `has an invalid host ${JSON.stringify(host)}` : 'has no host');
  }
  if (rawPort === undefined || rawPort === '') throw bad('has no port (clamd has no default port here: write it out, e.g. :3310)');
  const port = /^\d{1,5}$/.test(rawPort) ? Number(rawPort) : NaN;
  if (!(port >= 1 && port <= 65535)) throw bad(`has port ${JSON.stringify(rawPort)}; the port must be a number from 1 to 65535`);
  return { kind: 'tcp', host, port };
}

/** `clamd at 127.0.0.1:3310`, `clamd at [::1]:3310` or `clamd at /run/clamav/clamd.ctl`, for messages. */
export function describeAddress(address: ClamdAddress): string {
  if (address.kind === 'unix') return `clamd at ${address.path}`;
  const host = address.host.includes(':') ? `[${address.host}]` : address.host;
  return `clamd at ${host}:${address.port}`;
}

/** Turns clamd's answer to INSTREAM into a verdict; undefined for an answer that is not clamd's. */
function verdictOf(reply: string): ScanVerdict | undefined {
  if (reply === 'stream: OK') return { status: 'clean' };
  if (/^INSTREAM size limit exceeded\.? ERROR$/.test(reply)) return { status: 'too-large', reply };
  const found = /^stream: (.+) FOUND$/.exec(reply);
  // AlertExceedsMax: not a finding but clamd saying it stopped at a limit (MaxFileSize, MaxScanSize,
  // MaxRecursion, ...), so the message was not scanned in full.
  if (found?.[1]?.startsWith('Heuristics.Limits.Exceeded')) {
    return /\.Max(File|Scan)Size$/.test(found[1]) ? { status: 'too-large', reply } : { status: 'unscanned', reason: `clamd answered ${JSON.stringify(reply)}`, reply };
  }
  if (found?.[1]) return { status: 'infected', signature: found[1] };
  if (/^(stream: )?\S.* ERROR$/.test(reply)) return { status: 'unscanned', reason: `clamd answered ${JSON.stringify(reply)}`, reply };
  return undefined;
}

/** Errors of {@link ClamdClient} that were a timeout after the whole message had been sent. */
const silentAfterSending = new WeakSet<Error>();

/** What went wrong on the socket, in words, from a Node socket error. */
function socketProblem(err: Error | undefined): string {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  switch (code) {
    case undefined:
      return 'closed the connection without an answer (clamd stopped or crashed?)';
    case 'ECONNREFUSED':
      return 'connection refused (is clamd running?)';
    case 'ENOENT':
      return 'the socket file does not exist (is clamd running?)';
    case 'EACCES':
      return 'permission denied on the socket file';
    case 'EPIPE':
    case 'ECONNRESET':
      return `the connection broke while sending the message (${code}) and clamd gave no answer`;
    default:
      return `connection failed (${code}: ${err?.message ?? ''})`;
  }
}

/** A positive integer option, or the default when absent. */
function positiveInteger(name: string, value: number | undefined, fallback: number, max: number): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < 1 || value > max) {
    throw new MigrateError(ERROR_CODES.CONFIG_OPTION, `clamd ${name} must be an integer from 1 to ${max}, not ${value}.`, { scope: 'config' });
  }
  return value;
}

/** Resolves after the event loop has polled for I/O once, so an answer that has arrived is read. */
const nextPoll = () => new Promise<void>((resolve) => setImmediate(resolve));

/** Resolves when the socket can take more data ('drain') or is gone ('close'). */
function drainedOrClosed(socket: Socket): Promise<void> {
  if (socket.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      socket.off('drain', done);
      socket.off('close', done);
      resolve();
    };
    socket.on('drain', done);
    socket.on('close', done);
  });
}

/** The 4-byte big-endian length that precedes every INSTREAM chunk. */
function chunkHeader(length: number): Buffer {
  const header = Buffer.alloc(4);
  header.writeUInt32BE(length);
  return header;
}

/** A write callback of a Node stream. */
type WriteCallback = (error?: Error | null) => void;

/**
 * A socket that survives its own failed writes. A plain net.Socket destroys itself when a write
 * fails (EPIPE, ECONNRESET), and the answer clamd sent before closing is lost with it when it was
 * still unread in the kernel. Here the write error is recorded in {@link writeError} and the write
 * reported as done, so the socket keeps reading until clamd's answer and close.
 */
class TolerantSocket extends net.Socket {
  /** The first failed write, if any. */
  writeError: Error | undefined;

  override _write(chunk: unknown, encoding: BufferEncoding, callback: WriteCallback): void {
    super._write(chunk, encoding, this.tolerate(callback));
  }

  override _writev(chunks: Array<{ chunk: unknown; encoding: BufferEncoding }>, callback: WriteCallback): void {
    if (super._writev) super._writev(chunks, this.tolerate(callback));
    else callback(new Error('net.Socket has no _writev'));
  }

  private tolerate(callback: WriteCallback): WriteCallback {
    return (error) => {
      if (error) this.writeError ??= error;
      callback();
    };
  }
}

/**
 * Talks to one clamd. Every call opens its own connection (clamd closes it after each answer), so
 * one client can serve parallel scans. No socket outlives a call, whatever its outcome.
 */
export class ClamdClient {
  readonly address: ClamdAddress;
  private readonly timeoutMs: number;
  private readonly chunkBytes: number;

  /**
   * @param address where clamd listens, e.g. from {@link parseScanUrl}
   * @param options inactivity timeout and chunk size, see {@link ClamdClientOptions}
   */
  constructor(address: ClamdAddress, options: ClamdClientOptions = {}) {
    this.address = address;
    this.timeoutMs = positiveInteger('timeoutMs', options.timeoutMs, DEFAULT_TIMEOUT_MS, 2_147_483_647);
    this.chunkBytes = positiveInteger('chunkBytes', options.chunkBytes, DEFAULT_CHUNK_BYTES, MAX_CHUNK_BYTES);
  }

  /**
   * Scans one message (the whole raw message, headers included: clamd decodes MIME parts itself).
   * The body is streamed in chunks with backpressure, never copied.
   *
   * Resolves with the verdict; 'unscanned' also when clamd took the whole message but stayed silent
   * for the timeout, and still answers PING (the scanner is up: this message took too long).
   * Rejects with `MM-SCAN-UNAVAILABLE` (scope mailbox, retry later) when clamd cannot be reached,
   * times out otherwise, closes without an answer or answers something that is not clamd's; with
   * `signal.reason` when the signal aborts.
   */
  async scan(body: Buffer, signal?: AbortSignal): Promise<ScanVerdict> {
    let reply: string;
    try {
      reply = await this.exchange('zINSTREAM\0', body, signal);
    } catch (err) {
      if (!(err instanceof Error) || !silentAfterSending.has(err)) throw err;
      // Rejects like scan when clamd does not answer PING either: then it is down, not slow.
      await this.ping(signal);
      return { status: 'unscanned', reason: `${describeAddress(this.address)} gave no verdict within ${this.timeoutMs} ms after the whole message was sent (it answers PING)` };
    }
    const verdict = verdictOf(reply);
    if (!verdict) throw this.unavailable(`answered ${JSON.stringify(reply)} instead of a verdict`, undefined, reply);
    return verdict;
  }

  /**
   * Checks that clamd answers: sends `zPING\0`, expects `PONG`. Rejects like {@link scan}.
   */
  async ping(signal?: AbortSignal): Promise<void> {
    const reply = await this.exchange('zPING\0', undefined, signal);
    if (reply !== 'PONG') throw this.unavailable(`answered ${JSON.stringify(reply)} to PING`, undefined, reply);
  }

  /** `MM-SCAN-UNAVAILABLE` for this clamd. */
  private unavailable(what: string, cause?: unknown, reply?: string): MigrateError {
    return new MigrateError(ERROR_CODES.SCAN_UNAVAILABLE, `${describeAddress(this.address)}: ${what}`, {
      scope: 'mailbox',
      retry: 'later',
      ...(cause === undefined ? {} : { cause }),
      ...(reply === undefined ? {} : { serverResponse: reply }),
    });
  }

  /**
   * One connection: sends `command` (and `body` as INSTREAM chunks when given), resolves with the
   * reply without its NUL terminator and surrounding white space. The reply ends at the first NUL or
   * when clamd closes the connection. The socket is destroyed on every way out.
   */
  private async exchange(command: string, body: Buffer | undefined, signal: AbortSignal | undefined): Promise<string> {
    signal?.throwIfAborted();
    return new Promise<string>((resolve, reject) => {
      const socket = new TolerantSocket();
      if (this.address.kind === 'tcp') socket.connect({ host: this.address.host, port: this.address.port });
      else socket.connect({ path: this.address.path });
      const received: Buffer[] = [];
      let receivedBytes = 0;
      let socketError: Error | undefined;
      let settled = false;
      let sentAll = false;

      const settle = (outcome: () => void) => {
        if (settled) return;
        settled = true;
        signal?.removeEventListener('abort', onAbort);
        socket.destroy();
        outcome();
      };
      const replyText = () => Buffer.concat(received).toString('latin1').split('\0')[0]?.trim() ?? '';
      const onAbort = () => settle(() => reject(signal?.reason));
      signal?.addEventListener('abort', onAbort, { once: true });

      socket.setTimeout(this.timeoutMs, () =>
        settle(() => {
          const err = this.unavailable(`no progress within ${this.timeoutMs} ms (timed out)`);
          if (sentAll && body) silentAfterSending.add(err);
          reject(err);
        }),
      );
      socket.on('data', (data: Buffer) => {
        received.push(data);
        receivedBytes += data.length;
        if (data.includes(0)) settle(() => resolve(replyText()));
        else if (receivedBytes > MAX_REPLY_BYTES) {
          settle(() => reject(this.unavailable(`answered more than ${MAX_REPLY_BYTES} bytes without ending the reply`)));
        }
      });
      // Connect and read errors end the connection ('close' follows); the reply, if any, still counts.
      socket.on('error', (err) => {
        socketError ??= err;
      });
      socket.on('close', () => {
        const reply = replyText();
        const problem = socketError ?? socket.writeError;
        if (reply) settle(() => resolve(reply));
        else settle(() => reject(this.unavailable(socketProblem(problem), problem)));
      });
      socket.once('connect', () => {
        // Stop sending as soon as clamd speaks: it only does so when it has stopped reading.
        const stopped = () => settled || socket.destroyed || receivedBytes > 0 || socket.writeError !== undefined;
        this.send(socket, command, body, stopped).then(
          (done) => (sentAll = done),
          (err: unknown) => {
            socketError ??= err instanceof Error ? err : new Error(String(err));
            socket.destroy();
          },
        );
      });
    });
  }

  /**
   * Writes the command, then the body as length-prefixed chunks and the zero-length end chunk.
   * Waits for 'drain' whenever the socket's buffer is full, so only the message itself is held (its
   * chunks are views into it), and lets the event loop poll between chunks, so other connections get
   * their turn and an early answer stops the sending. Resolves true when everything was written.
   */
  private async send(socket: Socket, command: string, body: Buffer | undefined, stopped: () => boolean): Promise<boolean> {
    if (!socket.write(command, 'latin1')) await drainedOrClosed(socket);
    if (body) {
      for (let offset = 0; offset < body.length; offset += this.chunkBytes) {
        await nextPoll();
        if (stopped()) return false;
        const part = body.subarray(offset, offset + this.chunkBytes);
        socket.cork();
        socket.write(chunkHeader(part.length));
        const room = socket.write(part);
        socket.uncork();
        if (!room) await drainedOrClosed(socket);
      }
      if (stopped()) return false;
      socket.write(chunkHeader(0));
    }
    return true;
  }
}
