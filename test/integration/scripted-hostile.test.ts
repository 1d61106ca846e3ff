/**
 * Proves the hostile faults of the scripted IMAP server (test/helpers/scripted-imap/hostile.ts) on the
 * wire: a raw node:net client logs in, sends one command and reads the exact bytes that come back
 * (literals counted, not guessed), and imapflow shows what a real client makes of the worst of them.
 * No mailmover code is involved: if this file fails, a mailmover test built on these faults proves
 * nothing.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { describe, test } from 'node:test';
import { ImapFlow, type ImapFlowOptions } from 'imapflow';
import { startScriptedImap, type ScriptedImapOptions, type ScriptedImapServer, type ScriptedMessage, type UserFaults } from '../helpers/scripted-imap/server.js';
import { exchange } from '../helpers/scripted-imap/personalities.js';

// ---------------------------------------------------------------------------------------------
// A raw client and a response parser
// ---------------------------------------------------------------------------------------------

const PASSWORD = 'pw "1"';
const LOGIN = 'LOGIN alice "pw \\"1\\""';
const LISTING = 'UID FETCH 1:* (UID FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[HEADER])';

/** One whole server response: its text with each literal shown as {n}, and the literals' bytes. */
interface Resp {
  text: string;
  literals: Buffer[];
}

/** Splits bytes into complete responses (a literal's {n} is obeyed); what is incomplete is left over. */
function parse(buf: Buffer): { responses: Resp[]; rest: Buffer } {
  const responses: Resp[] = [];
  let start = 0;
  outer: while (start < buf.length) {
    let pos = start;
    let text = '';
    const literals: Buffer[] = [];
    for (;;) {
      const crlf = buf.indexOf('\r\n', pos);
      if (crlf < 0) break outer;
      const line = buf.toString('latin1', pos, crlf);
      text += line;
      const m = /\{(\d+)\}$/.exec(line);
      if (!m) {
        pos = crlf + 2;
        break;
      }
      const n = Number(m[1]);
      if (crlf + 2 + n > buf.length) break outer;
      literals.push(buf.subarray(crlf + 2, crlf + 2 + n));
      pos = crlf + 2 + n;
    }
    responses.push({ text, literals });
    start = pos;
  }
  return { responses, rest: buf.subarray(start) };
}

/** A raw IMAP client that keeps every byte it received, with arrival times. */
class Wire {
  private chunks: Buffer[] = [];
  /** [arrival time, total bytes received once this chunk was in]. */
  readonly arrivals: Array<[number, number]> = [];
  received = 0;
  isClosed = false;
  readonly closed: Promise<void>;
  private wake: (() => void) | null = null;

  private constructor(readonly socket: net.Socket) {
    socket.on('data', (d: Buffer) => {
      this.chunks.push(d);
      this.received += d.length;
      this.arrivals.push([Date.now(), this.received]);
      this.wake?.();
    });
    socket.on('error', () => undefined);
    this.closed = new Promise((resolve) =>
      socket.once('close', () => {
        this.isClosed = true;
        this.wake?.();
        resolve();
      }),
    );
  }

  static async open(srv: ScriptedImapServer): Promise<Wire> {
    const socket = net.connect({ host: srv.host, port: srv.port });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    return new Wire(socket);
  }

  /** Everything received so far (and not taken). */
  get bytes(): Buffer {
    if (this.chunks.length > 1) this.chunks = [Buffer.concat(this.chunks)];
    return this.chunks[0] ?? Buffer.alloc(0);
  }

  /** Everything received so far, and forgets it. */
  take(): Buffer {
    const b = this.bytes;
    this.chunks = [];
    return b;
  }

  /** Waits until `done(received bytes)` holds or the socket closes; throws after `ms`. */
  async until(done: (b: Buffer) => boolean, ms = 5000): Promise<Buffer> {
    const deadline = Date.now() + ms;
    while (!done(this.bytes) && !this.isClosed) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out; got ${JSON.stringify(this.bytes.toString('latin1', 0, 300))}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
    }
    return this.bytes;
  }

  /** Sends a command and returns every byte up to and including its tagged response line. */
  cmd(tag: string, text: string, ms = 5000): Promise<Buffer> {
    this.socket.write(`${tag} ${text}\r\n`);
    return this.tagged(tag, ms);
  }

  /** Every byte up to and including the tagged response line of `tag`. */
  async tagged(tag: string, ms = 5000): Promise<Buffer> {
    const re = new RegExp(`(?:^|\\r\\n)${tag} (?:OK|NO|BAD)[^\\r\\n]*\\r\\n`);
    let end = -1;
    await this.until((b) => {
      // Only the tail can hold a new tagged line: scanning all of a few MB at each chunk is too slow.
      const from = Math.max(0, b.length - 64 * 1024);
      const m = re.exec(b.toString('latin1', from));
      if (m) end = from + m.index + m[0].length;
      return !!m;
    }, ms);
    if (end < 0) throw new Error(`connection closed before ${tag}'s answer; got ${JSON.stringify(this.bytes.toString('latin1', 0, 300))}`);
    const all = this.take();
    if (end < all.length) this.chunks = [all.subarray(end)];
    return all.subarray(0, end);
  }

  /** Greeting, LOGIN, EXAMINE INBOX; the buffer is empty afterwards. */
  async enter(folder = 'INBOX'): Promise<void> {
    await this.until((b) => b.includes('\r\n'));
    this.take();
    assert.match((await this.cmd('l', LOGIN)).toString(), /^l OK/m);
    assert.match((await this.cmd('e', `EXAMINE ${folder}`)).toString(), /^e OK/m);
  }

  close(): void {
    this.socket.destroy();
  }
}

