/**
 * Throwaway ClamAV daemons (clamd) for the scanning tests, and the EICAR test messages they detect.
 *
 * Debian's clamav packages ship no signatures, and the real databases need the internet, ~1 GB of
 * memory and 10-30 s to load. Each {@link startClamd} call therefore creates a private temp directory
 * with a two-signature database that matches only the EICAR test string (a whole-file MD5 `.hdb` and a
 * substring `.ndb`, so it is found inside mail bodies and decoded attachments too), its own clamd.conf,
 * log, temp dir and unix socket, starts `clamd` in the foreground as a child of this process, listening
 * on a free loopback port and on that socket, and waits until both answer PING. Start takes ~150 ms.
 *
 * The EICAR string is assembled at run time from parts, so no file of this repository contains it and
 * a virus scanner running over the checkout has nothing to find.
 *
 * clamd must be installed (Debian: clamav-daemon); tests fail, they do not skip, when it is missing.
 * See /work/shared/notes/components.md §2 for the measured behaviour this is built on.
 */
import { createHash } from 'node:crypto';
import { closeSync, openSync } from 'node:fs';
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { canBind, findBinary, finishStop, freePort, killInstance, notReadyReason, once, retryPorts, sleep, spawnDetached, type Spawned, tail, untrackInstance, waitReady, watchInstance, withInstanceDir } from './server-process.js';

/** The 68-byte EICAR anti-virus test string, assembled here so that no source file holds it whole. */
export const EICAR: string = ['X5O!P%@AP[4\\PZX54(P^)7CC)7}$', ['EICAR', 'STANDARD', 'ANTIVIRUS', 'TEST', 'FILE!$H+H*'].join('-')].join('');

/** The part of {@link EICAR} the substring signature looks for. */
const EICAR_MARK = ['EICAR', 'STANDARD', 'ANTIVIRUS', 'TEST', 'FILE'].join('-');

/** Options for {@link startClamd}. */
export interface ClamdOptions {
  /** clamd's `StreamMaxLength` in its own syntax (`1M`, `512K`, `10M`). Default `'1M'`. */
  streamMaxLength?: string;
  /**
   * Turn off clamd's cache of clean files (`DisableCache yes`). clamd remembers the hash of every
   * clean file and skips it next time; a migration sees every message once, so a benchmark that
   * copies the same corpus in several rounds must turn the cache off to measure real scanning.
   */
  disableCache?: boolean;
  /**
   * clamd's `MaxFileSize` and `MaxScanSize` (its syntax, e.g. `1M`; clamd's defaults when absent) and
   * `AlertExceedsMax` (default no): what clamd answers for a message over them.
   */
  limits?: { maxFileSize?: string; maxScanSize?: string; alertExceedsMax?: boolean };
  /** Keep the private directory after {@link ClamdServer.stop} (also with `KEEP_TEST_DIRS=1`). */
  keep?: boolean;
}

/** A running throwaway clamd. */
export interface ClamdServer {
  /** TCP port on 127.0.0.1. */
  port: number;
  /** Absolute path of its unix socket. */
  socketPath: string;
  /** PID of the running clamd (our direct child); changes with {@link restart}. */
  readonly pid: number;
  /** The private directory (config, signatures, log, socket). */
  dir: string;
  /** Path of clamd's log file (useful in failure messages). */
  logFile: string;
  /** `clamd://127.0.0.1:PORT`. */
  url(): string;
  /** `clamd:///PATH/TO/clamd.sock`. */
  socketUrl(): string;
  /**
   * SIGKILLs clamd now and waits for its exit and for the port to be free: simulates a crash. The
   * directory stays (with the stale socket file), so {@link restart} works. No-op when not running.
   */
  kill(): Promise<void>;
  /** Starts clamd again on the same port and socket (killing it first if it runs) and waits until it answers. */
  restart(): Promise<void>;
  /** SIGKILLs clamd and removes the directory unless kept. Idempotent; the server cannot be restarted after. */
  stop(): Promise<void>;
}

/** How long a start waits for PONG before giving up. */
const START_TIMEOUT_MS = 10_000;
/** Attempts with fresh ports when another process grabbed the port between our probe and clamd's bind. */
const PORT_ATTEMPTS = 5;

/** The clamd binary, or an error that says what to install. */
function clamdBinary(): string {
  const binary = findBinary('clamd');
  if (!binary) {
    throw new Error('clamd not found (looked in /usr/bin, /usr/sbin, /bin and PATH): install clamav-daemon (apt-get install clamav-daemon)');
  }
  return binary;
}

/**
 * The signature database: `.hdb` lines are `MD5:SIZE:NAME` (the whole scanned object), `.ndb` lines
 * `NAME:TARGET:OFFSET:HEX` (target 0 = any file, offset `*` = anywhere). clamd refuses to start with an
 * empty database directory.
 */
