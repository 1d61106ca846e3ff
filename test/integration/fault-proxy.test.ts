/**
 * The fault-injection proxy itself (test/helpers/fault-proxy.ts), against tiny loopback servers
 * written here: untouched pass-through, cuts and resets at exact offsets in both directions, stalls,
 * delays, connection targeting, faults installed on open connections, and backpressure.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createConnection, createServer, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { seededOffsets, startFaultProxy, type Fault, type FaultProxy } from '../helpers/fault-proxy.js';

// ---------------------------------------------------------------------------------------------
// Loopback plumbing
// ---------------------------------------------------------------------------------------------

/** What one side of a connection saw, once its socket closed. */
interface Seen {
  data: Buffer;
  /** A clean end of stream (FIN) was read. */
  ended: boolean;
  /** The error code, if the socket failed. */
  error: string | undefined;
}

/** A socket being watched: what it has read so far, and a promise of the full story at close. */
interface Watched {
  socket: Socket;
  received: () => number;
  closed: Promise<Seen>;
}

function watch(socket: Socket, onChunk?: (total: number) => void): Watched {
  const chunks: Buffer[] = [];
  let total = 0;
  let ended = false;
  let error: string | undefined;
  socket.on('data', (chunk: Buffer) => {
    chunks.push(chunk);
    total += chunk.length;
    onChunk?.(total);
  });
  socket.on('end', () => (ended = true));
  socket.on('error', (err: NodeJS.ErrnoException) => (error ??= err.code ?? err.message));
  const closed = new Promise<Seen>((resolve) => socket.on('close', () => resolve({ data: Buffer.concat(chunks), ended, error })));
  return { socket, received: () => total, closed };
}