/** The `* n FETCH` responses of a command's output, and its tagged line. */
function fetches(out: Buffer, tag: string): { data: Resp[]; tagged: string; untagged: Resp[] } {
  const { responses, rest } = parse(out);
  assert.equal(rest.length, 0, 'the answer ends with a complete response');
  const tagged = responses.filter((r) => r.text.startsWith(`${tag} `));
  assert.equal(tagged.length, 1);
  return { data: responses.filter((r) => /^\* \d+ FETCH /.test(r.text)), tagged: tagged[0]!.text, untagged: responses.filter((r) => r.text.startsWith('* ')) };
}

// ---------------------------------------------------------------------------------------------
// Fixture
// ---------------------------------------------------------------------------------------------

function message(i: number, bodyBytes = 20): ScriptedMessage {
  const head = `Message-ID: <m${i}@example.test>\r\nSubject: message ${i}\r\n\r\n`;
  return { raw: Buffer.from(head + String(i).repeat(bodyBytes) + '\r\n'), flags: i % 2 ? ['\\Seen'] : [], internalDate: new Date(Date.UTC(2024, 0, i)) };
}
const MESSAGES = [1, 2, 3, 4].map((i) => message(i));
const headerOf = (raw: Buffer) => raw.subarray(0, raw.indexOf('\r\n\r\n') + 4);

async function serve(faults: UserFaults, extra: Partial<ScriptedImapOptions> = {}): Promise<ScriptedImapServer> {
  return startScriptedImap({
    personality: exchange,
    users: { alice: { password: PASSWORD, folders: [{ name: 'INBOX', messages: MESSAGES }, { name: 'Other', messages: MESSAGES }] } },
    faults: { alice: faults },
    ...extra,
  });
}

/** Runs `fn` with a raw client inside a server with these faults; always stops the server. */
async function withWire(faults: UserFaults, fn: (w: Wire, srv: ScriptedImapServer) => Promise<void>): Promise<void> {
  const srv = await serve(faults);
  const w = await Wire.open(srv);
  try {
    await w.enter();
    await fn(w, srv);
  } finally {
    w.close();
    await srv.stop();
  }
}

/** The listing a client sees: its FETCH data, after checking UIDs, sizes and whole headers. */
async function checkListingIntact(w: Wire, tag: string): Promise<void> {
  const { data, tagged } = fetches(await w.cmd(tag, LISTING), tag);
  assert.match(tagged, / OK /);
  assert.equal(data.length, MESSAGES.length);
  for (const [i, r] of data.entries()) {
    const raw = MESSAGES[i]!.raw;
    assert.match(r.text, new RegExp(`^\\* ${i + 1} FETCH \\(UID ${i + 1} FLAGS .* RFC822\\.SIZE ${raw.length} BODY\\[HEADER\\] \\{\\d+\\}\\)$`));
    assert.deepEqual(r.literals, [headerOf(raw)]);
  }
}

async function imapflow(srv: ScriptedImapServer, extra: Partial<ImapFlowOptions> = {}): Promise<ImapFlow> {
  const c = new ImapFlow({ host: srv.host, port: srv.port, secure: false, auth: { user: 'alice', pass: PASSWORD }, logger: false, disableAutoIdle: true, ...extra });
  c.on('error', () => undefined);
  return c;
}

// ---------------------------------------------------------------------------------------------
// Body faults
// ---------------------------------------------------------------------------------------------

