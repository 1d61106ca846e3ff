/**
 * Which mailbox a ledger name really is, whatever its spelling: the identity the mailbox locks are
 * keyed on, so that `alice@127.0.0.1`, `alice@localhost`, `Alice@LOCALHOST.` and
 * `alice@localhost:143` are one mailbox, and two runs on it never overlap (which would copy every
 * message twice).
 *
 * A side's identity is (server address, port, user, authzid):
 * - the server: the host lower-cased, without a trailing dot, resolved to its addresses
 *   (`dns.lookup(..., { all: true })`, which is what the connection itself uses); IPv6 in its
 *   compressed form and IPv4-mapped IPv6 as IPv4. A name can have several addresses and another
 *   spelling fewer (localhost -> 127.0.0.1 and ::1, 127.0.0.1 -> itself), so a side has one
 *   identity per address and two spellings are the same server when they share one;
 * - the port as connected to (the default filled in), not the scheme: the scheme only says how
 *   TLS starts;
 * - the user and the authzid lower-cased. Dovecot lower-cases login names before any lookup (its
 *   default `auth_username_format = %Lu`); Cyrus, Courier and Exchange also treat logins without
 *   regard to case in practice. On a server that really tells `Alice` from `alice` this only makes
 *   two such runs wait for each other, which costs time, never mail.
 * A name that does not resolve keeps its spelled (lower-cased) host: its run fails to connect anyway.
 */
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';

/** One side as the ledger names it: `imap[s]://USER@HOST:PORT`, with ` (as AUTHZID)` for authzid logins. */
export interface MailboxName {
  host: string;
  port: number;
  user: string;
  authzid: string | undefined;
}

/** Reads a ledger name back (see `mailboxName` in src/job/migrate.ts); undefined when it is not one. */
export function parseMailboxName(name: string): MailboxName | undefined {
  const m = /^(imaps?):\/\/([^@\s]*)@(\[[^\]]+\]|[^:/\s]+)(?::(\d+))?(?: \(as (.*)\))?$/i.exec(name);
  if (!m) return undefined;
  let user: string;
  try {
    user = decodeURIComponent(m[2]!);
  } catch {
    user = m[2]!;
  }
  const port = m[4] ? Number(m[4]) : m[1]!.toLowerCase() === 'imaps' ? 993 : 143;
  return { host: m[3]!.replace(/^\[(.*)\]$/, '$1'), port, user, authzid: m[5] };
}

/** An address in one spelling: IPv6 compressed and lower-case, IPv4-mapped IPv6 as IPv4. */
export function normalAddress(address: string): string {
  const a = address.toLowerCase().replace(/%.*$/, '');
  if (isIP(a) !== 6) return a;
  const compressed = new URL(`http://[${a}]/`).hostname.replace(/^\[(.*)\]$/, '$1');
  const mapped = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(compressed);
  if (!mapped) return compressed;
  const hi = parseInt(mapped[1]!, 16);
  const lo = parseInt(mapped[2]!, 16);
  return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
}

/** How long a name lookup may take before the spelled host stands for itself. */
const LOOKUP_MS = 3000;

/** The addresses a host name stands for (sorted, normalised), or the name itself when it does not resolve. */
export async function serverAddresses(host: string): Promise<string[]> {
  const h = host.toLowerCase().replace(/\.+$/, '');
  if (isIP(h)) return [normalAddress(h)];
  let timer: NodeJS.Timeout | undefined;
  try {
    const found = await Promise.race([
      lookup(h, { all: true }),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error('lookup timed out')), LOOKUP_MS);
      }),
    ]);
    const out = [...new Set(found.map((f) => normalAddress(f.address)))].sort();
    return out.length > 0 ? out : [h];
  } catch {
    return [h];
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The identities of one side (one per server address): `ADDRESS PORT USER [AUTHZID]`, lower-cased.
 * A name that is not a ledger name is its own identity (lower-cased).
 */
export async function sideIdentities(name: string): Promise<string[]> {
  const n = parseMailboxName(name);
  if (!n) return [name.toLowerCase()];
  const tail = `${n.port} ${n.user.toLowerCase()}${n.authzid === undefined ? '' : ` as ${n.authzid.toLowerCase()}`}`;
  return (await serverAddresses(n.host)).map((a) => `${a} ${tail}`);
}

/**
 * The lock identities of a mailbox (source and destination ledger names): one for each pair of a
 * source identity and a destination identity. Two runs on one mailbox, however spelled, share at
 * least one. Sorted, at most 64.
 */
export async function mailboxIdentities(source: string, destination: string): Promise<string[]> {
  const [s, d] = await Promise.all([sideIdentities(source), sideIdentities(destination)]);
  return s.flatMap((a) => d.map((b) => `${a}\n${b}`)).sort().slice(0, 64);
}
