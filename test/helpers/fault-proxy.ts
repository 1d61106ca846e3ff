/**
 * A fault-injection TCP proxy for tests: it listens on 127.0.0.1, forwards every accepted connection
 * to a target, and breaks chosen connections at exact byte offsets — a clean drop (FIN), a reset
 * (RST), a stall that never ends, or a pause that does.
 *
 * Offsets are exact: a chunk that straddles a fault's offset is split there, so a cut "in the middle
 * of an IMAP literal" really leaves the literal half sent. Bytes are counted per connection and per
 * direction ('up' = client→server, 'down' = server→client), and each direction is forwarded with
 * backpressure (the reading socket is paused while the writing one is full, while a direction is
 * held by a delay, and forever once it stalls), so even a long transfer through a stalled direction
 * never piles up in the proxy's memory.
 *
 * Typical use:
 * ```ts
 * const proxy = await startFaultProxy({ host: '127.0.0.1', port: server.port }, [
 *   { connection: 1, direction: 'up', afterBytes: 61_111, action: { kind: 'cut' } },
 * ]);
 * try {
 *   // ... point the code under test at proxy.host:proxy.port ...
 *   assert.equal(proxy.stats().fired.length, 1);
 * } finally {
 *   await proxy.close();
 * }
 * ```
 */