describe('scripted IMAP server: hostile body FETCH answers (raw socket)', () => {
  test('truncateBody: the literal is the first n bytes, {n} says n; listings keep the full size and header', async () => {
    await withWire({ truncateBody: { INBOX: { 2: 10 } } }, async (w) => {
      const { data, tagged } = fetches(await w.cmd('a', 'UID FETCH 1:3 (UID RFC822.SIZE BODY.PEEK[])'), 'a');
      assert.match(tagged, /^a OK/);
      assert.equal(data[1]!.text, `* 2 FETCH (UID 2 RFC822.SIZE ${MESSAGES[1]!.raw.length} BODY[] {10})`);
      assert.deepEqual(data[1]!.literals, [MESSAGES[1]!.raw.subarray(0, 10)]);
      assert.deepEqual(data[0]!.literals, [MESSAGES[0]!.raw], 'other messages are whole');
      assert.deepEqual(data[2]!.literals, [MESSAGES[2]!.raw]);
      // RFC822 is a body FETCH too; a partial BODY[]<0.100> is not.
      assert.deepEqual(fetches(await w.cmd('b', 'UID FETCH 2 RFC822'), 'b').data[0]!.literals, [MESSAGES[1]!.raw.subarray(0, 10)]);
      assert.deepEqual(fetches(await w.cmd('c', 'UID FETCH 2 BODY.PEEK[]<0.30>'), 'c').data[0]!.literals, [MESSAGES[1]!.raw.subarray(0, 30)]);
      await checkListingIntact(w, 'd');
    });
  });

  test('swapBodies: uidA carries uidB`s bytes and the other way round, each labelled as asked; listings unchanged', async () => {
    await withWire({ swapBodies: { INBOX: [[1, 3]] } }, async (w) => {
      const { data } = fetches(await w.cmd('a', 'UID FETCH 1:4 (UID BODY.PEEK[])'), 'a');
      assert.deepEqual(
        data.map((r) => [r.text, r.literals[0]]),
        [
          [`* 1 FETCH (UID 1 BODY[] {${MESSAGES[2]!.raw.length}})`, MESSAGES[2]!.raw],
          [`* 2 FETCH (UID 2 BODY[] {${MESSAGES[1]!.raw.length}})`, MESSAGES[1]!.raw],
          [`* 3 FETCH (UID 3 BODY[] {${MESSAGES[0]!.raw.length}})`, MESSAGES[0]!.raw],
          [`* 4 FETCH (UID 4 BODY[] {${MESSAGES[3]!.raw.length}})`, MESSAGES[3]!.raw],
        ],
      );
      // Asked one at a time as well.
      assert.deepEqual(fetches(await w.cmd('b', 'UID FETCH 3 BODY.PEEK[]'), 'b').data[0]!.literals, [MESSAGES[0]!.raw]);
      await checkListingIntact(w, 'c');
    });
  });

  test('omitFromBodyFetch: the messages are left out and the command still ends OK; listings show them', async () => {
    await withWire({ omitFromBodyFetch: { INBOX: [2, 4] } }, async (w) => {
      const { data, tagged } = fetches(await w.cmd('a', 'UID FETCH 1:4 (UID BODY.PEEK[])'), 'a');
      assert.match(tagged, /^a OK UID FETCH completed/);
      assert.deepEqual(
        data.map((r) => r.text.replace(/ BODY.*/, '')),
        ['* 1 FETCH (UID 1', '* 3 FETCH (UID 3'],
      );
      const alone = fetches(await w.cmd('b', 'UID FETCH 2 (UID BODY.PEEK[])'), 'b');
      assert.deepEqual([alone.data.length, alone.tagged], [0, 'b OK UID FETCH completed.']);
      await checkListingIntact(w, 'c');
    });
  });

  test('okBeforeData: the tagged OK comes first, the FETCH data right after it; listings are in order', async () => {
    await withWire({ okBeforeData: { INBOX: true } }, async (w) => {
      w.socket.write('a UID FETCH 1:2 (UID BODY.PEEK[])\r\n');
      const out = await w.until((b) => parse(b).responses.length >= 3);
      const { responses, rest } = parse(out);
      assert.equal(rest.length, 0);
      assert.deepEqual(
        responses.map((r) => r.text),
        ['a OK UID FETCH completed.', `* 1 FETCH (UID 1 BODY[] {${MESSAGES[0]!.raw.length}})`, `* 2 FETCH (UID 2 BODY[] {${MESSAGES[1]!.raw.length}})`],
      );
      assert.deepEqual(responses[2]!.literals, [MESSAGES[1]!.raw]);
      w.take();
      await checkListingIntact(w, 'b');
    });
  });

  test('fetchWithoutUid: body answers carry no UID, even for UID FETCH; listings do', async () => {
    await withWire({ fetchWithoutUid: { INBOX: true } }, async (w) => {
      const { data } = fetches(await w.cmd('a', 'UID FETCH 3 (UID FLAGS BODY.PEEK[])'), 'a');
      assert.deepEqual(data[0]!.text, `* 3 FETCH (FLAGS (\\Seen) BODY[] {${MESSAGES[2]!.raw.length}})`);
      assert.deepEqual(data[0]!.literals, [MESSAGES[2]!.raw]);
      await checkListingIntact(w, 'b');
    });
  });

  test('reportUidAs: every FETCH reports the real UID 4 as 3 (a listing shows 3 twice, 4 never); UID FETCH 4 still selects 4', async () => {
    await withWire({ reportUidAs: { INBOX: { 4: 3 } } }, async (w) => {
      const listing = fetches(await w.cmd('a', LISTING), 'a').data;
      assert.deepEqual(
        listing.map((r) => /UID (\d+)/.exec(r.text)![1]),
        ['1', '2', '3', '3'],
      );
      assert.deepEqual(listing[3]!.literals, [headerOf(MESSAGES[3]!.raw)], 'the header is the real message 4`s');
      const body = fetches(await w.cmd('b', 'UID FETCH 4 (UID BODY.PEEK[])'), 'b').data;
      assert.deepEqual([body[0]!.text.replace(/ BODY.*/, ''), body[0]!.literals[0]], ['* 4 FETCH (UID 3', MESSAGES[3]!.raw]);
      assert.equal(fetches(await w.cmd('c', 'UID FETCH 3 (UID BODY.PEEK[])'), 'c').data[0]!.literals[0]!.toString(), MESSAGES[2]!.raw.toString());
      // Without a UID item there is nothing to misreport.
      assert.equal(fetches(await w.cmd('d', 'FETCH 4 FLAGS'), 'd').data[0]!.text, '* 4 FETCH (FLAGS ())');
    });
  });

  test('byeOnBodyFetch: * BYE and a close before any data; a listing and a body fetch without that message work', async () => {
    await withWire({ byeOnBodyFetch: { INBOX: [3] } }, async (w, srv) => {
      await checkListingIntact(w, 'a');
      assert.equal(fetches(await w.cmd('b', 'UID FETCH 1:2 (UID BODY.PEEK[])'), 'b').data.length, 2);
      w.socket.write('c UID FETCH 2:4 (UID BODY.PEEK[])\r\n');
      await w.closed;
      assert.equal(w.take().toString(), '* BYE Server shutting down\r\n');
      assert.ok(srv.log.includes('c <fault: body FETCH answered with * BYE, connection closed>'));
    });
  });
});

