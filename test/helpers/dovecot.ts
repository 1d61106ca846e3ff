/**
 * Throwaway Dovecot servers for integration tests, the demo script and the benchmark (bench/).
 *
 * Each {@link startDovecot} call creates a private temp directory (or uses the one given as `dir`)
 * with its own config, passwd-files, TLS material, mail store, runtime and state directories, starts
 * `dovecot -F` (foreground) as a child of this process, and waits until it greets on its plain IMAP
 * port. Nothing is shared with the system Dovecot (config, ports, base_dir, state_dir), so several
 * instances can run side by side, next to a system instance, and in parallel test files.
 *
 * Works as root (mail files owned by `nobody`, Dovecot's own users for its internal processes) and as
 * an unprivileged user (every Dovecot process runs as that user).
 *
 * See /work/shared/notes/components.md §1 for the measured behaviour this is built on.
 */
import { execFile, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import { chmod, chown, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { finishStop, freePort, imapUrl, killInstance, notReadyReason, once, probe, retryPorts, spawnDetached, type Spawned, tail, untrackInstance, waitReady, watchInstance, withInstanceDir } from './server-process.js';

const execFileAsync = promisify(execFile);

/** How the server spells mailbox names. */
export interface DovecotOptions {
  /**
   * Hierarchy separator. `'/'` uses Maildir with `LAYOUT=fs` (folders are real sub-directories),
   * `'.'` uses classic Maildir++ (`.A.B.C` directories). Default `'/'`.
   */
  separator?: '/' | '.';
  /**
   * Personal namespace prefix. `''` is Dovecot's default; `'INBOX.'` imitates Courier/Cyrus, where
   * every folder lives below INBOX. `'INBOX.'` requires `separator: '.'` (Dovecot wants the prefix to
   * end with the separator). Default `''`.
   */
  prefix?: '' | 'INBOX.';
  /**
   * Extra top-level configuration appended to dovecot.conf, for tests that need a real server-side
   * limit (e.g. the quota plugin's `quota_max_mail_size`). Multi-line blocks only (Dovecot 2.3).
   */
  extraConfig?: string;
  /**
   * `true` (default): `ssl = yes`, STARTTLS on the plain port and an IMAPS listener, with a fresh test
   * CA ({@link DovecotServer.caFile}). `false`: `ssl = no`, no IMAPS listener, no TLS files (no openssl
   * run); the server then has neither `tlsPort` nor `caFile` ({@link PlainDovecotServer}). The benchmark
   * uses `false`: both tools it compares talk plain IMAP on loopback.
   */
  tls?: boolean;
  /**
   * `'never'` (default): `mail_fsync = never`, see the comment in the generated config. `'default'`:
   * leaves Dovecot's default (`optimized`), so the benchmark measures against a server that syncs like
   * a stock one and its numbers compare with those of other setups.
   */
  fsync?: 'never' | 'default';
  /**
   * Use this directory instead of a fresh temp dir. It is created if missing and never removed, not by
   * {@link DovecotServer.stop} nor on errors (the caller owns it). Its `mail/` survives a stop and a new
   * start in the same directory, so a seeded mailbox can be reused (bench `--keep-dir`); the users
   * (`users.d/`) are reset at every start, so {@link DovecotServer.addUser} starts from none. Must be
   * traversable by the mail user when running as root (it is chmod'ed 0755 then, like the temp dir).
   */
  dir?: string;
}

/** What every running instance has, with or without TLS. */
interface DovecotServerBase {
  host: '127.0.0.1';
  /** Plain IMAP port; plaintext LOGIN is allowed (STARTTLS is offered unless `tls: false`). */
  port: number;
  /**
   * The instance's private directory (config, log, mail, TLS files). Removed by
   * {@link DovecotServer.stop} unless it was given as the `dir` option.
   */
  dir: string;
  /** PID of the Dovecot master process (our direct child). */
  pid: number;
  /** Hierarchy separator of the personal namespace. */
  separator: string;
  /** Personal namespace prefix ('' or 'INBOX.'). */
  prefix: string;
  /** Path of the Dovecot log file (useful in failure messages). */
  logFile: string;
  /**
   * Adds a user (a passwd-file of its own with a `{PLAIN}` password, see the passdb comment in the
   * generated config). The user can log in as soon as the promise resolves, also right after other
   * logins. Names are matched case-insensitively (Dovecot lowercases logins); adding a name twice throws.
   * The master user `admin` / `adminpw` (login as `user*admin`) exists from the start.
   */
  addUser(user: string, password: string): Promise<void>;
  /**
   * The user's mail home, `<dir>/mail/<user in lowercase>` (the Maildir is its `Maildir/`). Removing it
   * while the server runs and the user is logged out gives the user an empty mailbox again (the bench
   * does so between rounds).
   */
  homeOf(user: string): string;
  /**
   * `imap://user@127.0.0.1:PORT`, or `imaps://user@127.0.0.1:TLSPORT` with `{ tls: true }` (throws on a
   * server started with `tls: false`).
   */
  url(user: string, opts?: { tls?: boolean }): string;
  /**
   * SIGKILLs the instance (the master's own process group, see {@link killInstance}), waits until the
   * master has exited and its ports are free, then removes {@link dir} unless it was given as the `dir`
   * option or the environment has `KEEP_TEST_DIRS=1`. Takes ~10-30 ms. Idempotent.
   */
  stop(): Promise<void>;
}

/** A running throwaway Dovecot instance with TLS (the default). */
export interface DovecotServer extends DovecotServerBase {
  /** Implicit-TLS IMAP port (IMAPS). */
  tlsPort: number;
  /**
   * PEM file of the test CA that signed the server certificate (CN and SAN `localhost`, SAN IP
   * 127.0.0.1), so a test can connect with full certificate verification instead of
   * `rejectUnauthorized: false`.
   */
  caFile: string;
}

/** A running instance started with `tls: false`: plain IMAP only. */
export interface PlainDovecotServer extends DovecotServerBase {
  tlsPort: undefined;
  caFile: undefined;
}

/** Master user that may log in as anybody: `LOGIN "alice*admin" adminpw`. */
export const MASTER_USER = { user: 'admin', password: 'adminpw', separator: '*' } as const;

/** How long {@link startDovecot} waits for the greeting before giving up. */
const START_TIMEOUT_MS = 10_000;
/** Attempts with fresh ports when another process grabbed a port between our probe and Dovecot's bind. */
const PORT_ATTEMPTS = 5;

// ---------------------------------------------------------------------------------------------
// Small utilities
// ---------------------------------------------------------------------------------------------

/** First existing file among candidates: /usr/sbin is often not on an unprivileged user's PATH. */
function findBinary(name: string): string {
  for (const dir of ['/usr/sbin', '/usr/bin', '/usr/local/sbin', '/usr/local/bin', ...(process.env.PATH ?? '').split(':')]) {
    if (!dir) continue;
    const candidate = path.join(dir, name);
    if (existsSync(candidate)) return candidate;
  }
  throw new Error(`${name} not found (is dovecot-imapd installed?)`);
}

/** Looks up a user or group entry in /etc/passwd or /etc/group (name:x:id:gid:...). */
function lookupDb(file: '/etc/passwd' | '/etc/group', match: (fields: string[]) => boolean): string[] | undefined {
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const fields = line.split(':');
    if (fields.length >= 3 && match(fields)) return fields;
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// TLS material
// ---------------------------------------------------------------------------------------------

/**
 * openssl config for a tiny two-level PKI. The extensions matter for strict verifiers: the CA must be
 * `CA:TRUE` with keyCertSign, the leaf `CA:FALSE` with serverAuth and SANs for both the name and the
 * IP (Node checks the IP SAN when connecting to 127.0.0.1, and sends no SNI for an IP).
 */
const OPENSSL_CONF = `[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[ca_ext]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[leaf_ext]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
`;

/** Creates ca.pem (+ca.key) and cert.pem/key.pem signed by it. EC P-256: tens of ms, RSA would be slower. */
async function makeTlsFiles(dir: string): Promise<void> {
  const conf = path.join(dir, 'openssl.cnf');
  await writeFile(conf, OPENSSL_CONF);
  const common = ['-x509', '-config', conf, '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '7'];
  const openssl = findBinary('openssl');
  await execFileAsync(openssl, ['req', ...common, '-extensions', 'ca_ext', '-subj', '/CN=mailmover test CA',
    '-keyout', path.join(dir, 'ca.key'), '-out', path.join(dir, 'ca.pem')]);
  // `req -x509 -CA` (OpenSSL >= 3.0) signs the new certificate with the CA in one step.
  await execFileAsync(openssl, ['req', ...common, '-extensions', 'leaf_ext', '-subj', '/CN=localhost',
    '-CA', path.join(dir, 'ca.pem'), '-CAkey', path.join(dir, 'ca.key'),
    '-keyout', path.join(dir, 'key.pem'), '-out', path.join(dir, 'cert.pem')]);
}

// ---------------------------------------------------------------------------------------------
// Config
// ---------------------------------------------------------------------------------------------

interface Identity {
  /** True when we run as root: Dovecot then drops privileges itself. */
  root: boolean;
  /** Owner of the mail files: never uid 0 (Dovecot refuses mail_uid below first_valid_uid). */
  mailUid: number;
  mailGid: number;
  /** Non-root only: user and group names for default_internal_user/default_login_user. */
  userName?: string;
  groupName?: string;
}

function identity(): Identity {
  const uid = process.getuid?.() ?? -1;
  const gid = process.getgid?.() ?? -1;
  if (uid === 0) {
    // Root: mail processes run as nobody. Its primary gid (nogroup on Debian) comes from /etc/passwd.
    const nobody = lookupDb('/etc/passwd', (f) => f[0] === 'nobody');
    return { root: true, mailUid: Number(nobody?.[2] ?? 65534), mailGid: Number(nobody?.[3] ?? 65534) };
  }
  // Unprivileged: Dovecot cannot switch users, so every one of its processes must be configured to run
  // as us; otherwise it fails at start looking up/switching to 'dovecot' and 'dovenull'.
  const userName = lookupDb('/etc/passwd', (f) => Number(f[2]) === uid)?.[0] ?? os.userInfo().username;
  const groupName = lookupDb('/etc/group', (f) => Number(f[2]) === gid)?.[0];
  if (!groupName) throw new Error(`no /etc/group entry for gid ${gid}; Dovecot needs a group name`);
  return { root: false, mailUid: uid, mailGid: gid, userName, groupName };
}

interface ConfigInput {
  dir: string;
  port: number;
  /** undefined: `ssl = no` and no IMAPS listener. */
  tlsPort: number | undefined;
  separator: '/' | '.';
  prefix: string;
  id: Identity;
  fsync: 'never' | 'default';
  extraConfig?: string | undefined;
}

/**
 * The instance's dovecot.conf. Notes on choices (Dovecot 2.3 syntax: every block must span lines):
 * - base_dir/state_dir/instance_name/ports are per instance, so instances never collide;
 * - `chroot =` for imap-login and anvil: chrooting needs root-owned empty dirs and breaks non-root runs;
 * - the stats-writer socket is world-writable because imap processes run as nobody and must reach it;
 * - nothing here alters stored bytes (no compression, no attachment extraction, no mail filters).
 */
function renderConfig({ dir, port, tlsPort, separator, prefix, id, fsync, extraConfig }: ConfigInput): string {
  const layout = separator === '/' ? ':LAYOUT=fs' : '';
  const users = id.root
    ? '# root: Debian defaults dovecot/dovenull for internal and login processes'
    : `default_internal_user = ${id.userName}\ndefault_login_user = ${id.userName}\ndefault_internal_group = ${id.groupName}`;
  const dh = existsSync('/usr/share/dovecot/dh.pem') ? 'ssl_dh = </usr/share/dovecot/dh.pem' : '';
  const ssl = tlsPort === undefined
    ? 'ssl = no'
    : `ssl = yes\nssl_cert = <${dir}/cert.pem\nssl_key = <${dir}/key.pem\n${dh}`;
  // Dovecot's default imaps listener (port 993) must be switched off explicitly when there is no TLS.
  const imaps = tlsPort === undefined
    ? '  inet_listener imaps {\n    port = 0\n  }'
    : `  inet_listener imaps {\n    address = 127.0.0.1\n    port = ${tlsPort}\n    ssl = yes\n  }`;
  const fsyncConf = fsync === 'never'
    ? '# Test data is throwaway: skipping fsync makes APPEND noticeably faster and changes no bytes.\nmail_fsync = never'
    : "# mail_fsync left at Dovecot's default (optimized), as on a stock server (benchmark).";
  const special = (name: string, use: string, auto: string) =>
    `  mailbox ${name} {\n    special_use = \\${use}\n    auto = ${auto}\n  }`;
  return `# throwaway test instance written by test/helpers/dovecot.ts
base_dir = ${dir}/run
state_dir = ${dir}/state
instance_name = mailmover-test-${port}
listen = 127.0.0.1
protocols = imap
log_path = ${dir}/dovecot.log
auth_verbose = yes

${ssl}
# Tests log in with LOGIN over plain TCP on loopback.
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_master_user_separator = ${MASTER_USER.separator}
# Failed logins answer after ~0.5 s instead of 2 s (wrong-password tests; the 0.5 s remains in 2.3.19).
auth_failure_delay = 0

first_valid_uid = 1
mail_location = maildir:${dir}/mail/%u/Maildir${layout}
mail_uid = ${id.mailUid}
mail_gid = ${id.mailGid}
${users}
${fsyncConf}
# Store messages with CRLF as received, so the files on disk are the exact appended bytes (Dovecot's
# default stores LF and re-adds CR when serving; for CRLF input both round-trip identically).
mail_save_crlf = yes

service anvil {
  chroot =
  # Disables the auth penalty (documented switch, wiki Authentication.Penalty): otherwise every failed
  # login from 127.0.0.1 delays the following logins from it by 2, 4, 8 up to 15 s, and one
  # wrong-password test makes the rest of the test file crawl.
  unix_listener anvil-auth-penalty {
    mode = 0
  }
}
service imap-login {
  chroot =
  inet_listener imap {
    address = 127.0.0.1
    port = ${port}
  }
${imaps}
}
service stats {
  unix_listener stats-writer {
    mode = 0666
  }
}

passdb {
  driver = passwd-file
  args = scheme=PLAIN ${dir}/masters
  master = yes
  result_success = continue
}
# One passwd-file per user (path expanded per login). Why not one shared file: Dovecot stats a
# passwd-file at most once per second, so a user appended to a shared file right after another login
# stays "unknown user" for up to a second. A new per-user file is opened on first use, so addUser()
# takes effect immediately.
passdb {
  driver = passwd-file
  args = scheme=PLAIN ${dir}/users.d/%u
}
userdb {
  driver = static
  args = home=${dir}/mail/%u
}

namespace inbox {
  inbox = yes
  separator = ${separator}
  prefix = ${prefix}
${special('Drafts', 'Drafts', 'subscribe')}
${special('Sent', 'Sent', 'subscribe')}
${special('Trash', 'Trash', 'subscribe')}
${special('Junk', 'Junk', 'subscribe')}
${special('Archive', 'Archive', 'no')}
}

protocol imap {
  # Engines open many connections per user (one per worker plus listing).
  mail_max_userip_connections = 100
  # Long commands (UID sets of thousands of messages, STORE with many keywords) must not be cut off.
  imap_max_line_length = 10M
}
${extraConfig ?? ''}
`;
}

// ---------------------------------------------------------------------------------------------
// Start / stop
// ---------------------------------------------------------------------------------------------

/**
 * Spawns `dovecot -F -c CONF` as our direct child, detached and with a parent-death signal for the
 * master ({@link spawnDetached}). Its children notice the master's death and exit on their own
 * (within ~2 s).
 */
function spawnMaster(conf: string, stderrFile: number): ChildProcess {
  return spawnDetached(findBinary('dovecot'), ['-F', '-c', conf], stderrFile);
}

/**
 * Starts a throwaway Dovecot (plain IMAP + IMAPS on free loopback ports, or plain IMAP only with
 * `tls: false`) and resolves once it answers `* OK`. Users are added with {@link DovecotServer.addUser}.
 * Always call `stop()` (e.g. in `after()`); a process-exit hook kills leftovers anyway.
 *
 * Throws with doveconf's stderr if the config is invalid, and with the tail of the Dovecot log if the
 * server exits or does not greet within 10 s.
 */
export function startDovecot(opts?: DovecotOptions & { tls?: true }): Promise<DovecotServer>;
export function startDovecot(opts: DovecotOptions & { tls: false }): Promise<PlainDovecotServer>;
export function startDovecot(opts?: DovecotOptions): Promise<DovecotServer | PlainDovecotServer>;
export async function startDovecot(opts: DovecotOptions = {}): Promise<DovecotServer | PlainDovecotServer> {
  const separator = opts.separator ?? '/';
  const prefix = opts.prefix ?? '';
  if (prefix && !prefix.endsWith(separator)) {
    throw new Error(`prefix ${JSON.stringify(prefix)} must end with the separator ${JSON.stringify(separator)}`);
  }
  const tls = opts.tls ?? true;
  const fsync = opts.fsync ?? 'never';
  const id = identity();
  // A caller-given dir belongs to the caller: never removed, whatever KEEP_TEST_DIRS says.
  const ownDir = opts.dir === undefined;
  const keepByEnv = process.env.KEEP_TEST_DIRS === '1';
  const keep = keepByEnv || !ownDir;

  const dir = opts.dir === undefined ? await mkdtemp(path.join(os.tmpdir(), 'mailmover-dovecot-')) : path.resolve(opts.dir);
  return withInstanceDir(dir, keep, async () => {
    if (!ownDir) await mkdir(dir, { recursive: true });
    if (id.root) {
      // mkdtemp creates 0700; imap processes run as nobody and must traverse it to reach mail/ and the
      // sockets in run/. The parent (os.tmpdir()) is normally 1777; a custom TMPDIR must be traversable too.
      await chmod(dir, 0o755);
    }
    // recursive: a given dir may hold these from an earlier instance (mail/ with a seeded corpus).
    await mkdir(path.join(dir, 'run'), { recursive: true });
    await mkdir(path.join(dir, 'state'), { recursive: true });
    await mkdir(path.join(dir, 'mail'), { recursive: true });
    if (id.root) await chown(path.join(dir, 'mail'), id.mailUid, id.mailGid);
    // Users belong to one instance: an earlier instance's users.d would make addUser throw "exists".
    await rm(path.join(dir, 'users.d'), { recursive: true, force: true });
    await mkdir(path.join(dir, 'users.d'));
    await writeFile(path.join(dir, 'masters'), `${MASTER_USER.user}:{PLAIN}${MASTER_USER.password}\n`);
    if (tls) await makeTlsFiles(dir);

    const conf = path.join(dir, 'dovecot.conf');
    const logFile = path.join(dir, 'dovecot.log');
    const stderrPath = path.join(dir, 'dovecot.stderr');
    return retryPorts<DovecotServer | PlainDovecotServer>('dovecot', PORT_ATTEMPTS, async () => {
      const port = await freePort();
      let tlsPort: number | undefined;
      if (tls) {
        tlsPort = await freePort();
        while (tlsPort === port) tlsPort = await freePort();
      }
      await writeFile(conf, renderConfig({ dir, port, tlsPort, separator, prefix, id, fsync, extraConfig: opts.extraConfig }));

      // Fail fast with doveconf's own message instead of a silent early exit of the master.
      try {
        await execFileAsync(findBinary('doveconf'), ['-c', conf, '-n']);
      } catch (e) {
        const err = e as { stderr?: string; message: string };
        throw new Error(`doveconf rejected ${conf}:\n${err.stderr || err.message}`);
      }

      await rm(logFile, { force: true });
      const errFd = openSync(stderrPath, 'w');
      const child = spawnMaster(conf, errFd);
      closeSync(errFd); // the child holds its own copy
      const master = watchInstance(child, 'dovecot', dir, keep);

      const ready = async () => (await probe(port, true)) && (tlsPort === undefined || (await probe(tlsPort, false)));
      if (await waitReady(master, START_TIMEOUT_MS, ready)) {
        return { server: makeServer({ dir, port, tlsPort, separator, prefix, logFile, master, keep, keepByEnv }) };
      }

      // Not ready: collect evidence, make sure the master is gone, then decide whether to retry.
      await killInstance(master);
      const evidence = [await tail(logFile), await tail(stderrPath)].filter(Boolean).join('\n');
      const error = new Error(`dovecot (${conf}) ${notReadyReason(master, START_TIMEOUT_MS)}:\n${evidence}`);
      // Lost the race for a port: try again with new ones. Anything else is a real failure.
      return { error, retry: /Address already in use/.test(evidence) };
    });
  });
}

interface ServerParts {
  dir: string;
  port: number;
  tlsPort: number | undefined;
  separator: string;
  prefix: string;
  logFile: string;
  master: Spawned;
  /** Do not remove dir in stop(). */
  keep: boolean;
  /** keep because of KEEP_TEST_DIRS=1 (stop() says so), not because the caller gave the dir. */
  keepByEnv: boolean;
}

function makeServer(p: ServerParts): DovecotServer | PlainDovecotServer {
  const usersDir = path.join(p.dir, 'users.d');
  const common = {
    host: '127.0.0.1' as const,
    port: p.port,
    dir: p.dir,
    pid: p.master.pid,
    separator: p.separator,
    prefix: p.prefix,
    logFile: p.logFile,

    async addUser(user: string, password: string): Promise<void> {
      // The name becomes a file name and a passwd-file key: keep it to safe characters (no '/', no
      // leading dot, no ':'), and no master-user separator, which would turn it into a master login.
      if (!/^[A-Za-z0-9][A-Za-z0-9._@+-]*$/.test(user)) {
        throw new Error(`user name ${JSON.stringify(user)} must match [A-Za-z0-9][A-Za-z0-9._@+-]*`);
      }
      if (!password || /[:\n\r]/.test(password)) {
        throw new Error('password must be non-empty and contain no ":" or newlines (passwd-file syntax)');
      }
      // Dovecot lowercases login names before the lookup (auth_username_format = %Lu), so the file
      // must be found under the lowercase name.
      const name = user.toLowerCase();
      // 'wx': a second addUser for the same name fails loudly instead of changing a password that
      // Dovecot might keep using for up to a second (see the passdb comment in renderConfig).
      await writeFile(path.join(usersDir, name), `${name}:{PLAIN}${password}\n`, { flag: 'wx' });
    },

    homeOf(user: string): string {
      // Same lowercasing as Dovecot's %u (auth_username_format = %Lu) in the userdb home.
      return path.join(p.dir, 'mail', user.toLowerCase());
    },

    url(user: string, opts?: { tls?: boolean }): string {
      if (!opts?.tls) return imapUrl(user, p.port);
      if (p.tlsPort === undefined) throw new Error('this server was started with tls: false and has no IMAPS port');
      return `imaps://${encodeURIComponent(user)}@127.0.0.1:${p.tlsPort}`;
    },

    stop: once(async () => {
      // SIGKILL: ~20 ms. SIGTERM would take ~3 s for a clean shutdown that throwaway data does not need.
      await killInstance(p.master);
      untrackInstance(p.master.pid);
      // The master's children (imap, auth, log) exit by themselves right after it.
      await finishStop(p.tlsPort === undefined ? [p.port] : [p.port, p.tlsPort], p.dir, p.keep, p.keepByEnv);
    }),
  };
  return p.tlsPort === undefined
    ? { ...common, tlsPort: undefined, caFile: undefined }
    : { ...common, tlsPort: p.tlsPort, caFile: path.join(p.dir, 'ca.pem') };
}