import { createConnection, createServer, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';

// ---------------------------------------------------------------------------------------------
// Public types
// ---------------------------------------------------------------------------------------------

/**
 * What happens when a fault fires. In every case the bytes before the fault's offset have been
 * forwarded; then:
 * - `cut`: both sockets are ended cleanly (FIN, after what was already forwarded is flushed) and
 *   nothing more is forwarded either way — a connection that drops;
 * - `reset`: nothing more is forwarded either way, and both sockets are destroyed with an RST about
 *   20 ms after the bytes before the offset were handed to the kernel (so a peer can read them before
 *   the RST arrives), or 0.5 s after the fault if a peer that does not read holds them back; as with
 *   any RST, a peer may lose data that was still in flight;
 * - `stall`: that direction is never forwarded again, its end (FIN) included, while both sockets stay
 *   open — the peer has to time out by itself; the other direction keeps working;
 * - `delay`: that direction is held for `ms` milliseconds (at least), then carries on normally.
 */
export type FaultAction = { kind: 'cut' } | { kind: 'stall' } | { kind: 'delay'; ms: number } | { kind: 'reset' };

/** One planned fault. */
export interface Fault {
  /** 1-based index of the accepted connection this applies to, or 'every'. */
  connection: number | 'every';
  /** 'up' = client→server bytes, 'down' = server→client bytes. */
  direction: 'up' | 'down';
  /**
   * The fault fires when this many bytes have passed in that direction on that connection; the bytes
   * before the offset are forwarded, the rest is not (cut/stall/reset) or is held back (delay).
   * 0 fires as soon as the connection is accepted. An offset a connection has already passed when
   * the fault is installed (see {@link FaultProxy.setFaults}) never fires on that connection.
   */
  afterBytes: number;
  action: FaultAction;
}

/** One fault that fired, as {@link FaultProxy.stats} reports it. */
export interface FiredFault {
  connection: number;
  direction: 'up' | 'down';
  afterBytes: number;
  action: FaultAction['kind'];
}

/** A running proxy (see {@link startFaultProxy}). */
export interface FaultProxy {
  host: '127.0.0.1';
  port: number;
  /**
   * Replace the fault list (applies to connections accepted from now on, and to open ones for faults
   * not yet fired). Faults are told apart by identity: each `Fault` object fires at most once per
   * connection, and passing a fresh but equal object arms it again. Faults due at the same offset fire
   * in list order; a cut, reset or stall ends the sequence.
   */
  setFaults(faults: Fault[]): void;
  /**
   * Accepted connections so far, the faults that fired in firing order, and the bytes forwarded in
   * each direction summed over all connections.
   */
  stats(): { connections: number; fired: FiredFault[]; bytes: { up: number; down: number } };
  /** Cut every open connection now (both sockets), like a `cut` fault; not recorded in `fired`. */
  cutAll(): void;
  /** Destroys every socket, cancels pending delays and closes the listener. Idempotent. */
  close(): Promise<void>;
}

// ---------------------------------------------------------------------------------------------
// Implementation
// ---------------------------------------------------------------------------------------------

type Direction = 'up' | 'down';

/** How long a reset waits after the bytes before its offset are written (see Link.reset). */
const RESET_GRACE_MS = 20;
/** How long a reset waits at most for those bytes to be written, when the peer does not read. */
const RESET_FLUSH_LIMIT_MS = 500;

/** The state a proxy shares with its connections. */
interface ProxyState {
  faults: readonly Fault[];
  fired: FiredFault[];
  bytes: { up: number; down: number };
}

/** One accepted client connection and its upstream connection. */
class Link {
  /** Set once the link is cut, reset or torn down: nothing is forwarded any more. */
  dead = false;
  readonly fired = new Set<Fault>();
  private resetTimer: NodeJS.Timeout | undefined;
  readonly up: Pump;
  readonly down: Pump;

  constructor(
    readonly index: number,
    readonly client: Socket,
    readonly upstream: Socket,
    readonly state: ProxyState,
  ) {
    this.up = new Pump(this, 'up', client, upstream);
    this.down = new Pump(this, 'down', upstream, client);
  }

  /** Both directions: fire what is due and forward what can be. */
  run(): void {
    this.up.run();
    this.down.run();
  }

  /** Ends both sockets cleanly (FIN after what is already written), then closes them. */
  cut(): void {
    if (this.dead) return;
    this.stop();
    for (const socket of [this.client, this.upstream]) {
      if (socket.destroyed) continue;
      // Keep reading (and discarding, see Pump.take) so the peer's bytes do not back up.
      socket.resume();
      if (socket.writableFinished) socket.destroy();
      else {
        socket.once('finish', () => socket.destroy());
        if (!socket.writableEnded) socket.end();
      }
    }
  }

  /**
   * Destroys both sockets with an RST once `dest` has handed over what was written to it, and a short
   * grace later. The grace matters: a Node (libuv) peer that reads the last data and the RST in one
   * go reports a plain end of stream, not ECONNRESET; given the time to read the data first, it sees
   * the reset as a reset. Nothing is forwarded during the grace.
   */
  reset(dest: Socket): void {
    if (this.dead) return;
    this.stop();
    const rst = () => {
      for (const socket of [this.client, this.upstream]) if (!socket.destroyed) socket.resetAndDestroy();
    };
    // Timer, then setImmediate: at least one I/O poll of this process passes in between, so a peer
    // in this very process (a test's client) reads the data even when the event loop is late.
    let armed = false;
    const go = () => {
      if (armed) return;
      armed = true;
      clearTimeout(this.resetTimer);
      this.resetTimer = setTimeout(() => setImmediate(rst), RESET_GRACE_MS);
    };
    if (dest.destroyed || dest.writableEnded) go();
    else {
      // An empty write completes after every earlier write: the bytes before the offset are out. A
      // peer that does not read may hold them back for ever; an RST does not wait for that long.
      dest.write(Buffer.alloc(0), go);
      this.resetTimer = setTimeout(go, RESET_FLUSH_LIMIT_MS);
    }
  }

  /** Destroys both sockets at once (one side failed, or the proxy is closing). */
  destroy(): void {
    this.stop();
    clearTimeout(this.resetTimer);
    this.client.destroy();
    this.upstream.destroy();
  }

  private stop(): void {
    this.dead = true;
    this.up.cancelHold();
    this.down.cancelHold();
  }
}

/** One direction of a link: reads `source`, writes `dest`, counts, splits at offsets, fires faults. */
class Pump {
  /** Bytes forwarded so far in this direction. */
  private count = 0;
  /** Bytes read from `source` and not yet written to `dest`. */
  private readonly queue: Buffer[] = [];
  private sourceEnded = false;
  private endForwarded = false;
  private stalled = false;
  /** While a delay holds this direction: when it may go on (performance.now() time). */
  private holdUntil = 0;
  private holdTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly link: Link,
    private readonly direction: Direction,
    private readonly source: Socket,
    private readonly dest: Socket,
  ) {
    source.on('data', (chunk: Buffer) => this.take(chunk));
    source.on('end', () => {
      this.sourceEnded = true;
      this.run();
    });
    dest.on('drain', () => this.run());
  }

  private take(chunk: Buffer): void {
    if (this.link.dead) return;
    this.queue.push(chunk);
    this.run();
  }

  /** Fires the faults due at the current offset, forwards what may be forwarded, sets the flow. */
  run(): void {
    if (this.link.dead || this.stalled) return;
    this.fireDue();
    while (this.queue.length > 0 && this.canWrite()) {
      const chunk = this.queue[0];
      const room = this.nextOffset() - this.count;
      let piece = chunk;
      if (room < chunk.length) {
        piece = chunk.subarray(0, room);
        this.queue[0] = chunk.subarray(room);
      } else this.queue.shift();
      this.count += piece.length;
      this.link.state.bytes[this.direction] += piece.length;
      this.dest.write(piece);
      this.fireDue();
    }
    if (this.link.dead || this.stalled) return;
    if (this.queue.length === 0 && this.sourceEnded && this.holdTimer === undefined && !this.endForwarded) {
      this.endForwarded = true;
      if (!this.dest.destroyed) this.dest.end();
    }
    // Backpressure: read on only while everything read so far could be written.
    if (this.queue.length > 0 || !this.canWrite()) this.source.pause();
    else this.source.resume();
  }

  cancelHold(): void {
    clearTimeout(this.holdTimer);
    this.holdTimer = undefined;
  }

  private canWrite(): boolean {
    return !this.link.dead && !this.stalled && this.holdTimer === undefined && !this.dest.destroyed && !this.dest.writableNeedDrain;
  }

  /** The smallest armed offset ahead in this direction, or Infinity. */
  private nextOffset(): number {
    let next = Infinity;
    for (const fault of this.link.state.faults) {
      if (this.applies(fault) && fault.afterBytes > this.count && fault.afterBytes < next) next = fault.afterBytes;
    }
    return next;
  }

  private applies(fault: Fault): boolean {
    return (
      fault.direction === this.direction &&
      (fault.connection === 'every' || fault.connection === this.link.index) &&
      !this.link.fired.has(fault)
    );
  }

  private fireDue(): void {
    for (const fault of this.link.state.faults) {
      if (this.link.dead || this.stalled) return;
      if (!this.applies(fault) || fault.afterBytes !== this.count) continue;
      this.link.fired.add(fault);
      const { kind } = fault.action;
      this.link.state.fired.push({ connection: this.link.index, direction: this.direction, afterBytes: fault.afterBytes, action: kind });
      switch (fault.action.kind) {
        case 'cut':
          this.link.cut();
          break;
        case 'reset':
          this.link.reset(this.dest);
          break;
        case 'stall':
          this.stalled = true;
          this.source.pause();
          break;
        case 'delay':
          this.hold(fault.action.ms);
          break;
      }
    }
  }

  /** Holds this direction for `ms` more milliseconds (delays due together add up). */
  private hold(ms: number): void {
    this.holdUntil = Math.max(this.holdUntil, performance.now()) + ms;
    this.source.pause();
    const wake = () => {
      const left = this.holdUntil - performance.now();
      // Timers may fire a little early against performance.now(): never release before the time.
      if (left > 0) {
        this.holdTimer = setTimeout(wake, Math.max(1, Math.ceil(left)));
        return;
      }
      this.holdTimer = undefined;
      this.run();
    };
    clearTimeout(this.holdTimer);
    this.holdTimer = setTimeout(wake, Math.ceil(this.holdUntil - performance.now()));
  }
}