// ---------------------------------------------------------------------------------------------
// Oversize bodies: streamed with backpressure
// ---------------------------------------------------------------------------------------------

describe('scripted IMAP server: oversizeBody (raw socket)', () => {
  test('the literal is exactly `bytes` bytes: the message, then CRLF-ended X lines; listings keep the real size', async () => {
    const bytes = 3 * 1024 * 1024 + 7;
    await withWire({ oversizeBody: { INBOX: { 2: bytes } } }, async (w) => {
      const { data, tagged } = fetches(await w.cmd('a', 'UID FETCH 1:3 (UID RFC822.SIZE BODY.PEEK[])', 20_000), 'a');
      assert.match(tagged, /^a OK/);
      const raw = MESSAGES[1]!.raw;
      assert.equal(data[1]!.text, `* 2 FETCH (UID 2 RFC822.SIZE ${raw.length} BODY[] {${bytes}})`);
      const lit = data[1]!.literals[0]!;
      assert.equal(lit.length, bytes);
      assert.deepEqual(lit.subarray(0, raw.length), raw);
      const filler = lit.subarray(raw.length).toString('latin1');
      assert.match(filler, /^(X{78}\r\n)+X{0,78}\r?$/);
      assert.deepEqual(data[2]!.literals, [MESSAGES[2]!.raw]);
      await checkListingIntact(w, 'b');
    });
  });

  test('a client that does not read holds the server back (bounded memory), and closing stops the writer at once', async () => {
    const bytes = 96 * 1024 * 1024;
    await withWire({ oversizeBody: { INBOX: { 1: bytes } } }, async (w, srv) => {
      const before = process.memoryUsage().arrayBuffers;
      w.socket.write('a UID FETCH 1 (UID BODY.PEEK[])\r\n');
      await w.until((b) => b.length > 0);
      w.socket.pause();
      await new Promise((r) => setTimeout(r, 400));
      const held = w.received;
      await new Promise((r) => setTimeout(r, 200));
      assert.equal(w.received, held, 'nothing arrives while the client does not read');
      const grown = process.memoryUsage().arrayBuffers - before;
      // Without backpressure the server would hold all 96 MB here; it holds one chunk and the socket's buffer.
      assert.ok(grown < 24 * 1024 * 1024, `memory grew by ${grown} bytes`);
      assert.ok(held < 24 * 1024 * 1024, `${held} bytes arrived`);
      w.close();
      const t0 = Date.now();
      while (srv.connections() > 0 && Date.now() - t0 < 2000) await new Promise((r) => setTimeout(r, 10));
      assert.equal(srv.connections(), 0, 'the server ended the connection once the client closed');
    });
  });
});

// ---------------------------------------------------------------------------------------------
// Listing faults
// ---------------------------------------------------------------------------------------------

