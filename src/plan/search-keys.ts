/**
 * Pure: the IMAP search keys of `--search` (RFC 3501 §6.4.4), checked before anything connects.
 *
 * The keys go to the source server as typed, after `UID SEARCH`, so they must not be able to end
 * the command or start another one: no control character (CR, LF and NUL above all), no literal
 * (`{n}` makes the server wait for bytes that would then be read as a command), quotes and
 * parentheses balanced, and a length no server refuses. Anything else is the server's to judge:
 * keys it does not know are answered BAD, and that answer stops the mailbox (MM-SEARCH-REFUSED).
 *
 * verify runs the keys at both sides. Keys that select by where a message is stored (its UID or
 * position, the server's own records of it) pick other messages at the destination:
 * {@link storeDependentKeys} names them so that verify can refuse them.
 */
import type { Endpoint } from '../core/endpoint.js';
import { ERROR_CODES, MigrateError } from '../core/errors.js';

/** The longest keys accepted, in characters (servers take command lines of 8 KB and more). */
export const MAX_SEARCH_LENGTH = 2000;

type Token = { kind: 'atom' | 'quoted'; text: string } | { kind: 'open' | 'close'; text: '(' | ')' };

function refuse(problem: string): never {
  throw new MigrateError(ERROR_CODES.CONFIG_OPTION, `--search: ${problem}.`, { scope: 'config' });
}

function control(c: string): string | undefined {
  const code = c.charCodeAt(0);
  if (c === '\r' || c === '\n') return 'a line break (CR or LF): the keys must be one line';
  if (code === 0) return 'a NUL character';
  if (code < 0x20 || code === 0x7f) return `a control character (U+${code.toString(16).toUpperCase().padStart(4, '0')})`;
  return undefined;
}

/** The keys split into atoms, quoted strings (kept as typed, escapes included) and parentheses. */
function tokens(keys: string): Token[] {
  const out: Token[] = [];
  let depth = 0;
  for (let i = 0; i < keys.length; ) {
    const c = keys[i]!;
    const bad = control(c);
    if (bad) refuse(`the keys contain ${bad}`);
    if (c === ' ') {
      i++;
    } else if (c === '(' || c === ')') {
      if (c === ')' && depth === 0) refuse(`a ")" without its "(" at character ${i + 1}`);
      depth += c === '(' ? 1 : -1;
      out.push({ kind: c === '(' ? 'open' : 'close', text: c });
      i++;
    } else if (c === '{') {
      refuse(`a literal ("{" at character ${i + 1}) is not accepted: write the text in double quotes, e.g. SUBJECT "q3 report"`);
    } else if (c === '"') {
      let j = i + 1;
      for (; j < keys.length && keys[j] !== '"'; j++) {
        const bad = control(keys[j]!);
        if (bad) refuse(`the keys contain ${bad}`);
        if (keys[j] === '\\') {
          if (keys[j + 1] !== '"' && keys[j + 1] !== '\\') refuse(`a backslash inside double quotes escapes only " or \\ (character ${j + 1})`);
          j++;
        }
      }
      if (j >= keys.length) refuse(`the double quote at character ${i + 1} is not closed`);
      out.push({ kind: 'quoted', text: keys.slice(i, j + 1) });
      i = j + 1;
    } else {
      let j = i;
      while (j < keys.length && !' ()"{'.includes(keys[j]!) && !control(keys[j]!)) j++;
      out.push({ kind: 'atom', text: keys.slice(i, j) });
      i = j;
    }
  }
  if (depth > 0) refuse(`${depth} "(" not closed`);
  return out;
}

/** The keys as one command line: tokens as typed, one space between them (none inside parentheses' edges). */
function join(list: readonly Token[]): string {
  let out = '';
  for (const t of list) {
    if (out !== '' && !out.endsWith('(') && t.kind !== 'close') out += ' ';
    out += t.text;
  }
  return out;
}

/**
 * The keys, checked and with their spacing made single (what is sent); throws MM-CONFIG-OPTION
 * naming the problem.
 */
export function checkSearchKeys(keys: string): string {
  if (keys.length > MAX_SEARCH_LENGTH) refuse(`the keys are ${keys.length} characters long, more than ${MAX_SEARCH_LENGTH}`);
  const list = tokens(keys);
  if (list.length === 0) refuse('no search keys given (ALL selects every message)');
  return join(list);
}

/** How many arguments a key takes (keys not named here take none, or are a prefix such as NOT and OR). */
const ARGUMENTS: Record<string, number> = {
  BCC: 1, BEFORE: 1, BODY: 1, CC: 1, FROM: 1, KEYWORD: 1, LARGER: 1, ON: 1, SENTBEFORE: 1, SENTON: 1, SENTSINCE: 1,
  SINCE: 1, SMALLER: 1, SUBJECT: 1, TEXT: 1, TO: 1, UID: 1, UNKEYWORD: 1, HEADER: 2, CHARSET: 1,
  OLDER: 1, YOUNGER: 1, SAVEDBEFORE: 1, SAVEDON: 1, SAVEDSINCE: 1, EMAILID: 1, THREADID: 1, FILTER: 1, ANNOTATION: 3,
  'X-GM-RAW': 1, 'X-GM-MSGID': 1, 'X-GM-THRID': 1, 'X-GM-LABELS': 1,
};

/**
 * Keys whose answer depends on the store rather than on the message's content, flags or
 * INTERNALDATE (which a migration copies): UIDs and message numbers, mod-sequences, save dates,
 * \Recent, and server-assigned object ids.
 */
const STORE_DEPENDENT = new Set(['UID', 'MODSEQ', 'SAVEDBEFORE', 'SAVEDON', 'SAVEDSINCE', 'SAVEDATESUPPORTED', 'RECENT', 'NEW', 'OLD', 'EMAILID', 'THREADID', 'X-GM-MSGID', 'X-GM-THRID']);

/** A message sequence set used as a key (`1:100`, `2,4:*`): positions, which differ per store. */
const SEQUENCE_SET = /^[0-9*$][0-9*:,$]*$/;

/** The keys (as written, upper-cased) among `keys` that select by where a message is stored. */
export function storeDependentKeys(keys: string): string[] {
  const list = tokens(keys);
  const found: string[] = [];
  for (let i = 0; i < list.length; i++) {
    const t = list[i]!;
    if (t.kind !== 'atom') continue;
    const key = t.text.toUpperCase();
    if (STORE_DEPENDENT.has(key) || SEQUENCE_SET.test(key)) found.push(key);
    // MODSEQ ["entry-name" entry-type] value (RFC 7162): three arguments when the first is quoted.
    const skip = key === 'MODSEQ' ? (list[i + 1]?.kind === 'quoted' ? 3 : 1) : (ARGUMENTS[key] ?? 0);
    i += skip;
  }
  return [...new Set(found)];
}

/**
 * Refuses `--search` where it cannot run: at a local archive (Maildir, EML tree), which has no
 * IMAP SEARCH. `sides` are the endpoints the keys would be run at (the source for a migration,
 * both for verify).
 */
export function requireSearchableSides(sides: readonly { flag: string; endpoint: Endpoint }[]): void {
  for (const { flag, endpoint } of sides) {
    if (!endpoint.archive) continue;
    refuse(
      `the keys are run by an IMAP server's own SEARCH, and ${flag} ${endpoint.display} is a local archive (${endpoint.archive.kind}:) that has none. ` +
        'Select messages with --since, --before, --max-age, --min-age or --min-size instead (they work for every store), or leave out --search',
    );
  }
}