function checkFaults(faults: readonly Fault[]): void {
  for (const f of faults) {
    const where = JSON.stringify(f);
    if (f.connection !== 'every' && !(Number.isInteger(f.connection) && f.connection >= 1)) {
      throw new RangeError(`fault connection must be a 1-based index or 'every': ${where}`);
    }
    if (f.direction !== 'up' && f.direction !== 'down') throw new RangeError(`fault direction must be 'up' or 'down': ${where}`);
    if (!Number.isSafeInteger(f.afterBytes) || f.afterBytes < 0) throw new RangeError(`fault afterBytes must be an integer ≥ 0: ${where}`);
    if (!['cut', 'stall', 'delay', 'reset'].includes(f.action.kind)) throw new RangeError(`unknown fault action: ${where}`);
    if (f.action.kind === 'delay' && !(Number.isFinite(f.action.ms) && f.action.ms >= 0)) {
      throw new RangeError(`delay ms must be a finite number ≥ 0: ${where}`);
    }
  }
}

/**
 * Starts a proxy on 127.0.0.1 (a free port) that forwards each accepted connection to `target`,
 * applying `faults` (see {@link Fault}, {@link FaultAction}). Half-closes are forwarded as such; an
 * error on either socket of a connection destroys the other one. Close it with
 * {@link FaultProxy.close}.
 */