describe('scripted IMAP server: hostile listings (raw socket)', () => {
  test('slowListing: each * n FETCH line delayMs after the previous one, then OK; body fetches are not slowed', async () => {
    const delayMs = 150;
    await withWire({ slowListing: { INBOX: { delayMs } } }, async (w) => {
      const base = w.received;
      const sent = Date.now();
      const out = await w.cmd('a', LISTING);
      const { data } = fetches(out, 'a');
      assert.equal(data.length, 4);
      // When each line arrived: the first chunk that reached past its start.
      const text = out.toString('latin1');
      const times = [...text.matchAll(/^\* \d FETCH|^a OK/gm)].map((m) => w.arrivals.find(([, total]) => total > base + m.index!)![0]);
      const gaps = times.map((t, i) => t - (i ? times[i - 1]! : sent));
      for (const g of gaps.slice(0, 4)) assert.ok(g >= delayMs - 15 && g < delayMs + 200, `gaps ${gaps}`);
      assert.ok(gaps[4]! < 100, `the OK follows the last line: gaps ${gaps}`);
      const t0 = Date.now();
      fetches(await w.cmd('b', 'UID FETCH 1:4 (UID BODY.PEEK[])'), 'b');
      assert.ok(Date.now() - t0 < delayMs, 'a body fetch is answered at once');
    });
  });

  test('untaggedFlood EXISTS: count identical * n EXISTS lines before the data; EXPUNGE: nothing, noted in the log', async () => {
    const count = 100_000;
    await withWire({ untaggedFlood: { INBOX: { kind: 'EXISTS', count }, Other: { kind: 'EXPUNGE', count } } }, async (w, srv) => {
      const out = await w.cmd('a', LISTING, 20_000);
      const { responses } = parse(out);
      assert.equal(responses.length, count + 5);
      assert.ok(responses.slice(0, count).every((r) => r.text === '* 4 EXISTS'));
      assert.deepEqual(
        responses.slice(count).map((r) => r.text.slice(0, 11)),
        ['* 1 FETCH (', '* 2 FETCH (', '* 3 FETCH (', '* 4 FETCH (', 'a OK UID FE'],
      );
      assert.equal(fetches(await w.cmd('b', 'UID FETCH 1:4 (UID BODY.PEEK[])'), 'b').untagged.length, 4, 'a body fetch has no flood');
      await w.cmd('c', 'EXAMINE Other');
      assert.equal(fetches(await w.cmd('d', LISTING), 'd').untagged.length, 4);
      assert.ok(srv.log.includes('d <fault: untaggedFlood EXPUNGE is not emitted>'));
    });
  });

  test('endlessLine: * 1 FETCH (UID 1 FLAGS ( and `bytes` a`s, no CRLF, then silence without a close; stop() ends it', async () => {
    const bytes = 3 * 1024 * 1024;
    const srv = await serve({ endlessLine: { INBOX: { bytes } } });
    const w = await Wire.open(srv);
    try {
      await w.enter();
      w.socket.write(`a ${LISTING}\r\n`);
      const prefix = '* 1 FETCH (UID 1 FLAGS (';
      const out = await w.until((b) => b.length >= prefix.length + bytes);
      assert.equal(out.length, prefix.length + bytes);
      assert.equal(out.toString('latin1', 0, prefix.length), prefix);
      assert.ok(out.subarray(prefix.length).every((c) => c === 0x61));
      const got = w.received;
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(w.received, got, 'nothing more arrives');
      assert.equal(w.isClosed, false);
      assert.equal(srv.connections(), 1);
    } finally {
      await srv.stop();
    }
    await w.closed;
    assert.equal(srv.connections(), 0);
  });

  test('stop() ends connections in the middle of a slow listing and of an oversize body the client does not read', async () => {
    const srv = await serve({ slowListing: { INBOX: { delayMs: 60_000 } }, oversizeBody: { Other: { 1: 300 * 1024 * 1024 } } });
    const slow = await Wire.open(srv);
    const big = await Wire.open(srv);
    await slow.enter();
    await big.enter('Other');
    slow.socket.write(`a ${LISTING}\r\n`);
    big.socket.write('a UID FETCH 1 (UID BODY.PEEK[])\r\n');
    await big.until((b) => b.length > 0);
    big.socket.pause();
    await new Promise((r) => setTimeout(r, 100));
    const t0 = Date.now();
    await srv.stop();
    // A paused client socket does not read, so it would never see the close.
    big.socket.resume();
    await Promise.all([slow.closed, big.closed]);
    assert.ok(Date.now() - t0 < 2000, `stop() took ${Date.now() - t0} ms`);
    assert.equal(srv.connections(), 0);
    assert.equal(slow.bytes.length, 0, 'the slow listing had sent nothing yet');
  });
});

// ---------------------------------------------------------------------------------------------
// Echoed secrets and the hostile greeting
// ---------------------------------------------------------------------------------------------

