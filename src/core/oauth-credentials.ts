/**
 * The OAuth credentials file `mailmover login` writes and migrate/batch/worker read
 * (`--from-oauth FILE`, `oauth: { credentials: FILE }`): the refresh token, and what is needed to
 * use it (provider, client, scopes, token endpoint). It is a key to the mailbox, so:
 * - it is written with mode 0600, through a temporary file and a rename (atomic: a crash never
 *   leaves half a file, and a rotated refresh token replaces the old one whole);
 * - it is refused, for reading and for writing, when group or others have any access to it, when
 *   it is a symbolic link, or when another user owns it (MM-OAUTH-FILE-UNSAFE);
 * - the refresh token and every access token are registered as secrets (src/core/redact.ts).
 *
 * {@link tokenFromCredentials} gives the TokenProvider the IMAP store logs in with: a cached access
 * token, refreshed before it expires and when the server refuses it, one refresh at a time per
 * file in this process (mailboxes of a batch share it).
 */
import { lstatSync, readFileSync } from 'node:fs';
import { lstat, open, rename, rm } from 'node:fs/promises';
import { dirname, basename, join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { ERROR_CODES, MigrateError } from './errors.js';
import { registerSecret } from './redact.js';
import { refreshAccessToken, type OAuthProviderName } from './oauth-device.js';
import type { TokenProvider } from './access-token.js';

/** What the file holds (JSON). */
export interface OAuthCredentials {
  kind: 'mailmover-oauth';
  version: 1;
  provider: OAuthProviderName;
  clientId: string;
  clientSecret?: string;
  tenant?: string;
  scopes: string[];
  tokenEndpoint: string;
  refreshToken: string;
  /** When the refresh token was obtained or last rotated (ISO 8601). */
  updatedAt: string;
}

const unsafe = (file: string, why: string) =>
  new MigrateError(ERROR_CODES.OAUTH_FILE_UNSAFE, `"${file}" ${why}; an OAuth credentials file holds a refresh token and must be readable by its owner only (chmod 600; see docs/errors.md).`, { scope: 'config' });
const fileError = (message: string, cause?: unknown) => new MigrateError(ERROR_CODES.OAUTH_FILE, message, { scope: 'config', ...(cause ? { cause } : {}) });

/** Throws MM-OAUTH-FILE-UNSAFE unless `stat` is a regular file of this user that only the user can access. */
function checkSafe(file: string, st: { isSymbolicLink(): boolean; isFile(): boolean; mode: number; uid: number }): void {
  if (st.isSymbolicLink()) throw unsafe(file, 'is a symbolic link');
  if (!st.isFile()) throw unsafe(file, 'is not a regular file');
  if (typeof process.getuid === 'function' && st.uid !== process.getuid()) throw unsafe(file, 'belongs to another user');
  if ((st.mode & 0o077) !== 0) throw unsafe(file, `can be read or written by other users (mode ${(st.mode & 0o777).toString(8).padStart(4, '0')})`);
}

/** Reads and checks a credentials file (synchronously: done once, before anything connects). */
export function readCredentials(file: string): OAuthCredentials {
  let st;
  try {
    st = lstatSync(file);
  } catch (err) {
    throw fileError(`The OAuth credentials file "${file}" cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'}); create it with mailmover login --out.`, err);
  }
  checkSafe(file, st);
  let data: unknown;
  try {
    data = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw fileError(`The OAuth credentials file "${file}" is not JSON (${(err as NodeJS.ErrnoException).code ?? 'unparsable'}); create it with mailmover login --out.`, err);
  }
  const c = data as Partial<OAuthCredentials>;
  const ok = c && c.kind === 'mailmover-oauth' && c.version === 1 && (c.provider === 'microsoft' || c.provider === 'google') && typeof c.clientId === 'string' && typeof c.refreshToken === 'string' && c.refreshToken !== '' && typeof c.tokenEndpoint === 'string' && Array.isArray(c.scopes);
  if (!ok) throw fileError(`"${file}" is not an OAuth credentials file written by mailmover login (kind, version, provider, clientId, scopes, tokenEndpoint, refreshToken).`);
  registerSecret(c.refreshToken);
  registerSecret(c.clientSecret);
  return c as OAuthCredentials;
}

/** Throws MM-OAUTH-FILE-UNSAFE when `file` exists and is not safe to write a sign-in into (checked before a login starts). */
export async function checkCredentialsTarget(file: string): Promise<void> {
  try {
    checkSafe(file, await lstat(file));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}

/**
 * Writes the credentials atomically with mode 0600. An existing file is replaced only when it
 * is safe (see checkSafe); the temporary file is created exclusively in the same directory.
 */
export async function writeCredentials(file: string, creds: OAuthCredentials): Promise<void> {
  await checkCredentialsTarget(file);
  const tmp = join(dirname(resolve(file)), `.${basename(file)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  try {
    const fh = await open(tmp, 'wx', 0o600);
    try {
      await fh.chmod(0o600); // whatever the umask
      await fh.writeFile(JSON.stringify(creds, null, 2) + '\n');
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, file);
  } catch (err) {
    await rm(tmp, { force: true });
    throw fileError(`The OAuth credentials cannot be written to "${file}" (${(err as NodeJS.ErrnoException).code ?? 'error'}).`, err);
  }
}

/** Refresh this long before the provider's expiry (or a tenth of the lifetime, if shorter). */
const EARLY_MS = 5 * 60_000;

class Refresher {
  private access: { token: string; refreshAt: number } | undefined;
  private inflight: Promise<string> | undefined;

  constructor(
    private readonly file: string,
    private creds: OAuthCredentials,
    private readonly now: () => number,
  ) {}

  token(fresh: boolean): Promise<string> {
    if (!fresh && this.access && this.now() < this.access.refreshAt) return Promise.resolve(this.access.token);
    this.inflight ??= this.refresh().finally(() => (this.inflight = undefined));
    return this.inflight;
  }

  private async refresh(): Promise<string> {
    let set;
    try {
      set = await this.grant();
    } catch (err) {
      // Another process sharing the file may have rotated the refresh token just now: use the
      // stored one if it differs, once, before calling the sign-in revoked.
      if (!(err instanceof MigrateError) || err.code !== ERROR_CODES.OAUTH_REVOKED) throw err;
      const stored = readCredentials(this.file);
      if (stored.refreshToken === this.creds.refreshToken) throw err;
      this.creds = stored;
      set = await this.grant();
    }
    registerSecret(set.accessToken);
    if (set.refreshToken && set.refreshToken !== this.creds.refreshToken) {
      registerSecret(set.refreshToken);
      this.creds = { ...this.creds, refreshToken: set.refreshToken, updatedAt: new Date(this.now()).toISOString() };
      await writeCredentials(this.file, this.creds);
    }
    const lifetime = (set.expiresIn ?? 3600) * 1000;
    this.access = { token: set.accessToken, refreshAt: this.now() + lifetime - Math.min(EARLY_MS, lifetime / 10) };
    return set.accessToken;
  }

  private grant() {
    const c = this.creds;
    return refreshAccessToken(c.tokenEndpoint, { clientId: c.clientId, clientSecret: c.clientSecret }, c.refreshToken, c.scopes);
  }
}

const refreshers = new Map<string, Refresher>();

/**
 * The access tokens of a credentials file, for the IMAP login of `user`. The file is read and
 * checked now (MM-OAUTH-FILE, MM-OAUTH-FILE-UNSAFE before anything connects); tokens are fetched
 * when first asked for. One refresher per file in this process.
 */
export function tokenFromCredentials(file: string, user?: string, now: () => number = Date.now): TokenProvider {
  const key = resolve(file);
  let r = refreshers.get(key);
  if (!r) {
    r = new Refresher(key, readCredentials(file), now);
    refreshers.set(key, r);
  } else readCredentials(file);
  const refresher = r;
  return async (fresh) => {
    const token = await refresher.token(fresh);
    registerSecret(token, { user });
    return token;
  };
}