async function writeSignatures(dbDir: string): Promise<void> {
  await mkdir(dbDir, { recursive: true });
  const md5 = createHash('md5').update(EICAR, 'latin1').digest('hex');
  await writeFile(path.join(dbDir, 'test.hdb'), `${md5}:${Buffer.byteLength(EICAR, 'latin1')}:Test.EICAR.HDB\n`);
  await writeFile(path.join(dbDir, 'test.ndb'), `Test.EICAR.NDB:0:*:${Buffer.from(EICAR_MARK, 'latin1').toString('hex')}\n`);
}

/**
 * The instance's clamd.conf. No `User` line: clamd keeps the invoking user. `SelfCheck 0`: no database
 * reloads in the middle of a test.
 */
function renderConfig(dir: string, port: number, streamMaxLength: string, disableCache: boolean, limits: ClamdOptions['limits'] = {}): string {
  const extra = [
    limits.maxFileSize && `MaxFileSize ${limits.maxFileSize}`,
    limits.maxScanSize && `MaxScanSize ${limits.maxScanSize}`,
    limits.alertExceedsMax && 'AlertExceedsMax yes',
  ].filter(Boolean);
  return `# throwaway test instance written by test/helpers/clamd.ts
Foreground yes
DatabaseDirectory ${dir}/db
TemporaryDirectory ${dir}/tmp
LocalSocket ${dir}/clamd.sock
LocalSocketMode 660
TCPSocket ${port}
TCPAddr 127.0.0.1
PidFile ${dir}/clamd.pid
LogFile ${dir}/clamd.log
LogTime yes
StreamMaxLength ${streamMaxLength}
MaxThreads 4
SelfCheck 0
DisableCache ${disableCache ? 'yes' : 'no'}
${extra.map((l) => `${l}\n`).join('')}`;
}

/**
 * True when clamd at `target` answers `zPING\0` with `PONG`. Written against the socket directly, not
 * with the client under test, so the harness does not depend on the code it tests.
 */
function pingsBack(target: { port: number } | { path: string }): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = 'port' in target ? net.connect({ host: '127.0.0.1', port: target.port }) : net.connect({ path: target.path });
    let reply = '';
    const done = (ok: boolean) => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(1000, () => done(false));
    sock.on('error', () => done(false));
    sock.on('connect', () => sock.write('zPING\0'));
    sock.on('data', (d: Buffer) => {
      reply += d.toString('latin1');
      if (reply.includes('\0')) done(reply === 'PONG\0');
    });
    sock.on('close', () => done(reply.replace(/\0$/, '') === 'PONG'));
  });
}

/** Waits until nothing listens on `port` any more (at most 3 s). */
async function portReleased(port: number): Promise<void> {
  const deadline = Date.now() + 3000;
  while (Date.now() < deadline && !(await canBind(port))) await sleep(10);
}

interface Paths {
  dir: string;
  conf: string;
  socketPath: string;
  logFile: string;
  outFile: string;
}

/** Spawns clamd on an existing config and waits for PONG on both listeners; kills it again if it does not come up. */
async function launch(binary: string, p: Paths, port: number, keep: boolean): Promise<{ master: Spawned } | { error: Error; evidence: string }> {
  const outFd = openSync(p.outFile, 'a');
  const child = spawnDetached(binary, ['-c', p.conf], outFd);
  closeSync(outFd); // the child holds its own copy
  const master = watchInstance(child, 'clamd', p.dir, keep);
  const ready = async () => (await pingsBack({ port })) && (await pingsBack({ path: p.socketPath }));
  if (await waitReady(master, START_TIMEOUT_MS, ready)) return { master };
  await killInstance(master);
  const evidence = [await tail(p.logFile), await tail(p.outFile)].filter(Boolean).join('\n');
  return { error: new Error(`clamd (${p.conf}) ${notReadyReason(master, START_TIMEOUT_MS)}:\n${evidence}`), evidence };
}

/**
 * Starts a throwaway clamd on a free loopback port and a unix socket in its own directory, with the
 * EICAR-only signature database, and resolves once both answer PING. Always call `stop()` (e.g. in
 * `after()`); a process-exit hook kills leftovers anyway. Throws when clamd is not installed, and with
 * the tail of clamd's log when it exits or does not answer within 10 s.
 */