describe('scripted IMAP server: echoSecrets and hostileGreeting (raw socket)', () => {
  const oauth = { ...exchange, capabilities: [...exchange.capabilities, 'AUTH=XOAUTH2', 'AUTH=LOGIN'] };
  const b64 = (s: string) => Buffer.from(s).toString('base64');

  async function echoServer(faults: UserFaults): Promise<ScriptedImapServer> {
    return startScriptedImap({
      personality: oauth,
      users: { alice: { password: PASSWORD, folders: [{ name: 'INBOX', messages: MESSAGES }], tokens: ['ya29.good'] } },
      faults: { alice: faults },
    });
  }

  test('echoSecrets: failed LOGIN and AUTHENTICATE (PLAIN, LOGIN, XOAUTH2) answers quote what was sent; the log does not', async () => {
    const srv = await echoServer({ echoSecrets: true });
    const w = await Wire.open(srv);
    try {
      await w.until((b) => b.includes('\r\n'));
      w.take();
      const said = async (tag: string, line: string) => (await (line ? w.cmd(tag, line) : w.tagged(tag))).toString();
      assert.equal(await said('a', 'LOGIN alice "s3cret pw"'), 'a NO [AUTHENTICATIONFAILED] Invalid login "alice" "s3cret pw"\r\n');
      assert.equal(await said('b', 'LOGIN mallory hunter2'), 'b NO [AUTHENTICATIONFAILED] Invalid login "mallory" "hunter2"\r\n', 'an unknown user too');
      const plain = b64('\0alice\0plainpass');
      assert.equal(await said('c', `AUTHENTICATE PLAIN ${plain}`), `c NO [AUTHENTICATIONFAILED] Bad credentials ${plain} plainpass\r\n`);
      // After a "+" continuation.
      w.socket.write('d AUTHENTICATE PLAIN\r\n');
      await w.until((b) => b.includes('\r\n'));
      assert.equal(w.take().toString(), '+ \r\n');
      const plain2 = b64('\0alice\0other pass');
      w.socket.write(`${plain2}\r\n`);
      assert.equal(await said('d', ''), `d NO [AUTHENTICATIONFAILED] Bad credentials ${plain2} other pass\r\n`);
      // SASL LOGIN: the password's base64 and the password.
      w.socket.write(`e AUTHENTICATE LOGIN ${b64('alice')}\r\n`);
      await w.until((b) => b.includes('\r\n'));
      assert.equal(w.take().toString(), `+ ${b64('Password:')}\r\n`);
      w.socket.write(`${b64('loginpass')}\r\n`);
      assert.equal(await said('e', ''), `e NO [AUTHENTICATIONFAILED] Bad credentials ${b64('loginpass')} loginpass\r\n`);
      // XOAUTH2: the "+ <JSON>" step as always, then the echo with the token.
      const xo = b64('user=alice\x01auth=Bearer ya29.expired\x01\x01');
      w.socket.write(`f AUTHENTICATE XOAUTH2 ${xo}\r\n`);
      await w.until((b) => b.includes('\r\n'));
      assert.match(w.take().toString(), /^\+ \S+\r\n$/);
      w.socket.write('\r\n');
      assert.equal(await said('f', ''), `f NO [AUTHENTICATIONFAILED] Bad credentials ${xo} ya29.expired\r\n`);
      // A good login still works, and the log has none of the secrets.
      assert.match(await said('g', LOGIN), /^g OK/);
      const log = srv.log.join('\n');
      for (const secret of ['s3cret', 'hunter2', 'plainpass', 'other pass', 'loginpass', 'ya29', plain, plain2, xo, b64('loginpass')]) assert.ok(!log.includes(secret), secret);
    } finally {
      w.close();
      await srv.stop();
    }
  });

  test('{password}, {sasl} and {token} in fetchFailures and appendFailures texts become what the connection sent', async () => {
    const response = 'NO [UNAVAILABLE] pass=<{password}> sasl=<{sasl}> token=<{token}>';
    const faults: UserFaults = {
      echoSecrets: true,
      fetchFailures: { INBOX: { 1: { times: 'always', response } } },
      appendFailures: [{ match: 'Subject: refused', times: 'always', response: 'NO [OVERQUOTA] {password}|{sasl}|{token}' }],
    };
    const srv = await echoServer(faults);
    try {
      // LOGIN: only a password.
      const w = await Wire.open(srv);
      await w.enter();
      assert.equal((await w.cmd('a', 'UID FETCH 1 BODY.PEEK[]')).toString(), `a NO [UNAVAILABLE] pass=<${PASSWORD}> sasl=<> token=<>\r\n`);
      w.close();
      // A failed XOAUTH2, then PLAIN: the last of each.
      const v = await Wire.open(srv);
      await v.until((b) => b.includes('\r\n'));
      v.take();
      v.socket.write(`x AUTHENTICATE XOAUTH2 ${b64('user=alice\x01auth=Bearer tok.bad\x01\x01')}\r\n`);
      await v.until((b) => b.includes('\r\n'));
      v.take();
      v.socket.write('\r\n');
      await v.tagged('x');
      const plain = b64(`\0alice\0${PASSWORD}`);
      assert.match((await v.cmd('y', `AUTHENTICATE PLAIN ${plain}`)).toString(), /^y OK/);
      assert.match((await v.cmd('z', 'EXAMINE INBOX')).toString(), /z OK/m);
      assert.equal((await v.cmd('a', 'UID FETCH 1 BODY.PEEK[]')).toString(), `a NO [UNAVAILABLE] pass=<${PASSWORD}> sasl=<${plain}> token=<tok.bad>\r\n`);
      const msg = 'Subject: refused\r\n\r\nx\r\n';
      assert.equal((await v.cmd('b', `APPEND INBOX {${msg.length}+}\r\n${msg}`)).toString(), `b NO [OVERQUOTA] ${PASSWORD}|${plain}|tok.bad\r\n`);
      v.close();
    } finally {
      await srv.stop();
    }
  });

  test('without echoSecrets the failures keep their usual text', async () => {
    const srv = await echoServer({});
    const w = await Wire.open(srv);
    try {
      await w.until((b) => b.includes('\r\n'));
      w.take();
      assert.equal((await w.cmd('a', 'LOGIN alice wrong')).toString(), 'a NO [AUTHENTICATIONFAILED] Authentication failed.\r\n');
      assert.equal((await w.cmd('b', `AUTHENTICATE PLAIN ${b64('\0alice\0wrong')}`)).toString(), 'b NO [AUTHENTICATIONFAILED] Authentication failed.\r\n');
    } finally {
      w.close();
      await srv.stop();
    }
  });

  test('hostileGreeting: * OK and `bytes` a`s without CRLF, then silence without a close; stop() ends it', async () => {
    const bytes = 2 * 1024 * 1024;
    const srv = await serve({}, { hostileGreeting: { bytes } });
    const w = await Wire.open(srv);
    try {
      const out = await w.until((b) => b.length >= 5 + bytes);
      assert.equal(out.length, 5 + bytes);
      assert.equal(out.toString('latin1', 0, 5), '* OK ');
      assert.ok(out.subarray(5).every((c) => c === 0x61));
      w.socket.write('a CAPABILITY\r\n');
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(w.received, out.length, 'nothing more arrives, not even for a command');
      assert.equal(w.isClosed, false);
    } finally {
      await srv.stop();
    }
    await w.closed;
  });

  test('bad hostile settings throw when the server starts', async () => {
    const bad: UserFaults[] = [{ swapBodies: { INBOX: [[2, 2]] } }, { truncateBody: { INBOX: { 1: -1 } } }, { slowListing: { INBOX: { delayMs: 1.5 } } }, { untaggedFlood: { INBOX: { kind: 'EXIST' as 'EXISTS', count: 1 } } }];
    for (const faults of bad) await assert.rejects(serve(faults), /scripted-imap: /);
    await assert.rejects(serve({}, { hostileGreeting: { bytes: -1 } }), /hostileGreeting/);
  });
});

