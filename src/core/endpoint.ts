/**
 * Endpoint URLs: `imap://USER@HOST[:PORT]` (STARTTLS when offered) and
 * `imaps://USER@HOST[:PORT]` (implicit TLS, RFC 8314).
 *
 * A password inside the URL is refused: URLs end up in shell history, process listings and
 * reports, so secrets travel separately (file, environment, prompt).
 */
import { isAbsolute, resolve } from 'node:path';
import { ERROR_CODES, MigrateError } from './errors.js';

/** Which side of the migration an endpoint is on; used in messages and option names. */
export type Side = 'from' | 'to';

/** A parsed, validated IMAP endpoint (without its password). */
export interface Endpoint {
  /**
   * `imap` (plain, upgraded with STARTTLS when possible), `imaps` (implicit TLS), `maildir` (a
   * Maildir tree on this machine's disk), `eml` (a tree of .eml files) or `mbox` (an mbox file or a
   * tree of them) or `pst` (an Outlook PST or OST file, a source only): see {@link Endpoint.archive}.
   */
  protocol: 'imap' | 'imaps' | 'maildir' | 'eml' | 'mbox' | 'pst';
  host: string;
  port: number;
  user: string;
  /** The URL as shown to users: never contains a password. */
  display: string;
  /** For a local archive: where it is and how it is laid out (host, port and user are then empty). */
  archive?: { kind: 'maildir'; root: string; layout: 'maildirpp' | 'fs' } | { kind: 'eml'; root: string } | MboxArchive | { kind: 'pst'; root: string };
}

/**
 * `mbox:/abs/path`: one mbox file (INBOX) or a directory tree of them. `labels` reads a Gmail
 * Takeout file's `X-Gmail-Labels` as folders or as keywords (a source file only).
 */
export interface MboxArchive {
  kind: 'mbox';
  root: string;
  labels?: 'folders' | 'keywords' | undefined;
}

/** Connection policy for one side. */
export interface EndpointSecurity {
  /** Skip certificate verification (self-signed test servers). */
  tlsInsecure?: boolean;
  /** Allow a password to travel unencrypted to a host that is not loopback. */
  allowPlaintext?: boolean;
}

/** Credentials for one side. Only the password is secret. */
export interface Credentials {
  password: string;
  /**
   * SASL PLAIN authorization identity: log in with the URL's user and password (an admin or
   * proxy account) and act as this user (RFC 4616). Dovecot master users and Cyrus admins.
   */
  authzid?: string | undefined;
  /** An OAuth 2.0 access token source: log in with XOAUTH2/OAUTHBEARER instead of the password. */
  accessToken?: ((fresh: boolean) => Promise<string>) | undefined;
}

/**
 * Parses an endpoint URL. Throws {@link MigrateError} with a code that says what to fix.
 *
 * @param text the URL as the user typed it
 * @param side which side it is for (used in messages only)
 */
export function parseEndpoint(text: string, side: Side): Endpoint {
  const hint = `--${side} takes imap://USER@HOST[:PORT], imaps://USER@HOST[:PORT], maildir:/ABSOLUTE/PATH[?layout=fs], eml:/ABSOLUTE/PATH, mbox:/ABSOLUTE/PATH[?labels=folders|keywords] or (--from only) pst:/ABSOLUTE/FILE.pst`;
  if (/^maildir:/i.test(text)) return parseArchive(text, side, hint);
  if (/^eml:/i.test(text)) return parseEml(text, side, hint);
  if (/^mbox:/i.test(text)) return parseMbox(text, side, hint);
  if (/^pst:/i.test(text)) return parsePst(text, side, hint);
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new MigrateError(ERROR_CODES.CONFIG_URL, `--${side}: "${redactUrl(text)}" is not a URL. ${hint}.`, { scope: 'config' });
  }
  const protocol = url.protocol.replace(/:$/, '').toLowerCase();
  if (protocol !== 'imap' && protocol !== 'imaps') {
    throw new MigrateError(ERROR_CODES.CONFIG_URL, `--${side}: unsupported scheme "${protocol}:". ${hint}.`, { scope: 'config' });
  }
  if (url.password) {
    throw new MigrateError(
      ERROR_CODES.CONFIG_PASSWORD_IN_URL,
      `--${side}: the URL contains a password. Remove it from the URL and pass it with --${side}-password-file FILE ` +
        `or the environment variable MAILMOVER_${side.toUpperCase()}_PASSWORD.`,
      { scope: 'config' },
    );
  }
  const user = decodeURIComponent(url.username);
  if (!user) {
    throw new MigrateError(ERROR_CODES.CONFIG_URL, `--${side}: the URL names no user. ${hint}.`, { scope: 'config' });
  }
  if (!url.hostname) {
    throw new MigrateError(ERROR_CODES.CONFIG_URL, `--${side}: the URL names no host. ${hint}.`, { scope: 'config' });
  }
  if ((url.pathname && url.pathname !== '/') || url.search || url.hash) {
    throw new MigrateError(ERROR_CODES.CONFIG_URL, `--${side}: the URL must not have a path, query or fragment. ${hint}.`, { scope: 'config' });
  }
  // URL refuses ports over 65535 ("not a URL" above) but keeps port 0, which no server listens on.
  const port = url.port ? Number(url.port) : protocol === 'imaps' ? 993 : 143;
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new MigrateError(ERROR_CODES.CONFIG_URL, `--${side}: port ${url.port} is not a TCP port (1 to 65535). ${hint}.`, { scope: 'config' });
  }
  // URL keeps IPv6 literals in brackets; sockets want them bare.
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  const display = `${protocol}://${encodeURIComponent(user)}@${url.hostname}:${port}`;
  return { protocol, host, port, user, display };
}