/** A loopback server; every accepted socket is watched (in accept order) and handed to `onSocket`. */
async function startServer(onSocket: (socket: Socket) => void = () => {}) {
  const accepted: Watched[] = [];
  const server = createServer({ allowHalfOpen: true }, (socket) => {
    accepted.push(watch(socket));
    // Half-open, so the echo can answer after the client's FIN; then end like any server.
    socket.on('end', () => socket.writableEnded || socket.end());
    onSocket(socket);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  return {
    target: { host: '127.0.0.1', port },
    accepted,
    /** Resolves when `n` connections have been accepted. */
    async nth(n: number): Promise<Watched> {
      while (accepted.length < n) await sleep(5);
      return accepted[n - 1];
    },
    close: async () => {
      for (const w of accepted) w.socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

async function connect(proxy: FaultProxy, onChunk?: (total: number) => void): Promise<Watched> {
  const socket = createConnection({ host: proxy.host, port: proxy.port });
  const watched = watch(socket, onChunk);
  await once(socket, 'connect');
  return watched;
}

async function until(condition: () => boolean, what: string, ms = 3000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const cut = (connection: Fault['connection'], direction: Fault['direction'], afterBytes: number): Fault => ({
  connection,
  direction,
  afterBytes,
  action: { kind: 'cut' },
});

/** Runs `body` with a fresh server and a proxy in front of it, and closes both afterwards. */
async function withProxy(
  onSocket: ((socket: Socket) => void) | undefined,
  faults: Fault[],
  body: (proxy: FaultProxy, server: Awaited<ReturnType<typeof startServer>>) => Promise<void>,
): Promise<void> {
  const server = await startServer(onSocket);
  const proxy = await startFaultProxy(server.target, faults);
  try {
    await body(proxy, server);
  } finally {
    await proxy.close();
    await server.close();
  }
}

const echo = (socket: Socket) => socket.pipe(socket);
const MB5 = randomBytes(5 * 1024 * 1024);

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

test('without faults, 5 MB pass through both ways untouched', async () => {
  await withProxy(echo, [], async (proxy, server) => {
    const client = await connect(proxy);
    client.socket.end(MB5);
    const seen = await client.closed;
    const atServer = await (await server.nth(1)).closed;
    assert.equal(sha256(atServer.data), sha256(MB5), 'server got the bytes unchanged');
    assert.equal(sha256(seen.data), sha256(MB5), 'client got the echo unchanged');
    assert.ok(seen.ended && atServer.ended, 'half-closes were forwarded');
    assert.equal(seen.error, undefined);
    assert.deepEqual(proxy.stats(), { connections: 1, fired: [], bytes: { up: MB5.length, down: MB5.length } });
  });
});

test("cut 'up' at an offset: the server gets exactly those bytes and a clean end, the client a close", async () => {
  const N = 1_234_567;
  await withProxy(undefined, [cut(1, 'up', N)], async (proxy, server) => {
    const client = await connect(proxy);
    client.socket.write(MB5);
    await client.closed; // whether it reads the FIN or fails writing (EPIPE/ECONNRESET) first
    const atServer = await (await server.nth(1)).closed;
    assert.equal(atServer.data.length, N);
    assert.ok(atServer.data.equals(MB5.subarray(0, N)));
    assert.ok(atServer.ended, 'the server read a FIN');
    assert.equal(atServer.error, undefined);
    assert.deepEqual(proxy.stats().fired, [{ connection: 1, direction: 'up', afterBytes: N, action: 'cut' }]);
    assert.equal(proxy.stats().bytes.up, N);
  });
});

test("cut 'down' at an offset: the client gets exactly those bytes and a clean end", async () => {
  const N = 777_777;
  await withProxy((s) => s.end(MB5), [cut(1, 'down', N)], async (proxy) => {
    const client = await connect(proxy);
    const seen = await client.closed;
    assert.equal(seen.data.length, N);
    assert.ok(seen.data.equals(MB5.subarray(0, N)));
    assert.ok(seen.ended, 'the client read a FIN');
    assert.equal(seen.error, undefined);
    assert.equal(proxy.stats().bytes.down, N);
  });
});

test('a cut at offset 0 fires on accept: the client is dropped before the greeting', async () => {
  await withProxy((s) => s.write('* OK ready\r\n'), [cut('every', 'down', 0)], async (proxy) => {
    const client = await connect(proxy);
    const seen = await client.closed;
    assert.equal(seen.data.length, 0);
    assert.ok(seen.ended);
  });
});

test("reset 'down': the client reads the bytes before the offset, then sees ECONNRESET", async () => {
  const N = 100_000;
  await withProxy((s) => s.end(MB5), [{ connection: 1, direction: 'down', afterBytes: N, action: { kind: 'reset' } }], async (proxy) => {
    const client = await connect(proxy);
    const seen = await client.closed;
    assert.equal(seen.error, 'ECONNRESET');
    assert.ok(!seen.ended, 'no FIN before the RST');
    assert.equal(seen.data.length, N);
    assert.ok(seen.data.equals(MB5.subarray(0, N)));
    assert.deepEqual(proxy.stats().fired, [{ connection: 1, direction: 'down', afterBytes: N, action: 'reset' }]);
  });
});

test("reset 'up': the server reads the bytes before the offset, then both ends see a reset", async () => {
  const N = 300_001;
  await withProxy(undefined, [{ connection: 1, direction: 'up', afterBytes: N, action: { kind: 'reset' } }], async (proxy, server) => {
    const client = await connect(proxy);
    client.socket.write(MB5);
    const seen = await client.closed;
    assert.ok(seen.error === 'ECONNRESET' || seen.error === 'EPIPE', String(seen.error));
    const atServer = await (await server.nth(1)).closed;
    assert.equal(atServer.error, 'ECONNRESET');
    assert.ok(!atServer.ended, 'no FIN before the RST');
    assert.equal(atServer.data.length, N);
    assert.ok(atServer.data.equals(MB5.subarray(0, N)));
  });
});

test('a reset does not wait for a client that does not read', async () => {
  const big = Buffer.alloc(32 * 1024 * 1024, 3);
  await withProxy((s) => s.end(big), [], async (proxy, server) => {
    const client = await connect(proxy);
    client.socket.pause();
    // Let the proxy fill the kernel buffers towards the client, and its own write queue behind them.
    let forwarded = -1;
    while (proxy.stats().bytes.down !== forwarded) {
      forwarded = proxy.stats().bytes.down;
      await sleep(100);
    }
    // Armed at the current offset, the reset fires now, with bytes still queued for the client.
    proxy.setFaults([{ connection: 1, direction: 'down', afterBytes: forwarded, action: { kind: 'reset' } }]);
    assert.equal(proxy.stats().fired.length, 1);
    const atServer = await (await server.nth(1)).closed; // while the client still does not read
    assert.equal(atServer.error, 'ECONNRESET');
    client.socket.resume();
    const seen = await client.closed;
    // What the proxy still had queued for the client is gone: an RST, not a FIN behind the data.
    // (Reading the leftovers and the RST in one go, Node may report an end rather than ECONNRESET.)
    assert.ok(seen.data.length < forwarded, `${seen.data.length} of ${forwarded} bytes`);
  });
});

test("stall 'down': nothing more arrives, both sockets stay open, the other direction still flows", async () => {
  const N = 10_000;
  const payload = randomBytes(200_000);
  const sent = randomBytes(50_000);
  await withProxy((s) => s.write(payload), [{ connection: 1, direction: 'down', afterBytes: N, action: { kind: 'stall' } }], async (proxy, server) => {
    const client = await connect(proxy);
    client.socket.write(sent);
    const atServer = await server.nth(1);
    await until(() => client.received() === N && atServer.received() === sent.length, 'the bytes before the stall');
    await sleep(500);
    assert.equal(client.received(), N, 'no byte after the stall');
    assert.equal(client.socket.readyState, 'open');
    assert.ok(!client.socket.destroyed && !atServer.socket.destroyed, 'both sockets open');
    assert.deepEqual(proxy.stats().bytes, { up: sent.length, down: N });
    client.socket.destroy(); // the client gives up on its own
  });
});

test("stall 'up' at 0: the proxy stops reading, so a big write backs up in the client, not in the proxy", async () => {
  const big = Buffer.alloc(64 * 1024 * 1024, 7);
  await withProxy(undefined, [{ connection: 1, direction: 'up', afterBytes: 0, action: { kind: 'stall' } }], async (proxy, server) => {
    const client = await connect(proxy);
    client.socket.write(big);
    const atServer = await server.nth(1);
    await sleep(300);
    assert.equal(atServer.received(), 0);
    // An unbounded proxy would have swallowed all 64 MB; the kernel buffers hold only a few.
    assert.ok(client.socket.writableLength > 32 * 1024 * 1024, `${client.socket.writableLength} bytes still queued in the client`);
    client.socket.destroy();
  });
});

test('without faults, a server that does not read makes the client wait: the proxy does not buffer', async () => {
  const big = randomBytes(64 * 1024 * 1024);
  await withProxy((s) => s.pause(), [], async (proxy, server) => {
    const client = await connect(proxy);
    client.socket.end(big);
    const atServer = await server.nth(1);
    await sleep(300);
    assert.ok(client.socket.writableLength > 32 * 1024 * 1024, `${client.socket.writableLength} bytes still queued in the client`);
    atServer.socket.resume();
    const seen = await atServer.closed;
    assert.equal(sha256(seen.data), sha256(big));
  });
});

test("delay 'down': the bytes after the offset arrive no sooner than ms later, all of them", async () => {
  const N = 50_000;
  const ms = 300;
  const payload = randomBytes(400_000);
  let sentAt = NaN;
  const send = (s: Socket) => {
    sentAt = performance.now();
    s.end(payload);
  };
  await withProxy(send, [{ connection: 1, direction: 'down', afterBytes: N, action: { kind: 'delay', ms } }], async (proxy) => {
    let atN = NaN;
    let afterN = NaN;
    const client = await connect(proxy, (total) => {
      if (total === N) atN = performance.now();
      if (total > N && Number.isNaN(afterN)) afterN = performance.now();
    });
    const seen = await client.closed;
    assert.ok(!Number.isNaN(atN), 'the chunk was split exactly at the offset, the rest came later');
    // The offset was reached after the server sent, so the held bytes cannot arrive sooner than ms
    // after that (measured from the send, not from when this client got to read byte N: a busy
    // event loop can read late, which would shrink the apparent gap).
    assert.ok(afterN - sentAt >= ms, `${(afterN - sentAt).toFixed(1)} ms after the send`);
    assert.equal(sha256(seen.data), sha256(payload));
    assert.ok(seen.ended);
  });
});

test('a fault for connection 2 touches connection 2 only', async () => {
  await withProxy(undefined, [cut(2, 'up', 100)], async (proxy, server) => {
    const bytes = randomBytes(1000);
    for (let i = 0; i < 3; i++) {
      const client = await connect(proxy);
      client.socket.end(bytes);
      await (await server.nth(i + 1)).closed;
      client.socket.destroy();
    }
    const got = await Promise.all(server.accepted.map(async (w) => (await w.closed).data.length));
    assert.deepEqual(got, [1000, 100, 1000]);
    assert.deepEqual(proxy.stats().fired, [{ connection: 2, direction: 'up', afterBytes: 100, action: 'cut' }]);
    assert.equal(proxy.stats().connections, 3);
  });
});

test("'every' fires once on each connection", async () => {
  await withProxy(undefined, [cut('every', 'up', 10)], async (proxy, server) => {
    const clients = await Promise.all([connect(proxy), connect(proxy)]);
    for (const c of clients) c.socket.write(Buffer.alloc(50));
    await until(() => server.accepted.length === 2, 'two connections');
    const got = await Promise.all(server.accepted.map(async (w) => (await w.closed).data.length));
    assert.deepEqual(got, [10, 10]);
    assert.deepEqual(proxy.stats().fired.map((f) => f.connection).sort(), [1, 2]);
  });
});

test('setFaults arms an open connection; cutAll drops every open connection', async () => {
  await withProxy(echo, [], async (proxy) => {
    const a = await connect(proxy);
    const b = await connect(proxy);
    a.socket.write(Buffer.alloc(1000, 1));
    await until(() => a.received() === 1000, 'the first echo');
    const stale = cut(1, 'down', 500); // already passed on connection 1: never fires there
    proxy.setFaults([stale, cut(1, 'down', 1500)]);
    a.socket.write(Buffer.alloc(1000, 2));
    const seenA = await a.closed;
    assert.equal(seenA.data.length, 1500);
    assert.ok(seenA.ended);
    assert.deepEqual(proxy.stats().fired, [{ connection: 1, direction: 'down', afterBytes: 1500, action: 'cut' }]);

    b.socket.write('ping');
    await until(() => b.received() === 4, 'the echo on b');
    proxy.cutAll();
    const seenB = await b.closed;
    assert.ok(seenB.ended && seenB.error === undefined, 'a clean drop');
  });
});

test('a target that refuses the connection closes the client; close() is idempotent', async () => {
  const gone = await startServer();
  await gone.close(); // its port now refuses
  const proxy = await startFaultProxy(gone.target);
  const client = await connect(proxy);
  const seen = await client.closed;
  assert.equal(seen.data.length, 0);
  await proxy.close();
  await proxy.close();
});

test('seededOffsets is reproducible and stays in range', () => {
  const a = seededOffsets(42, 1000, 10, 20);
  assert.deepEqual(a, seededOffsets(42, 1000, 10, 20));
  assert.ok(a.every((n) => Number.isInteger(n) && n >= 10 && n <= 20));
  assert.equal(new Set(a).size, 11, 'every value of a small range shows up');
  assert.notDeepEqual(seededOffsets(1, 20, 0, 1e9), seededOffsets(2, 20, 0, 1e9));
  assert.deepEqual(seededOffsets(5, 0, 1, 1), []);
  assert.throws(() => seededOffsets(1, 1, 5, 4), RangeError);
});

test('bad faults are refused', async () => {
  await assert.rejects(startFaultProxy({ host: '127.0.0.1', port: 1 }, [cut(0, 'up', 1)]), RangeError);
  await assert.rejects(startFaultProxy({ host: '127.0.0.1', port: 1 }, [cut(1, 'up', -1)]), RangeError);
});