// ---------------------------------------------------------------------------------------------
// What imapflow 2.1.2 does with them (observations for the engine's tests, see README.md)
// ---------------------------------------------------------------------------------------------

describe('scripted IMAP server: hostile faults through imapflow', () => {
  const listing = { uid: true, flags: true, internalDate: true, size: true, headers: true } as const;

  async function session(faults: UserFaults, fn: (c: ImapFlow, srv: ScriptedImapServer) => Promise<void>): Promise<void> {
    const srv = await serve(faults);
    const c = await imapflow(srv);
    try {
      await c.connect();
      await c.mailboxOpen('INBOX', { readOnly: true });
      await fn(c, srv);
    } finally {
      c.close();
      await srv.stop();
    }
  }

  test('the commands mailmover`s queries become are the listing and body FETCHes the faults look for', async () => {
    await session({ truncateBody: { INBOX: { 2: 5 } }, reportUidAs: { INBOX: { 1: 9 } } }, async (c, srv) => {
      const listed = [];
      for await (const m of c.fetch('1:*', listing, { uid: true })) listed.push([m.uid, m.size, m.headers?.length]);
      assert.deepEqual(listed, MESSAGES.map((m, i) => [i ? i + 1 : 9, m.raw.length, headerOf(m.raw).length]));
      const flagsOnly = [];
      for await (const m of c.fetch('1:*', { uid: true, flags: true }, { uid: true })) flagsOnly.push(m.uid);
      assert.deepEqual(flagsOnly, [9, 2, 3, 4]);
      const one = await c.fetchOne('2', { uid: true, source: true }, { uid: true });
      assert.ok(one);
      assert.deepEqual(one.source, MESSAGES[1]!.raw.subarray(0, 5), 'imapflow hands the short body over as it is');
      const fetchLines = srv.log.filter((l) => / UID FETCH /.test(l)).map((l) => l.replace(/^\S+ /, ''));
      assert.deepEqual(fetchLines, [LISTING, 'UID FETCH 1:* (UID FLAGS)', 'UID FETCH 2 (UID BODY.PEEK[])']);
    });
  });

  test('okBeforeData: fetch() yields nothing, and the late data lands in the NEXT command: fetchOne(2) returns UID 1', async () => {
    await session({ okBeforeData: { INBOX: true } }, async (c) => {
      const got = [];
      for await (const m of c.fetch('1:4', { uid: true, source: true }, { uid: true })) got.push(m.uid);
      assert.deepEqual(got, [], 'the OK ended the fetch before any data');
      // The four late `* n FETCH` lines came in the same write as the OK. imapflow hands them to
      // whatever command runs next: here a fetchOne for UID 2, which resolves with UID 1's message.
      const next = await c.fetchOne('2', { uid: true, source: true }, { uid: true });
      assert.ok(next);
      assert.deepEqual([next.uid, next.source], [1, MESSAGES[0]!.raw]);
      // Late data that arrives while no command runs is dropped; the connection stays usable.
      await new Promise((r) => setTimeout(r, 200));
      assert.equal(c.usable, true);
      const status = await c.status('INBOX', { messages: true });
      assert.ok(status);
      assert.equal(status.messages, 4);
    });
  });

  test('okBeforeData: a fetch alone resolves empty (fetchOne false), with no error', async () => {
    await session({ okBeforeData: { INBOX: true } }, async (c) => {
      assert.equal(await c.fetchOne('2', { uid: true, source: true }, { uid: true }), false);
      assert.equal(c.usable, true);
    });
  });

  test('fetchWithoutUid: imapflow yields the messages with seq and source but uid undefined, even for a UID fetch', async () => {
    await session({ fetchWithoutUid: { INBOX: true } }, async (c) => {
      const got = [];
      for await (const m of c.fetch('1:4', { uid: true, source: true }, { uid: true })) got.push([m.seq, m.uid, m.source?.length]);
      assert.deepEqual(got, MESSAGES.map((m, i) => [i + 1, undefined, m.raw.length]));
      const one = await c.fetchOne('3', { uid: true, source: true }, { uid: true });
      assert.ok(one);
      assert.deepEqual([one.seq, one.uid], [3, undefined]);
    });
  });

  test('reportUidAs: imapflow reports the UID the server said, does not notice duplicates, nor that fetchOne(2) came back as 9', async () => {
    await session({ reportUidAs: { INBOX: { 4: 3, 2: 9 } } }, async (c) => {
      const listed = [];
      for await (const m of c.fetch('1:*', listing, { uid: true })) listed.push(m.uid);
      assert.deepEqual(listed, [1, 9, 3, 3]);
      const one = await c.fetchOne('2', { uid: true, source: true }, { uid: true });
      assert.ok(one);
      assert.deepEqual([one.uid, one.source], [9, MESSAGES[1]!.raw]);
    });
  });

  test('omitFromBodyFetch: fetchOne() resolves false with no error; byeOnBodyFetch: it rejects with NoConnection, not the BYE text', async () => {
    await session({ omitFromBodyFetch: { INBOX: [2] } }, async (c) => {
      assert.equal(await c.fetchOne('2', { uid: true, source: true }, { uid: true }), false);
      assert.equal(c.usable, true);
    });
    await session({ byeOnBodyFetch: { INBOX: [2] } }, async (c) => {
      await assert.rejects(c.fetchOne('2', { uid: true, source: true }, { uid: true }), (e: Error & { code?: string }) => e.code === 'NoConnection');
      assert.equal(c.usable, false);
    });
  });

  test('hostileGreeting: connect() fails only at greetingTimeout (connectionTimeout does not cover it), or at once with a smaller maxLineLength', async () => {
    const srv = await serve({}, { hostileGreeting: { bytes: 2 * 1024 * 1024 } });
    try {
      const slow = await imapflow(srv, { greetingTimeout: 700, connectionTimeout: 200 });
      const t0 = Date.now();
      await assert.rejects(slow.connect(), (e: Error & { code?: string }) => e.code === 'GREETING_TIMEOUT');
      const took = Date.now() - t0;
      assert.ok(took >= 650, `failed after ${took} ms, at the greeting timeout`);
      slow.close();
      const capped = await imapflow(srv, { greetingTimeout: 10_000, maxLineLength: 1024 * 1024 });
      const t1 = Date.now();
      await assert.rejects(capped.connect(), (e: Error & { code?: string }) => e.code === 'LineTooLarge');
      assert.ok(Date.now() - t1 < 5000);
      capped.close();
    } finally {
      await srv.stop();
    }
  });
});