export async function startClamd(options: ClamdOptions = {}): Promise<ClamdServer> {
  const binary = clamdBinary();
  const streamMaxLength = options.streamMaxLength ?? '1M';
  for (const size of [options.limits?.maxFileSize, options.limits?.maxScanSize]) {
    if (size !== undefined && !/^\d+[KkMm]?$/.test(size)) throw new Error(`clamd limit ${JSON.stringify(size)} is not in clamd syntax (e.g. 1M, 512K)`);
  }
  if (!/^\d+[KkMm]?$/.test(streamMaxLength)) throw new Error(`streamMaxLength ${JSON.stringify(streamMaxLength)} is not in clamd syntax (e.g. 1M, 512K)`);
  const keepByEnv = process.env.KEEP_TEST_DIRS === '1';
  const keep = keepByEnv || options.keep === true;

  const dir = await mkdtemp(path.join(os.tmpdir(), 'mailmover-clamd-'));
  return withInstanceDir(dir, keep, async () => {
    await writeSignatures(path.join(dir, 'db'));
    await mkdir(path.join(dir, 'tmp'));
    const paths: Paths = {
      dir,
      conf: path.join(dir, 'clamd.conf'),
      socketPath: path.join(dir, 'clamd.sock'),
      logFile: path.join(dir, 'clamd.log'),
      outFile: path.join(dir, 'clamd.out'),
    };
    return retryPorts<ClamdServer>('clamd', PORT_ATTEMPTS, async () => {
      const port = await freePort();
      await writeFile(paths.conf, renderConfig(dir, port, streamMaxLength, options.disableCache === true, options.limits));
      const started = await launch(binary, paths, port, keep);
      if ('master' in started) return { server: makeServer(binary, paths, port, started.master, keep, keepByEnv) };
      // Lost the race for the port: try again with a new one. Anything else is a real failure.
      return { error: started.error, retry: /already in use|bind\(\) error/i.test(started.evidence) };
    });
  });
}

/** The {@link ClamdServer} around a started clamd; restart() swaps the process behind it. */
function makeServer(binary: string, p: Paths, port: number, first: Spawned, keep: boolean, keepByEnv: boolean): ClamdServer {
  let master = first;
  let stopped = false;
  const kill = async () => {
    await killInstance(master);
    untrackInstance(master.pid);
    await portReleased(port);
  };
  return {
    port,
    socketPath: p.socketPath,
    get pid() {
      return master.pid;
    },
    dir: p.dir,
    logFile: p.logFile,
    url: () => `clamd://127.0.0.1:${port}`,
    socketUrl: () => `clamd://${p.socketPath}`,
    kill,
    async restart() {
      if (stopped) throw new Error('this clamd was stopped; start a new one');
      await kill();
      const started = await launch(binary, p, port, keep);
      if (!('master' in started)) throw started.error;
      master = started.master;
      // stop() ran while this one was starting: it stopped the old process, so stop the new one too.
      if (stopped) await kill();
    },
    stop: once(async () => {
      stopped = true;
      // SIGKILL: immediate. SIGTERM takes ~1.8 s for a clean shutdown that throwaway data does not need.
      await killInstance(master);
      untrackInstance(master.pid);
      await finishStop([port], p.dir, keep, keepByEnv);
    }),
  };
}

/** Base64 in lines of 76 characters (RFC 2045), CRLF-joined. */
function base64Lines(data: Buffer): string {
  return (data.toString('base64').match(/.{1,76}/g) ?? []).join('\r\n');
}

/**
 * A complete RFC 5322 message (CRLF line ends) carrying {@link EICAR}: as the text/plain body
 * (`'inline'`) or as a base64 attachment `eicar.com` in multipart/mixed next to a clean text part
 * (`'attachment'`). Its Message-ID is `<ID@eicar.test>`.
 */
export function eicarMessage(kind: 'inline' | 'attachment', id: string): Buffer {
  const head = [
    'From: Test Sender <sender@eicar.test>',
    'To: Test Recipient <recipient@eicar.test>',
    'Date: Mon, 01 Jul 2024 12:00:00 +0000',
    `Subject: anti-virus test message (${kind})`,
    `Message-ID: <${id}@eicar.test>`,
    'MIME-Version: 1.0',
  ];
  if (kind === 'inline') {
    return Buffer.from([...head, 'Content-Type: text/plain; charset=us-ascii', 'Content-Transfer-Encoding: 7bit', '', EICAR, ''].join('\r\n'), 'latin1');
  }
  const boundary = `=_mailmover_${id.replace(/[^A-Za-z0-9]/g, '')}`;
  return Buffer.from(
    [
      ...head,
      `Content-Type: multipart/mixed; boundary="${boundary}"`,
      '',
      'This is a multi-part message in MIME format.',
      `--${boundary}`,
      'Content-Type: text/plain; charset=us-ascii',
      '',
      'The attachment is the standard anti-virus test file.',
      `--${boundary}`,
      'Content-Type: application/octet-stream; name="eicar.com"',
      'Content-Transfer-Encoding: base64',
      'Content-Disposition: attachment; filename="eicar.com"',
      '',
      base64Lines(Buffer.from(EICAR, 'latin1')),
      `--${boundary}--`,
      '',
    ].join('\r\n'),
    'latin1',
  );
}