export async function startFaultProxy(target: { host: string; port: number }, faults: Fault[] = []): Promise<FaultProxy> {
  checkFaults(faults);
  const state: ProxyState = { faults: [...faults], fired: [], bytes: { up: 0, down: 0 } };
  const links = new Set<Link>();
  const sockets = new Set<Socket>();
  let connections = 0;
  let closing: Promise<void> | undefined;

  const track = (socket: Socket, link: Link) => {
    sockets.add(socket);
    socket.setNoDelay(true);
    socket.on('error', () => {
      // Reported through 'close' (hadError) below.
    });
    socket.on('close', (hadError) => {
      sockets.delete(socket);
      if (hadError) link.destroy();
      if (link.client.destroyed && link.upstream.destroyed) links.delete(link);
    });
  };

  const server = createServer({ allowHalfOpen: true }, (client) => {
    if (closing) {
      client.destroy();
      return;
    }
    const index = ++connections;
    const upstream = createConnection({ host: target.host, port: target.port, allowHalfOpen: true });
    const link = new Link(index, client, upstream, state);
    track(client, link);
    track(upstream, link);
    links.add(link);
    link.run(); // faults at offset 0
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('fault proxy: no TCP address');

  return {
    host: '127.0.0.1',
    port: address.port,
    setFaults(next) {
      checkFaults(next);
      state.faults = [...next];
      for (const link of links) link.run();
    },
    stats() {
      return { connections, fired: state.fired.map((f) => ({ ...f })), bytes: { ...state.bytes } };
    },
    cutAll() {
      for (const link of links) link.cut();
    },
    close() {
      closing ??= new Promise<void>((resolve) => {
        for (const link of links) link.destroy();
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      });
      return closing;
    },
  };
}

/**
 * `count` reproducible integers in [`min`, `max`] (both included), from a mulberry32 generator seeded
 * with `seed`: the same arguments always give the same list. In generation order, repeats possible.
 * Meant for many cut points: `seededOffsets(7, 20, 1, 200_000)`.
 */
export function seededOffsets(seed: number, count: number, min: number, max: number): number[] {
  if (!Number.isSafeInteger(min) || !Number.isSafeInteger(max) || min > max) throw new RangeError(`bad range [${min}, ${max}]`);
  if (!Number.isSafeInteger(count) || count < 0) throw new RangeError(`bad count ${count}`);
  let a = seed >>> 0;
  const next = (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const span = max - min + 1;
  return Array.from({ length: count }, () => min + Math.floor(next() * span));
}
