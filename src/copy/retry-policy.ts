/**
 * When and how long to wait before trying an item again. Pure: the random source is a parameter.
 *
 * Delays grow exponentially from `baseDelayMs` (1, 2, 4, 8 ... seconds by default) up to
 * `maxDelayMs`, with jitter (each delay is drawn between half and all of its nominal value) so
 * that many lanes or workers hit by the same outage do not come back in lock-step. A server that
 * says how long to wait (a throttling answer's suggested backoff) is honoured: the delay is never
 * shorter than what it asked, up to {@link MAX_SUGGESTED_MS}.
 */
import { sleep } from '../core/sleep.js';

/** How persistent item retries are. */
export interface RetryPolicy {
  /** Tries per item in one pass (1 = no retry). The deferred pass at the end of a folder gets as many again. */
  attempts: number;
  /** First delay; each further one doubles. */
  baseDelayMs: number;
  /** Longest computed delay. */
  maxDelayMs: number;
}

/** The defaults: 3 tries per pass, 1 s doubling up to 60 s. */
export const DEFAULT_RETRY: RetryPolicy = { attempts: 3, baseDelayMs: 1000, maxDelayMs: 60_000 };

/** The longest wait a server's own suggestion can impose (a hostile or confused server must not park us for a day). */
export const MAX_SUGGESTED_MS = 5 * 60_000;

/**
 * The delay before retry number `retry` (1 = the first retry), honouring `suggestedMs` when the
 * server gave one. `random` returns a number in [0, 1).
 */
export function backoffDelay(policy: RetryPolicy, retry: number, suggestedMs?: number, random: () => number = Math.random): number {
  const nominal = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** Math.max(0, retry - 1));
  const jittered = nominal / 2 + (nominal / 2) * random();
  const floor = suggestedMs === undefined ? 0 : Math.min(Math.max(0, suggestedMs), MAX_SUGGESTED_MS);
  return Math.round(Math.max(jittered, floor));
}

/** Limits on one server, shared by every lane and every mailbox that talks to it. */
export interface ServerLimits {
  /** Connections open to it at once (a lane holds one per side). */
  maxConnections?: number | undefined;
  /** Messages fetched from it (source) or appended to it (destination) per second. */
  maxMessagesPerSecond?: number | undefined;
  /** Bytes of messages fetched or appended per second. */
  maxBytesPerSecond?: number | undefined;
}

/**
 * The part of a server's limits kept with other processes: workers of a queue on other machines
 * (src/batch/shared-limits.ts keeps them in PostgreSQL). A {@link ServerGate} given one asks it
 * for connection slots and rate bookings after its own, process-local, checks.
 */
export interface SharedLimits {
  /** Takes one of the server's connection slots across every process; resolves once held. */
  acquire(signal?: AbortSignal): Promise<void>;
  /** Takes a slot only when one is free now. */
  tryAcquire(): Promise<boolean>;
  /** Gives a slot back. */
  release(): Promise<void>;
  /**
   * Books `messages` messages of `bytes` bytes against the shared rates; resolves with how many
   * milliseconds to wait before starting them (a shared throttling pause included).
   */
  book(messages: number, bytes: number): Promise<number>;
  /** Holds every process back for `ms` (a throttling answer's suggested backoff). */
  pauseFor(ms: number): Promise<void>;
}

/**
 * Everything shared by the lanes (and the mailboxes of a batch) that talk to one server:
 * - a pause: when one command is throttled, every lane holds back until the suggested time has
 *   passed, instead of each finding out on its own;
 * - rate limits (messages and bytes per second), spread over all lanes;
 * - a cap on open connections.
 */
/** Who is told of a gate's pauses, retries and connections (a worker's metrics). */
export interface GateObserver {
  pause(): void;
  retry(): void;
  /** A connection slot taken (+1) or given back (-1). */
  connections(delta: number): void;
}

export class ServerGate {
  /** Told of pauses, retries and connection slots, when set. */
  observer: GateObserver | undefined;
  private until = 0;
  private messageClock = 0;
  private byteClock = 0;
  private slotsFree: number;
  private readonly waiting: (() => void)[] = [];

  /**
   * @param shared the same limits kept with other processes (workers of a queue), when there are
   *   any: connection slots and rates are then counted across all of them, and a pause reaches them all.
   */
  constructor(
    readonly limits: ServerLimits = {},
    private readonly shared?: SharedLimits,
  ) {
    this.slotsFree = limits.maxConnections ?? Number.POSITIVE_INFINITY;
  }

  /** Holds every later {@link wait} until `ms` from now (a later pause never shortens an earlier one). */
  pauseFor(ms: number): void {
    this.observer?.pause();
    this.until = Math.max(this.until, Date.now() + Math.min(ms, MAX_SUGGESTED_MS));
    // Best effort: other processes learn of the pause; this one holds back either way.
    this.shared?.pauseFor(Math.min(ms, MAX_SUGGESTED_MS)).catch(() => undefined);
  }

  /** Resolves once no pause is in force. */
  async wait(signal?: AbortSignal): Promise<void> {
    for (let left = this.until - Date.now(); left > 0; left = this.until - Date.now()) await sleep(left, signal);
  }

  /**
   * Waits for any pause, then for the rate limits to admit `messages` messages of `bytes` bytes
   * (a leaky bucket: the work is booked at the limit's pace, and this call waits for its turn).
   */
  async take(messages: number, bytes: number, signal?: AbortSignal): Promise<void> {
    await this.wait(signal);
    const now = Date.now();
    let start = now;
    const { maxMessagesPerSecond: mps, maxBytesPerSecond: bps } = this.limits;
    if (mps) {
      start = Math.max(start, this.messageClock);
      this.messageClock = Math.max(now, this.messageClock) + (messages * 1000) / mps;
    }
    if (bps) {
      start = Math.max(start, this.byteClock);
      this.byteClock = Math.max(now, this.byteClock) + (bytes * 1000) / bps;
    }
    if (start > now) await sleep(start - now, signal);
    if (this.shared && (mps || bps)) await sleep(await this.shared.book(messages, bytes), signal);
  }

  /** Takes a connection slot, waiting for one when the cap is reached. */
  async acquire(signal?: AbortSignal): Promise<void> {
    await this.acquireLocal(signal);
    if (this.shared) {
      try {
        await this.shared.acquire(signal);
      } catch (err) {
        this.releaseLocal();
        throw err;
      }
    }
    this.observer?.connections(1);
  }

  /** Takes a slot only when one is free now (here and, when shared, across every process). */
  async tryAcquire(): Promise<boolean> {
    if (this.slotsFree <= 0) return false;
    this.slotsFree--;
    if (this.shared && !(await this.shared.tryAcquire().catch(() => false))) {
      this.releaseLocal();
      return false;
    }
    this.observer?.connections(1);
    return true;
  }

  /** Gives a slot back. */
  release(): void {
    this.observer?.connections(-1);
    this.releaseLocal();
    this.shared?.release().catch(() => undefined);
  }

  private async acquireLocal(signal?: AbortSignal): Promise<void> {
    if (this.slotsFree > 0) {
      this.slotsFree--;
      return;
    }
    signal?.throwIfAborted();
    await new Promise<void>((resolve, reject) => {
      const grant = () => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      };
      const onAbort = () => {
        this.waiting.splice(this.waiting.indexOf(grant), 1);
        reject(signal!.reason);
      };
      this.waiting.push(grant);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  private releaseLocal(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.slotsFree++;
  }
}
