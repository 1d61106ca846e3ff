/**
 * A process-wide registry of secrets (passwords, access tokens) and `scrub`, which replaces every
 * registered secret in a text with `***`.
 *
 * Why: a server may repeat what it received in its answer (a NO text quoting the credentials, a
 * proxy echoing the SASL exchange). Those answers end up in error messages, reports, `--json`
 * output and log lines. Every secret is registered where it is obtained (password file,
 * environment, prompt, token file or command, batch references), and every `MigrateError`
 * scrubs its message and server response, so whatever is built from errors is clean.
 *
 * Besides the value itself, the forms a server could echo are registered:
 * - the IMAP quoted-string form (`"` and `\` escaped), the JSON-escaped and the URL-encoded form;
 * - with the user (and authzid) known: the SASL PLAIN blobs `base64(authzid\0user\0secret)`,
 *   `base64(\0user\0secret)` and `base64(user\0user\0secret)`, the XOAUTH2 blob
 *   `base64(user=U\x01auth=Bearer T\x01\x01)` and the OAUTHBEARER blob without host and port;
 * - whatever the user: the base64 characters that encode the secret alone, at each of the three
 *   alignments a secret can have inside a longer base64 blob, and the ends of the PLAIN and bearer
 *   blobs (`\0secret`, `auth=Bearer secret\x01\x01`) at each alignment. So a blob built with a user
 *   or host we were not told (OAUTHBEARER carries host and port) still loses every character that
 *   depends on the secret alone; at most the few bits of the secret's first and last byte that
 *   share a base64 character with their neighbours can remain.
 *
 * Secrets shorter than 4 characters are not registered: they would match all over ordinary text
 * (a password "abc" would scrub every "abc"). Use longer secrets; mailmover cannot hide those.
 */

/** Shorter secrets (and forms) are ignored: they would match everywhere. */
export const MIN_SECRET_LENGTH = 4;

/** What scrubbed text shows instead of a secret. */
export const MASK = '***';

/** Who a secret logs in as, to register the SASL blobs built from it. */
export interface SecretContext {
  /** The login (authentication) user. */
  user?: string | undefined;
  /** The SASL PLAIN authorization identity, when logging in for someone else. */
  authzid?: string | undefined;
}

// Forms grouped by their first three characters: scrub looks up each position of the text in
// this map, so its cost grows with the text, not with the number of secrets (a worker may see
// thousands of mailboxes in one process).
const KEY = MIN_SECRET_LENGTH - 1;
const forms = new Map<string, Set<string>>();
let count = 0;

/** Registers a secret (and its derived forms) for {@link scrub}. Ignores values under 4 characters. */
export function registerSecret(value: string | undefined | null, context: SecretContext = {}): void {
  if (typeof value !== 'string' || value.length < MIN_SECRET_LENGTH) return;
  for (const form of derivedForms(value, context)) add(form);
}

/** Replaces every registered secret, and every derived form, in `text` with `***`. */
export function scrub(text: string): string {
  if (count === 0 || text.length < MIN_SECRET_LENGTH) return text;
  // Mark the spans covered by any form (overlapping and nested secrets merge into one span), then
  // rebuild the text with one mask per span, so no part of an overlapping secret survives.
  let spans: [number, number][] | undefined;
  for (let i = 0; i + MIN_SECRET_LENGTH <= text.length; i++) {
    const candidates = forms.get(text.slice(i, i + KEY));
    if (!candidates) continue;
    let end = -1;
    for (const f of candidates) if (f.length > end - i && text.startsWith(f, i)) end = i + f.length;
    if (end < 0) continue;
    spans ??= [];
    const last = spans[spans.length - 1];
    if (last && i <= last[1]) last[1] = Math.max(last[1], end);
    else spans.push([i, end]);
  }
  if (!spans) return text;
  let out = '';
  let at = 0;
  for (const [s, e] of spans) {
    out += text.slice(at, s) + MASK;
    at = e;
  }
  return out + text.slice(at);
}

/**
 * Wraps a writable (a pino destination, a file stream) so that every chunk written is scrubbed:
 * `pino(options, scrubStream(pino.destination(...)))`. Works on serialized JSON lines because the
 * JSON-escaped form of each secret is registered too.
 */
export function scrubStream<S extends { write(chunk: string): unknown }>(stream: S): S {
  return new Proxy(stream, {
    get(target, prop, receiver) {
      if (prop === 'write') return (chunk: string | Buffer, ...rest: unknown[]) => (target.write as (c: string, ...r: unknown[]) => unknown).call(target, scrub(String(chunk)), ...rest);
      const v = Reflect.get(target, prop, receiver) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}

/** How many forms are registered (for tests and diagnostics). */
export function registeredForms(): number {
  return count;
}

/** Forgets every secret (tests only). */
export function clearSecrets(): void {
  forms.clear();
  count = 0;
}

function add(form: string): void {
  if (form.length < MIN_SECRET_LENGTH) return;
  const key = form.slice(0, KEY);
  let set = forms.get(key);
  if (!set) forms.set(key, (set = new Set()));
  if (!set.has(form)) {
    set.add(form);
    count++;
  }
}

/** The secret and every form of it a server could echo back. */
export function derivedForms(secret: string, context: SecretContext = {}): string[] {
  const out = new Set<string>([secret]);
  out.add(secret.replace(/["\\]/g, '\\$&'));
  out.add(JSON.stringify(secret).slice(1, -1));
  out.add(encodeURIComponent(secret));
  const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');
  const bytes = Buffer.from(secret, 'utf8');
  for (const fragment of inner(bytes)) out.add(fragment);
  for (const end of [`\0${secret}`, `auth=Bearer ${secret}\x01\x01`]) for (const fragment of tails(Buffer.from(end, 'utf8'))) out.add(fragment);
  const { user, authzid } = context;
  if (user) {
    out.add(b64(`\0${user}\0${secret}`));
    out.add(b64(`${user}\0${user}\0${secret}`));
    if (authzid) out.add(b64(`${authzid}\0${user}\0${secret}`));
    out.add(b64(`user=${user}\x01auth=Bearer ${secret}\x01\x01`));
    out.add(b64(`n,a=${user},\x01auth=Bearer ${secret}\x01\x01`));
  }
  if (authzid && !user) out.add(b64(`${authzid}\0${authzid}\0${secret}`));
  return [...out];
}

/**
 * The base64 characters that depend only on `bytes`, for each of the three positions `bytes`
 * can start at within a 3-byte group of a longer blob (whatever comes before and after).
 */
function inner(bytes: Buffer): string[] {
  const out: string[] = [];
  for (let k = 0; k < 3; k++) {
    const text = Buffer.concat([Buffer.alloc(k), bytes, Buffer.alloc(2)]).toString('base64');
    out.push(text.slice(Math.ceil((8 * k) / 6), Math.floor((8 * (k + bytes.length)) / 6)));
  }
  return out;
}

/** Like {@link inner}, for bytes that end the blob: the characters up to the end, padding included. */
function tails(bytes: Buffer): string[] {
  const out: string[] = [];
  for (let k = 0; k < 3; k++) out.push(Buffer.concat([Buffer.alloc(k), bytes]).toString('base64').slice(Math.ceil((8 * k) / 6)));
  return out;
}