/**
 * `maildir:/abs/path` (Maildir++, as Dovecot and Courier keep it) or `maildir:/abs/path?layout=fs`
 * (Dovecot's LAYOUT=fs). Not parsed as a URL: a file name may hold `%`, `#` or spaces as they are.
 */
function parseArchive(text: string, side: Side, hint: string): Endpoint {
  const m = /^maildir:(.*?)(?:\?layout=([a-z+]+))?$/is.exec(text)!;
  const raw = m[1]!;
  const layoutName = (m[2] ?? 'maildir++').toLowerCase();
  if (layoutName !== 'fs' && layoutName !== 'maildir++' && layoutName !== 'maildirpp') {
    throw new MigrateError(ERROR_CODES.CONFIG_URL, `--${side}: unknown Maildir layout "${m[2]}" (layout=fs, or none for Maildir++). ${hint}.`, { scope: 'config' });
  }
  // eslint-disable-next-line no-control-regex -- the point is to refuse control characters
  if (!isAbsolute(raw) || /[\u0000-\u001f]/.test(raw)) {
    throw new MigrateError(ERROR_CODES.CONFIG_URL, `--${side}: a Maildir is named by its absolute path (got "${raw}"). ${hint}.`, { scope: 'config' });
  }
  const root = resolve(raw);
  const layout = layoutName === 'fs' ? 'fs' : 'maildirpp';
  return { protocol: 'maildir', host: '', port: 0, user: '', display: `maildir:${root}${layout === 'fs' ? '?layout=fs' : ''}`, archive: { kind: 'maildir', root, layout } };
}

/** `eml:/abs/dir`: a tree of .eml files. */
function parseEml(text: string, side: Side, hint: string): Endpoint {
  const raw = text.slice('eml:'.length);
  // eslint-disable-next-line no-control-regex -- the point is to refuse control characters
  if (!isAbsolute(raw) || /[\u0000-\u001f]/.test(raw)) {
    throw new MigrateError(ERROR_CODES.CONFIG_URL, `--${side}: an EML tree is named by its absolute path (got "${raw}"). ${hint}.`, { scope: 'config' });
  }
  const root = resolve(raw);
  return { protocol: 'eml', host: '', port: 0, user: '', display: `eml:${root}`, archive: { kind: 'eml', root } };
}

/**
 * `mbox:/abs/file` or `mbox:/abs/dir`, with `?labels=folders|keywords` for a Gmail Takeout file
 * (source only). Whether the path is a file or a tree is seen when the store opens it.
 */
function parseMbox(text: string, side: Side, hint: string): Endpoint {
  const m = /^mbox:(.*?)(?:\?labels=([a-z]*))?$/is.exec(text)!;
  const raw = m[1]!;
  const labels = m[2]?.toLowerCase();
  if (labels !== undefined && labels !== 'folders' && labels !== 'keywords') {
    throw new MigrateError(ERROR_CODES.CONFIG_URL, `--${side}: unknown labels mode "${m[2]}" (labels=folders or labels=keywords). ${hint}.`, { scope: 'config' });
  }
  if (labels !== undefined && side === 'to') {
    throw new MigrateError(ERROR_CODES.CONFIG_URL, `--to: ?labels= reads a Gmail Takeout file and is for --from only; an mbox destination is written as a tree of folders.`, { scope: 'config' });
  }
  // eslint-disable-next-line no-control-regex -- the point is to refuse control characters
  if (!isAbsolute(raw) || /[\u0000-\u001f]/.test(raw)) {
    throw new MigrateError(ERROR_CODES.CONFIG_URL, `--${side}: an mbox file or tree is named by its absolute path (got "${raw}"). ${hint}.`, { scope: 'config' });
  }
  const root = resolve(raw);
  return { protocol: 'mbox', host: '', port: 0, user: '', display: `mbox:${root}${labels ? `?labels=${labels}` : ''}`, archive: { kind: 'mbox', root, ...(labels ? { labels } : {}) } };
}

/** `pst:/abs/file.pst` (or .ost): an Outlook data file, read only, so --from only. */
function parsePst(text: string, side: Side, hint: string): Endpoint {
  const raw = text.slice('pst:'.length);
  if (side === 'to') throw new MigrateError(ERROR_CODES.CONFIG_URL, `--to: a PST file is a source only (mailmover reads PST and OST files, it does not write them). ${hint}.`, { scope: 'config' });
  // eslint-disable-next-line no-control-regex -- the point is to refuse control characters
  if (!isAbsolute(raw) || /[\u0000-\u001f]/.test(raw)) {
    throw new MigrateError(ERROR_CODES.CONFIG_URL, `--${side}: a PST file is named by its absolute path (got "${raw}"). ${hint}.`, { scope: 'config' });
  }
  const root = resolve(raw);
  return { protocol: 'pst', host: '', port: 0, user: '', display: `pst:${root}`, archive: { kind: 'pst', root } };
}

/** True for hosts whose traffic never leaves this machine. */
export function isLoopbackHost(host: string): boolean {
  const h = host.toLowerCase();
  return h === 'localhost' || h === '::1' || /^127(\.\d{1,3}){3}$/.test(h);
}

/**
 * Removes a password from anything that looks like a URL, for messages about bad input.
 * (A URL we refuse may contain one; we must not echo it back.)
 */
export function redactUrl(text: string): string {
  return text.replace(/(\/\/[^/@:\s]*):[^@/\s]*@/g, '$1:***@');
}
