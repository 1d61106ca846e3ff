/**
 * A scripted IMAP server for tests: it plays other vendors' folder trees and response styles (see
 * personalities.ts) so that a migration can be tested against servers that do not run here.
 *
 * Real IMAP (RFC 3501 syntax, with the RFC 9051 clarifications) over a real TCP socket on 127.0.0.1,
 * written on node:net only. As a migration SOURCE it logs in, answers NAMESPACE, LIST (plain, RFC 5258
 * extended, LSUB, XLIST), STATUS, SELECT/EXAMINE, FETCH and SEARCH. As a migration DESTINATION it also
 * answers CREATE, SUBSCRIBE/UNSUBSCRIBE and APPEND (single message, no MULTIAPPEND or CATENATE), with
 * APPENDUID when the personality advertises UIDPLUS. Every other command that would change a mailbox
 * (DELETE, RENAME, STORE, COPY, MOVE, EXPUNGE) is refused, except the \Seen that a non-PEEK body fetch
 * sets and the expunge that CLOSE performs, both as RFC 3501 requires. README.md in this folder lists
 * what is implemented, what deliberately is not, and the sources.
 *
 * The server copies the folders it is given, so tests can reuse their fixtures; state (created folders,
 * subscriptions, appended messages, the \Seen a BODY[] fetch sets, what CLOSE expunges, fault counters)
 * is per user and shared by all connections of one server. `mailbox(user)` reads it back.
 */
import net from 'node:net';
import { ALL_MAIL, FIRST_MSGID, folderOfLabel, foldersOf, labelFolders, labelOfFolder, outsideAllMail, systemFolders, wireLabels, type GmailMessage, type GmailState } from './gmail-labels.js';
import {
  checkHostileFaults,
  echoAuthenticate,
  echoLogin,
  fetchKind,
  fillSecrets,
  forFolder,
  pause,
  swapPartner,
  untilClosed,
  writeChunked,
  writeLines,
  writeOversize,
  writeRepeated,
  type FetchKind,
  type HostileFaults,
  type HostileGreeting,
  type SentSecrets,
  type Write,
} from './hostile.js';

export type { HostileFaults, HostileGreeting } from './hostile.js';
export type { GmailMessage } from './gmail-labels.js';

// ---------------------------------------------------------------------------------------------
// Public types
// ---------------------------------------------------------------------------------------------

/** One message. The same shape as the fixture's messages, plus an optional fixed UID. */
export interface ScriptedMessage {
  /** Exact bytes, sent unchanged as BODY[]. */
  raw: Buffer;
  /** System flags and keywords exactly as they go on the wire (`\Seen`, `$Forwarded`, `\Recent`). */
  flags: string[];
  /** INTERNALDATE; sent in whole seconds, in UTC. */
  internalDate: Date;
  /** UID; default: one more than the previous message's (the first is 1). Must increase. */
  uid?: number;
}

/** One folder. */
export interface ScriptedFolder {
  /** The server's full name as it goes on the wire after decoding, e.g. 'INBOX.Sent Items'. */
  name: string;
  /**
   * LIST attributes as the server would store them, e.g. ['\\Noselect'], ['\\Sent'], ['\\HasNoChildren'].
   * `\HasChildren`/`\HasNoChildren` are computed from the tree when not given (unless the personality
   * sets omitHasChildren). Special-use attributes (RFC 6154) are shown as the personality's specialUse says.
   */
  attributes?: string[];
  /** Default false. */
  subscribed?: boolean;
  /** Must be empty for a `\Noselect` folder. */
  messages?: ScriptedMessage[];
  /** Default: derived from the name (stable between runs). */
  uidValidity?: number;
}

/** How a personality writes mailbox names in LIST/LSUB/XLIST responses. */
export type NameStyle = 'atom-or-quoted' | 'literal' | 'quoted-always';

/** Wire behaviour of one vendor (see personalities.ts for the presets). */
export interface Personality {
  name: string;
  /** The full greeting line without CRLF, e.g. '* OK The Microsoft Exchange IMAP4 service is ready.' */
  greeting: string;
  /** CAPABILITY before authentication; also after it unless capabilitiesAfterLogin is given. */
  capabilities: string[];
  /** CAPABILITY once authenticated (servers commonly add and drop some after login). */
  capabilitiesAfterLogin?: string[];
  /** Raw NAMESPACE response payload, e.g. '(("INBOX." ".")) NIL NIL'. */
  namespace: string;
  /** Hierarchy delimiter of the personal namespace; null = NIL (a flat server). */
  delimiter: string | null;
  nameStyle: NameStyle;
  /** Names on the wire in modified UTF-7 (RFC 3501 §5.1.3), unless the client enabled UTF8=ACCEPT. */
  utf7: boolean;
  /** Never add `\HasChildren`/`\HasNoChildren` (a server without RFC 3348 CHILDREN). */
  omitHasChildren?: boolean;
  /**
   * When special-use attributes configured on folders are shown: 'always' on every LIST (RFC 6154 §2
   * allows it without any capability), 'on-request' only for LIST ... RETURN (SPECIAL-USE) or the
   * SPECIAL-USE selection option, 'never' (a server without the notion). XLIST always shows them.
   * Default 'always'.
   */
  specialUse?: 'always' | 'on-request' | 'never';
  /** Send special-use attributes in lower case (`\sent`): attribute names are case-insensitive. */
  lowercaseSpecialUse?: boolean;
  /** Attributes added to LIST/LSUB/XLIST entries beyond what the folders say. */
  listExtras?: {
    /** Added to every entry, e.g. ['\\Noinferiors'] on a flat server. */
    attributes?: string[];
    /** Added to INBOX's entry, e.g. ['\\Marked']. */
    inboxAttributes?: string[];
  };
  /** Fields of the untagged ID response (RFC 2971); default NIL. */
  id?: Record<string, string>;
  /** Text of the tagged OK after LOGIN / AUTHENTICATE, e.g. 'LOGIN completed.' */
  loginOkText?: string;
  /** Text of the untagged BYE on LOGOUT. */
  byeText?: string;
  /**
   * The largest message APPEND stores (Exchange Online: 35 MB); a larger one is answered
   * `tag <appendTooLarge>` after its bytes were read (raise `limits.maxLiteralBytes` above it).
   */
  maxAppendBytes?: number;
  appendTooLarge?: string;
}

/** A message the server will not hand out. */
export interface FetchFailure {
  /** How many FETCH commands touching this message fail; 'always' never recovers. */
  times: number | 'always';
  /** Tagged response after the tag, verbatim, e.g. 'NO [UNAVAILABLE] Message is being scanned'. */
  response: string;
  /**
   * Which FETCH items make it fail: 'body' (default) the full body or its text (BODY[], BODY[TEXT],
   * RFC822, RFC822.TEXT, with or without PEEK), 'content' any section including headers, 'any' every
   * FETCH of the message.
   */
  trigger?: 'body' | 'content' | 'any';
}

/** Faults for one user (the hostile ones, truncateBody ... echoSecrets, are in hostile.ts). */
export interface UserFaults extends HostileFaults {
  /** Folder name (exactly as in ScriptedFolder.name) -> UID -> failure. */
  fetchFailures?: Record<string, Record<number, FetchFailure>>;
  /**
   * Raw lines (without the final CRLF) written verbatim into every LIST/XLIST answer whose pattern has a
   * wildcard, after the regular entries and before the tagged OK. Whatever they contain is sent as is.
   */
  malformedList?: string[];
  /**
   * Folder name -> UIDs whose body FETCH is answered with a line that is not valid IMAP (an
   * unterminated quoted string instead of the literal), every time; the command still ends OK.
   */
  malformedFetch?: Record<string, number[]>;
  /**
   * APPENDs that fail. An APPEND whose message bytes contain `match` (compared as UTF-8 bytes, e.g. a
   * Message-ID) is answered with `tag <response>`, verbatim, e.g. 'NO [LIMIT] Request is throttled.
   * Suggested Backoff Time: 200 milliseconds', 'NO [OVERQUOTA] Quota exceeded', 'NO [CANNOT] bad
   * message', and the message is NOT stored. After `times` such answers ('always': never) it is stored
   * normally. The first rule that matches and has failures left applies. Counters are per rule, shared
   * by all connections of the user. Checked after the syntax and the target mailbox, before storing.
   */
  appendFailures?: AppendFailure[];
  /**
   * A server that throttles or restarts mid-work: once a connection has had `count` tagged commands
   * after its login (every command counts, whatever its answer; the LOGIN/AUTHENTICATE itself does not),
   * the next tagged command is read in full (literals included) but not executed: the server sends
   * `* BYE <text>` and closes that connection. At most `times` connections of the user are cut this
   * way (default 1; the budget is shared by all connections and spent when a BYE is sent).
   */
  byeAfterCommands?: { count: number; text: string; times?: number };
  /**
   * An APPEND whose message bytes contain `match` is STORED (new UID, visible to other connections),
   * then the connection is closed without the tagged OK (and without EXISTS or APPENDUID), so the
   * client cannot know whether it arrived. The first `times` such APPENDs of the user, over all
   * connections. appendFailures are checked first: an APPEND that fails is not stored and not dropped.
   */
  appendDropConnection?: { match: string; times: number };
  /**
   * Microsoft 365 throttling: every `every`-th command named in `commands` (counted over all the
   * user's connections; e.g. ['UID FETCH', 'APPEND']) is answered
   * `NO Request is throttled. Suggested Backoff Time: <backoffMs> milliseconds`, at most `times` times.
   */
  throttle?: { every: number; commands: string[]; backoffMs: number; times?: number };
  /**
   * Exchange Online's half-open sessions: the first `sessions` logins of the user succeed, and then
   * every command but CAPABILITY, NOOP, ID and LOGOUT on that connection is answered
   * `NO User is authenticated but not connected.`; a new connection works.
   */
  notConnected?: { sessions: number };
  /**
   * Gmail's daily IMAP bandwidth limits: once this many message bytes were sent by body FETCHes
   * (download) or received by APPEND (upload), further ones are answered
   * `NO [OVERQUOTA] Account exceeded command or bandwidth limits. (Failure)`.
   */
  bandwidthLimit?: { downloadBytes?: number; uploadBytes?: number };
  /**
   * A Gmail user's `STORE +X-GM-LABELS` naming `label` (any label when absent) is answered
   * `tag <response>` verbatim and changes nothing, `times` times (or 'always').
   */
  labelStoreFailures?: { label?: string; times: number | 'always'; response: string }[];
}

/** One appendFailures rule. */
export interface AppendFailure {
  /** Bytes (as UTF-8) the message must contain, e.g. '<m3@example.test>'. */
  match: string;
  /** How many matching APPENDs fail; 'always' never recovers. */
  times: number | 'always';
  /** Tagged response after the tag, verbatim, e.g. 'NO [OVERQUOTA] Quota exceeded'. */
  response: string;
}

/** A message as `ScriptedImapServer.mailbox()` reports it. */
export interface StoredMessage {
  uid: number;
  /** Exact bytes (for an appended message: the literal exactly as received). A copy. */
  raw: Buffer;
  /** Flags as stored (system flags in their canonical spelling, e.g. `\Seen`; keywords as sent). */
  flags: string[];
  /** INTERNALDATE, in whole seconds. */
  internalDate: Date;
  /** A Gmail user's message (ScriptedUser.gmail): its X-GM-MSGID (decimal) and labels. */
  gmMsgId?: string;
  labels?: string[];
}

/** A folder as `ScriptedImapServer.mailbox()` reports it. */
export interface StoredFolder {
  /** Full name after decoding, as in ScriptedFolder.name (INBOX always spelled 'INBOX'). */
  name: string;
  subscribed: boolean;
  /** In UID order. */
  messages: StoredMessage[];
}

export interface ScriptedUser {
  password: string;
  folders: ScriptedFolder[];
  /**
   * OAuth 2.0 access tokens that log this user in through AUTHENTICATE XOAUTH2 or OAUTHBEARER (when the
   * personality advertises AUTH=XOAUTH2 / AUTH=OAUTHBEARER). Each must be an RFC 6750 b64token
   * (letters, digits, `-._~+/`, then any `=`). Default none. `setTokens()` replaces the list at runtime.
   */
  tokens?: string[];
  /**
   * A Gmail account (needs a personality with X-GM-EXT-1): each message given once with its labels;
   * the folders (INBOX, [Gmail]/..., one per label) are views of them (see gmail-labels.ts). STORE
   * (flags and +/-X-GM-LABELS) works for such a user; `folders` then only adds empty folders.
   */
  gmail?: GmailMessage[];
}

/** Per-user counters (`ScriptedImapServer.stats`). */
export interface ScriptedStats {
  /** APPENDs stored, and their bytes. */
  appends: number;
  appendedBytes: number;
  /** Message bytes sent by whole-body FETCHes. */
  fetchedBodyBytes: number;
  /** STORE / UID STORE commands run (a Gmail user's), by kind: FLAGS and X-GM-LABELS. */
  flagStores: number;
  labelStores: number;
}

/** Bounds on what a client may send. */
export interface ScriptedLimits {
  /** Longest command line in bytes (without literals). Default 64 KiB. */
  maxLineBytes: number;
  /** Largest literal in a command. Default 1 MiB. */
  maxLiteralBytes: number;
  /** Largest whole command (lines and literals). Default 4 MiB. */
  maxCommandBytes: number;
}

export interface ScriptedImapOptions {
  personality: Personality;
  users: Record<string, ScriptedUser>;
  /** User name -> faults. */
  faults?: Record<string, UserFaults>;
  limits?: Partial<ScriptedLimits>;
  /** Instead of a greeting: `* OK ` and `bytes` bytes of 'a' without CRLF, then silence until closed. */
  hostileGreeting?: HostileGreeting;
  /**
   * Called at each XOAUTH2/OAUTHBEARER attempt with the user (undefined when unknown) and the outcome,
   * before the answer is sent: a test can change the valid tokens at that moment (setTokens).
   */
  onOauth?: (user: string | undefined, accepted: boolean) => void;
}

export interface ScriptedImapServer {
  host: '127.0.0.1';
  port: number;
  /** Closes every connection and the listener; resolves once the listener is closed. */
  stop(): Promise<void>;
  /**
   * Every command line received, in order, passwords, SASL responses and access tokens redacted as ***;
   * for XOAUTH2 / OAUTHBEARER also one line with the outcome (see README.md).
   */
  log: string[];
  /** Connections open right now. */
  connections(): number;
  /**
   * Replaces the user's valid OAuth access tokens (ScriptedUser.tokens), e.g. with [] to expire them
   * all. Checked at each AUTHENTICATE: connections already logged in stay logged in. Throws for an
   * unknown user or a token that is not a b64token.
   */
  setTokens(user: string, tokens: string[]): void;
  /**
   * A snapshot of a user's folders right now, in the server's order (configured folders first, then
   * created ones in order of creation; \Noselect folders included), with everything that CREATE,
   * SUBSCRIBE/UNSUBSCRIBE, APPEND, \Seen-setting fetches and CLOSE changed. Read it to check what a
   * destination received without going through the client under test. Throws for an unknown user.
   */
  mailbox(user: string): StoredFolder[];
  /** The user's counters (APPENDs, bytes up and down). */
  stats(user: string): ScriptedStats;
}

// ---------------------------------------------------------------------------------------------
// Modified UTF-7 (RFC 3501 §5.1.3)
// ---------------------------------------------------------------------------------------------

const isPrintableAscii = (c: number) => c >= 0x20 && c <= 0x7e;

/** Unicode -> modified UTF-7. */
export function encodeMutf7(text: string): string {
  let out = '';
  let i = 0;
  while (i < text.length) {
    const c = text.charCodeAt(i);
    if (isPrintableAscii(c)) {
      out += c === 0x26 ? '&-' : text[i];
      i++;
      continue;
    }
    let j = i;
    while (j < text.length && !isPrintableAscii(text.charCodeAt(j))) j++;
    const units = Buffer.alloc((j - i) * 2);
    for (let k = i; k < j; k++) units.writeUInt16BE(text.charCodeAt(k), (k - i) * 2);
    out += '&' + units.toString('base64').replace(/=+$/, '').replace(/\//g, ',') + '-';
    i = j;
  }
  return out;
}

/** Modified UTF-7 -> Unicode; null when the input is not valid modified UTF-7. */
export function decodeMutf7(wire: string): string | null {
  let out = '';
  let i = 0;
  while (i < wire.length) {
    const c = wire.charCodeAt(i);
    if (!isPrintableAscii(c)) return null;
    if (c !== 0x26) {
      out += wire[i];
      i++;
      continue;
    }
    const end = wire.indexOf('-', i + 1);
    if (end < 0) return null;
    if (end === i + 1) {
      out += '&';
      i = end + 1;
      continue;
    }
    const b64 = wire.slice(i + 1, end);
    if (!/^[A-Za-z0-9+,]+$/.test(b64)) return null;
    const units = Buffer.from(b64.replace(/,/g, '/'), 'base64');
    // Canonical only: no padding bits set, nothing left over.
    if (units.length === 0 || units.length % 2 !== 0 || units.toString('base64').replace(/=+$/, '').replace(/\//g, ',') !== b64) return null;
    let chunk = '';
    for (let k = 0; k < units.length; k += 2) chunk += String.fromCharCode(units.readUInt16BE(k));
    // A shifted run must not carry what could have been written directly (RFC 3501 §5.1.3).
    if ([...chunk].some((ch) => isPrintableAscii(ch.charCodeAt(0)))) return null;
    out += chunk;
    i = end + 1;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Wire formatting
// ---------------------------------------------------------------------------------------------

const ATOM_SPECIALS = new Set(['(', ')', '{', ' ', '%', '*', '"', '\\', ']']);
const isAtomChar = (ch: string) => {
  const c = ch.charCodeAt(0);
  return c > 0x20 && c < 0x7f && !ATOM_SPECIALS.has(ch);
};
/** ASTRING-CHAR: ATOM-CHAR or resp-specials (']'). */
const isAstringChar = (ch: string) => isAtomChar(ch) || ch === ']';

/** A quoted string, or null when the value cannot be quoted (CR, LF, NUL, or 8-bit when not allowed). */
function quoted(value: string, allow8bit: boolean): string | null {
  for (const ch of value) {
    const c = ch.codePointAt(0)!;
    if (c === 0 || c === 0x0a || c === 0x0d) return null;
    if (c > 0x7f && !allow8bit) return null;
  }
  return '"' + value.replace(/["\\]/g, (m) => '\\' + m) + '"';
}

function literal(value: string): string {
  return `{${Buffer.byteLength(value)}}\r\n${value}`;
}

/** An astring in the given style (RFC 3501 §4.1-4.3). */
function astring(value: string, style: NameStyle, allow8bit: boolean): string {
  if (style === 'literal') return literal(value);
  if (style === 'atom-or-quoted' && value.length > 0 && [...value].every(isAstringChar) && value.toUpperCase() !== 'NIL') return value;
  return quoted(value, allow8bit) ?? literal(value);
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const pad2 = (n: number) => String(n).padStart(2, '0');

/** Parses a date-time (RFC 3501 §9: "dd-Mon-yyyy hh:mm:ss +zzzz", the day maybe space-padded). */
function parseDateTime(text: string): Date {
  const m = /^([ \d]\d)-([A-Za-z]{3})-(\d{4}) (\d\d):(\d\d):(\d\d) ([+-])(\d\d)(\d\d)$/.exec(text);
  const month = m ? MONTHS.findIndex((x) => x.toLowerCase() === m[2]!.toLowerCase()) : -1;
  if (!m || month < 0) throw bad('Invalid date-time');
  const [day, year, h, min, sec, zh, zm] = [m[1]!.trim(), m[3], m[4], m[5], m[6], m[8], m[9]].map(Number) as [number, number, number, number, number, number, number];
  // setUTCFullYear, not Date.UTC: Date.UTC reads years 0-99 as 1900-1999.
  const d = new Date(0);
  d.setUTCFullYear(year, month, day);
  d.setUTCHours(h, min, sec, 0);
  if (d.getUTCFullYear() !== year || d.getUTCMonth() !== month || d.getUTCDate() !== day || h > 23 || min > 59 || sec > 59 || zh > 23 || zm > 59) throw bad('Invalid date-time');
  return new Date(d.getTime() - (m[7] === '-' ? -1 : 1) * (zh * 60 + zm) * 60_000);
}

/** date-time (RFC 3501 §9), in UTC. */
export function formatInternalDate(d: Date): string {
  return (
    `"${pad2(d.getUTCDate())}-${MONTHS[d.getUTCMonth()]}-${d.getUTCFullYear()} ` +
    `${pad2(d.getUTCHours())}:${pad2(d.getUTCMinutes())}:${pad2(d.getUTCSeconds())} +0000"`
  );
}

// ---------------------------------------------------------------------------------------------
// Command reading: lines, literals, tokens
// ---------------------------------------------------------------------------------------------

/** A failed command: the tagged response status and text. */
class CommandError extends Error {
  constructor(
    readonly status: 'BAD' | 'NO',
    text: string,
  ) {
    super(text);
  }
}
const bad = (text: string) => new CommandError('BAD', text);
const no = (text: string) => new CommandError('NO', text);

/** Thrown when the connection went away mid-command. */
class ConnectionClosed extends Error {}

/** A tagged response given verbatim (fault hooks). */
class TaggedResponse extends Error {}

/** The command is not answered at all: the connection is closed (fault hooks). */
class DropConnection extends Error {}

/** The command wrote its own tagged answer (okBeforeData): nothing more to send. */
class Answered extends Error {}

/** A piece of a response: text, bytes, or a writer that streams bytes (oversizeBody). */
type OutPart = string | Buffer | ((write: Write) => Promise<void>);

/** One part of a command: a line (without CRLF) or a literal's bytes. */
type Segment = { line: Buffer } | { literal: Buffer };

type Token =
  | { kind: 'atom'; value: string }
  | { kind: 'string'; value: Buffer; literal: boolean }
  | { kind: 'list'; items: Token[] };

const MAX_LIST_DEPTH = 16;

/** Reads the arguments of one command across its lines and literals. */
class ArgReader {
  private seg = 0;
  private pos = 0;

  constructor(private readonly segments: Segment[]) {}

  private get line(): Buffer {
    const s = this.segments[this.seg];
    return s && 'line' in s ? s.line : Buffer.alloc(0);
  }

  peek(): string | undefined {
    const line = this.line;
    return this.pos < line.length ? String.fromCharCode(line[this.pos]!) : undefined;
  }

  /** Consumes `ch` if it comes next. */
  take(ch: string): boolean {
    if (this.peek() !== ch) return false;
    this.pos++;
    return true;
  }

  atEnd(): boolean {
    return this.seg >= this.segments.length - 1 && this.pos >= this.line.length;
  }

  /** Requires one SP (RFC 3501 is strict about single spaces). */
  sp(): void {
    if (this.peek() !== ' ') throw bad('Expected a space');
    this.pos++;
  }

  /** A SP followed by something, or the end of the command. */
  more(): boolean {
    if (this.atEnd()) return false;
    this.sp();
    return true;
  }

  end(): void {
    if (!this.atEnd()) throw bad('Unexpected extra arguments');
  }

  /** A run of characters accepted by `ok` (at least one). */
  private run(ok: (ch: string) => boolean, what: string): string {
    const line = this.line;
    const start = this.pos;
    while (this.pos < line.length && ok(String.fromCharCode(line[this.pos]!))) this.pos++;
    if (this.pos === start) throw bad(`Expected ${what}`);
    return line.toString('latin1', start, this.pos);
  }

  tag(): string {
    return this.run((ch) => isAstringChar(ch) && ch !== '+', 'a tag');
  }

  atom(): string {
    return this.run(isAtomChar, 'an atom');
  }

  /** A sequence set such as 1:*,4 (validated by parseSequenceSet). */
  sequenceSet(): string {
    return this.run((ch) => /[0-9:*,$]/.test(ch), 'a sequence set');
  }

  /**
   * A FETCH attribute: an atom that may carry a bracketed section (spaces and parentheses allowed
   * inside) and a <partial>, e.g. BODY.PEEK[HEADER.FIELDS (DATE FROM)]<0.100>.
   */
  fetchAtt(): string {
    const line = this.line;
    const start = this.pos;
    let depth = 0;
    while (this.pos < line.length) {
      const ch = String.fromCharCode(line[this.pos]!);
      if (ch === '[') depth++;
      else if (ch === ']') {
        if (depth === 0) break;
        depth--;
      } else if (depth === 0 && !isAtomChar(ch) && ch !== '<' && ch !== '>') break;
      this.pos++;
      if (depth === 0 && ch === '>') break;
    }
    if (depth !== 0) throw bad('Unterminated section');
    if (this.pos === start) throw bad('Expected a FETCH attribute');
    return line.toString('latin1', start, this.pos);
  }

  /** quoted / literal. */
  string(): Buffer {
    const ch = this.peek();
    if (ch === '"') return this.quotedString();
    if (ch === '{') return this.literalString();
    throw bad('Expected a string');
  }

  /** atom / quoted / literal (ASTRING-CHAR atoms include ']'). */
  astring(): Buffer {
    const ch = this.peek();
    if (ch === '"' || ch === '{') return this.string();
    return Buffer.from(this.run(isAstringChar, 'an astring'), 'latin1');
  }

  /** A LIST pattern: like astring, but atoms may hold the wildcards % and *. */
  listMailbox(): Buffer {
    const ch = this.peek();
    if (ch === '"' || ch === '{') return this.string();
    return Buffer.from(this.run((c) => isAstringChar(c) || c === '%' || c === '*', 'a mailbox pattern'), 'latin1');
  }

  private quotedString(): Buffer {
    const line = this.line;
    this.pos++; // opening quote
    const bytes: number[] = [];
    while (this.pos < line.length) {
      const b = line[this.pos++]!;
      if (b === 0x22) return Buffer.from(bytes);
      if (b === 0x5c) {
        const next = line[this.pos++];
        if (next !== 0x22 && next !== 0x5c) throw bad('Invalid escape in quoted string');
        bytes.push(next);
        continue;
      }
      if (b === 0x00) throw bad('NUL in quoted string');
      bytes.push(b);
    }
    throw bad('Unterminated quoted string');
  }

  private literalString(): Buffer {
    const line = this.line;
    const m = /^\{(\d+)\+?\}$/.exec(line.toString('latin1', this.pos));
    const next = this.segments[this.seg + 1];
    if (!m || !next || !('literal' in next)) throw bad('Malformed literal');
    this.seg += 2;
    this.pos = 0;
    return next.literal;
  }

  /** A flag list: "(" [flag *(SP flag)] ")", a flag being an atom or "\\" atom (RFC 3501 §9). */
  flagList(): string[] {
    if (!this.take('(')) throw bad('Expected a flag list');
    const flags: string[] = [];
    if (this.take(')')) return flags;
    for (;;) {
      flags.push((this.take('\\') ? '\\' : '') + this.atom());
      if (this.take(')')) return flags;
      this.sp();
    }
  }

  /** A parenthesized list of atoms, strings and nested lists. */
  list(depth = 0): Token[] {
    if (depth > MAX_LIST_DEPTH) throw bad('Lists nested too deeply');
    if (this.peek() !== '(') throw bad('Expected "("');
    this.pos++;
    const items: Token[] = [];
    if (this.peek() === ')') {
      this.pos++;
      return items;
    }
    for (;;) {
      items.push(this.token(depth + 1));
      const ch = this.peek();
      if (ch === ')') {
        this.pos++;
        return items;
      }
      this.sp();
    }
  }

  token(depth = 0): Token {
    const ch = this.peek();
    if (ch === '(') return { kind: 'list', items: this.list(depth) };
    if (ch === '"') return { kind: 'string', value: this.quotedString(), literal: false };
    if (ch === '{') return { kind: 'string', value: this.literalString(), literal: true };
    return { kind: 'atom', value: this.run((c) => isAstringChar(c) || c === '*' || c === '%', 'an argument') };
  }
}

/** Buffered socket input with line and byte reads. */
class Input {
  private buf: Buffer = Buffer.alloc(0);
  private wake: (() => void) | null = null;
  private chunks: Buffer[] = [];
  private pending = 0;
  private ended = false;
  /** Discarding a too-long line until its LF. */
  private discarding = false;

  constructor(
    private readonly socket: net.Socket,
    private readonly highWater: number,
  ) {}

  push(chunk: Buffer): void {
    if (this.discarding) {
      const lf = chunk.indexOf(0x0a);
      if (lf < 0) return;
      this.discarding = false;
      chunk = chunk.subarray(lf + 1);
    }
    // Kept as a list and joined when read: joining on every chunk is quadratic for a large literal.
    this.chunks.push(chunk);
    this.pending += chunk.length;
    if (this.buf.length + this.pending > this.highWater) this.socket.pause();
    this.notify();
  }

  private flatten(): void {
    if (this.chunks.length === 0) return;
    this.buf = Buffer.concat(this.buf.length ? [this.buf, ...this.chunks] : this.chunks);
    this.chunks = [];
    this.pending = 0;
  }

  end(): void {
    this.ended = true;
    this.notify();
  }

  private notify(): void {
    const w = this.wake;
    this.wake = null;
    w?.();
  }

  private consume(n: number): Buffer {
    const out = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(n);
    if (this.buf.length <= this.highWater && this.socket.isPaused()) this.socket.resume();
    return out;
  }

  private wait(): Promise<void> {
    return new Promise((resolve) => (this.wake = resolve));
  }

  /**
   * One line without its CRLF (a bare LF is accepted too). `tooLong` when more than `max` bytes came
   * without a line end: the rest of that line is then skipped. null at the end of input.
   */
  async line(max: number): Promise<{ line: Buffer } | { tooLong: Buffer } | null> {
    for (;;) {
      this.flatten();
      const lf = this.buf.indexOf(0x0a);
      if (lf >= 0 && lf <= max + 1) {
        const raw = this.consume(lf + 1);
        const end = raw.length >= 2 && raw[raw.length - 2] === 0x0d ? raw.length - 2 : raw.length - 1;
        return { line: Buffer.from(raw.subarray(0, end)) };
      }
      if (lf > max + 1 || this.buf.length > max + 1) {
        const head = Buffer.from(this.buf.subarray(0, 64));
        if (lf >= 0) this.consume(lf + 1);
        else {
          this.consume(this.buf.length);
          this.discarding = true;
        }
        return { tooLong: head };
      }
      if (this.ended) return null;
      await this.wait();
    }
  }

  /** Exactly n bytes, or null at the end of input. */
  async bytes(n: number): Promise<Buffer | null> {
    while (this.buf.length + this.pending < n) {
      if (this.ended) return null;
      await this.wait();
    }
    this.flatten();
    return Buffer.from(this.consume(n));
  }
}

// ---------------------------------------------------------------------------------------------
// Mailbox state
// ---------------------------------------------------------------------------------------------

interface MessageState {
  uid: number;
  raw: Buffer;
  flags: string[];
  internalDate: Date;
  modseq: number;
  gmMsgId: bigint;
  /** A Gmail user's message: shared by all its views (as is `flags`). */
  gm?: GmailState;
}

interface FolderState {
  name: string;
  attributes: string[];
  subscribed: boolean;
  noSelect: boolean;
  uidValidity: number;
  uidNext: number;
  highestModseq: number;
  messages: MessageState[];
}

interface UserState {
  password: string;
  /** Valid OAuth access tokens (setTokens replaces the array). */
  tokens: string[];
  folders: FolderState[];
  byName: Map<string, FolderState>;
  /** Names that have a child in the tree. */
  parents: Set<string>;
  faults: UserFaults;
  /** Remaining failures: "folder\0uid" -> count. */
  failuresLeft: Map<string, number>;
  /** Remaining failures per appendFailures rule (same index). */
  appendFailuresLeft: number[];
  /** Remaining connections byeAfterCommands may still cut. */
  byesLeft: number;
  /** Remaining APPENDs appendDropConnection may still drop. */
  dropsLeft: number;
  /** A Gmail label-model user (ScriptedUser.gmail). */
  gmail: boolean;
  nextMsgId: bigint;
  stats: ScriptedStats;
  throttleSeen: number;
  throttleLeft: number;
  notConnectedLeft: number;
}

const SPECIAL_USE = new Set(['\\all', '\\archive', '\\drafts', '\\flagged', '\\junk', '\\sent', '\\trash', '\\important']);
const CHILD_INFO = new Set(['\\haschildren', '\\hasnochildren', '\\noinferiors']);
const SYSTEM_FLAGS = ['\\Answered', '\\Flagged', '\\Deleted', '\\Seen', '\\Draft'];

const has = (list: readonly string[], attr: string) => list.some((a) => a.toLowerCase() === attr.toLowerCase());
const inboxKey = (name: string) => (name.toUpperCase() === 'INBOX' ? 'INBOX' : name);

/** A stable 31-bit number from a string (FNV-1a). */
function stableHash(text: string): number {
  let h = 0x811c9dc5;
  for (const b of Buffer.from(text)) {
    h ^= b;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

/** Default UIDVALIDITY of a folder: derived from its name, stable between runs. */
const defaultUidValidity = (name: string) => (stableHash(name) % 0x7fffffff) + 1;

/** Adds every ancestor of `name` (the names before each delimiter) to `parents`. */
function addParents(parents: Set<string>, name: string, delimiter: string | null): void {
  if (!delimiter) return;
  let at = name.lastIndexOf(delimiter);
  while (at > 0) {
    parents.add(name.slice(0, at));
    at = name.lastIndexOf(delimiter, at - 1);
  }
}

/** A new, empty, selectable folder (CREATE). */
function addFolder(user: UserState, name: string, delimiter: string | null): FolderState {
  const state: FolderState = { name, attributes: [], subscribed: false, noSelect: false, uidValidity: defaultUidValidity(name), uidNext: 1, highestModseq: 1, messages: [] };
  user.folders.push(state);
  user.byName.set(name, state);
  addParents(user.parents, name, delimiter);
  return state;
}

/** RFC 6750 §2.1 b64token: what can follow `Bearer ` in an OAuth SASL message. */
const B64TOKEN = /^[A-Za-z0-9\-._~+/]+=*$/;

/** A copy of a user's token list; throws for a token a client could not send. */
function checkTokens(user: string, tokens: readonly string[]): string[] {
  if (!Array.isArray(tokens)) throw new Error(`scripted-imap: tokens for ${user} must be an array`);
  for (const t of tokens) if (typeof t !== 'string' || !B64TOKEN.test(t)) throw new Error(`scripted-imap: a token for ${user} is not an RFC 6750 b64token`);
  return [...tokens];
}

function buildUser(name: string, user: ScriptedUser, delimiter: string | null, faults: UserFaults | undefined): UserState {
  const folders: FolderState[] = [];
  const byName = new Map<string, FolderState>();
  for (const f of user.folders) {
    const key = inboxKey(f.name);
    if (byName.has(key)) throw new Error(`scripted-imap: user ${name} has folder "${f.name}" twice`);
    const attributes = [...(f.attributes ?? [])];
    const noSelect = has(attributes, '\\Noselect') || has(attributes, '\\NonExistent');
    const messages: MessageState[] = [];
    let last = 0;
    for (const m of f.messages ?? []) {
      const uid = m.uid ?? last + 1;
      if (!Number.isInteger(uid) || uid <= last || uid > 0xffffffff) throw new Error(`scripted-imap: folder "${f.name}" has UID ${uid} after ${last}`);
      last = uid;
      messages.push({
        uid,
        raw: m.raw,
        flags: [...m.flags],
        internalDate: m.internalDate,
        modseq: messages.length + 1,
        gmMsgId: (BigInt(stableHash(f.name)) << 32n) | BigInt(uid),
      });
    }
    if (noSelect && messages.length) throw new Error(`scripted-imap: \\Noselect folder "${f.name}" cannot hold messages`);
    const state: FolderState = {
      name: key,
      attributes,
      subscribed: !!f.subscribed,
      noSelect,
      uidValidity: f.uidValidity ?? defaultUidValidity(f.name),
      uidNext: last + 1,
      highestModseq: messages.length + 1,
      messages,
    };
    folders.push(state);
    byName.set(key, state);
  }
  const parents = new Set<string>();
  for (const f of folders) addParents(parents, f.name, delimiter);
  const failuresLeft = new Map<string, number>();
  for (const [folder, byUid] of Object.entries(faults?.fetchFailures ?? {})) {
    for (const [uid, failure] of Object.entries(byUid)) {
      failuresLeft.set(`${inboxKey(folder)}\0${uid}`, failure.times === 'always' ? Infinity : failure.times);
    }
  }
  const bye = faults?.byeAfterCommands;
  if (bye && (!Number.isInteger(bye.count) || bye.count < 0)) throw new Error(`scripted-imap: byeAfterCommands.count for ${name} must be a whole number >= 0`);
  for (const rule of faults?.appendFailures ?? []) if (!rule.match) throw new Error(`scripted-imap: an appendFailures rule for ${name} has an empty match`);
  if (faults?.appendDropConnection && !faults.appendDropConnection.match) throw new Error(`scripted-imap: appendDropConnection for ${name} has an empty match`);
  if (faults) checkHostileFaults(name, faults);
  return {
    password: user.password,
    tokens: checkTokens(name, user.tokens ?? []),
    folders,
    byName,
    parents,
    faults: faults ?? {},
    failuresLeft,
    appendFailuresLeft: (faults?.appendFailures ?? []).map((rule) => (rule.times === 'always' ? Infinity : rule.times)),
    byesLeft: bye ? (bye.times ?? 1) : 0,
    dropsLeft: faults?.appendDropConnection?.times ?? 0,
    gmail: false,
    nextMsgId: FIRST_MSGID,
    stats: { appends: 0, appendedBytes: 0, fetchedBodyBytes: 0, flagStores: 0, labelStores: 0 },
    throttleSeen: 0,
    throttleLeft: faults?.throttle ? (faults.throttle.times ?? Infinity) : 0,
    notConnectedLeft: faults?.notConnected?.sessions ?? 0,
  };
}

/** Adds one view of a Gmail message to a folder (a new UID there; flags and labels shared). */
function addView(f: FolderState, v: { raw: Buffer; flags: string[]; internalDate: Date; gm: GmailState }): MessageState {
  const msg: MessageState = { uid: f.uidNext++, raw: v.raw, flags: v.flags, internalDate: v.internalDate, modseq: ++f.highestModseq, gmMsgId: v.gm.msgId, gm: v.gm };
  f.messages.push(msg);
  return msg;
}

/** Gives a Gmail user its folders: the system ones, one per label, and every message in each of its folders. */
function buildGmail(user: UserState, messages: GmailMessage[], delimiter: string | null): void {
  user.gmail = true;
  const ensure = (name: string, attributes: string[] = []) => {
    const f = user.byName.get(inboxKey(name)) ?? addFolder(user, inboxKey(name), delimiter);
    for (const a of attributes) if (!has(f.attributes, a)) f.attributes.push(a);
    if (has(f.attributes, '\\Noselect')) f.noSelect = true;
    return f;
  };
  for (const s of systemFolders()) ensure(s.name, s.attributes);
  for (const name of labelFolders(messages)) ensure(name);
  for (const m of messages) {
    const msgId = m.msgId ?? user.nextMsgId;
    if (msgId >= user.nextMsgId) user.nextMsgId = msgId + 1n;
    const shared = { raw: m.raw, flags: [...m.flags], internalDate: new Date(Math.floor(m.internalDate.getTime() / 1000) * 1000), gm: { msgId, thrId: m.thrId ?? msgId, labels: [...m.labels] } };
    for (const folder of foldersOf(m.labels, m.flags)) addView(ensure(folder), shared);
  }
}

// ---------------------------------------------------------------------------------------------
// Sequence sets and LIST patterns
// ---------------------------------------------------------------------------------------------

const MAX_NUMBER = 0xffffffff;

/** Parses a sequence set into sorted, merged [from, to] ranges; '*' is `star`. */
function parseSequenceSet(text: string, star: number): Array<[number, number]> {
  if (!/^[0-9:*,]+$/.test(text)) throw bad('Invalid sequence set');
  const parts = text.split(',');
  if (parts.length > 100_000) throw bad('Sequence set too long');
  const num = (p: string): number => {
    if (p === '*') return star;
    if (!/^[1-9]\d{0,9}$/.test(p)) throw bad('Invalid sequence set');
    const n = Number(p);
    if (n > MAX_NUMBER) throw bad('Invalid sequence set');
    return n;
  };
  const ranges: Array<[number, number]> = [];
  for (const part of parts) {
    const bits = part.split(':');
    if (bits.length > 2 || bits.some((b) => b === '')) throw bad('Invalid sequence set');
    const a = num(bits[0]!);
    const b = bits.length === 2 ? num(bits[1]!) : a;
    ranges.push([Math.min(a, b), Math.max(a, b)]);
  }
  ranges.sort((x, y) => x[0] - y[0]);
  const merged: Array<[number, number]> = [];
  for (const r of ranges) {
    const last = merged[merged.length - 1];
    if (last && r[0] <= last[1] + 1) last[1] = Math.max(last[1], r[1]);
    else merged.push([r[0], r[1]]);
  }
  return merged;
}

function inRanges(ranges: Array<[number, number]>, n: number): boolean {
  let lo = 0;
  let hi = ranges.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const r = ranges[mid]!;
    if (n < r[0]) hi = mid - 1;
    else if (n > r[1]) lo = mid + 1;
    else return true;
  }
  return false;
}

/** A LIST pattern (already decoded) as a regular expression (RFC 3501 §6.3.8). */
function patternRegex(pattern: string, delimiter: string | null): RegExp {
  const esc = (s: string) => s.replace(/[\\^$.*+?()[\]{}|/-]/g, '\\$&');
  let src = '';
  for (const ch of pattern) {
    if (ch === '*') src += '.*';
    else if (ch === '%') src += delimiter ? `(?:(?!${esc(delimiter)}).)*` : '.*';
    else src += esc(ch);
  }
  return new RegExp(`^${src}$`, 's');
}

function matchesPattern(name: string, pattern: string, re: RegExp, delimiter: string | null): boolean {
  if (re.test(name)) return true;
  // INBOX is case-insensitive (RFC 3501 §5.1): "inbox" and "Inbox%" match it.
  if (name === 'INBOX') {
    const up = pattern.replace(/^inbox/i, 'INBOX');
    return up !== pattern && patternRegex(up, delimiter).test(name);
  }
  return false;
}

// ---------------------------------------------------------------------------------------------
// FETCH items
// ---------------------------------------------------------------------------------------------

type FetchItem =
  | { kind: 'simple'; name: 'UID' | 'FLAGS' | 'INTERNALDATE' | 'RFC822.SIZE' | 'MODSEQ' | 'X-GM-MSGID' | 'X-GM-THRID' | 'X-GM-LABELS' }
  | {
      kind: 'section';
      /** Response key without partial, e.g. BODY[HEADER.FIELDS (DATE)] or RFC822. */
      key: string;
      section: '' | 'HEADER' | 'TEXT' | 'HEADER.FIELDS' | 'HEADER.FIELDS.NOT';
      fields: string[];
      peek: boolean;
      partial?: [number, number | undefined];
    };

/** Splits a message into its header block (with the blank line) and body. */
function splitMessage(raw: Buffer): { header: Buffer; body: Buffer } {
  const crlf = raw.indexOf('\r\n\r\n');
  const lf = raw.indexOf('\n\n');
  let end: number;
  if (crlf >= 0 && (lf < 0 || crlf + 1 <= lf)) end = crlf + 4;
  else if (lf >= 0) end = lf + 2;
  else end = raw.length;
  return { header: raw.subarray(0, end), body: raw.subarray(end) };
}

/** The header fields named (or, with `not`, not named), in message order, then a blank line. */
function headerFields(header: Buffer, names: string[], not: boolean): Buffer {
  const wanted = new Set(names.map((n) => n.toLowerCase()));
  const text = header.toString('latin1');
  const lines = text.split(/(?<=\n)/);
  const out: string[] = [];
  let keep = false;
  for (const line of lines) {
    if (line === '\r\n' || line === '\n') break;
    if (line.startsWith(' ') || line.startsWith('\t')) {
      if (keep) out.push(line);
      continue;
    }
    const colon = line.indexOf(':');
    const name = (colon > 0 ? line.slice(0, colon) : line).trim().toLowerCase();
    keep = colon > 0 && wanted.has(name) !== not;
    if (keep) out.push(line.endsWith('\n') ? line : line + '\r\n');
  }
  out.push('\r\n');
  return Buffer.from(out.join(''), 'latin1');
}

// ---------------------------------------------------------------------------------------------
// SASL: OAuth 2.0 messages
// ---------------------------------------------------------------------------------------------

/** The SASL mechanisms the engine implements (each only when the personality advertises AUTH=<it>). */
const SASL_MECHANISMS = ['PLAIN', 'LOGIN', 'XOAUTH2', 'OAUTHBEARER'];

/** The scope named in the JSON error of a failed OAuth login (Gmail's). */
const OAUTH_SCOPE = 'https://mail.google.com/';

/**
 * The user and bearer token of a decoded XOAUTH2 or OAUTHBEARER client message, or the reason it is
 * malformed. XOAUTH2 (Google's format): `user=U` ^A `auth=Bearer T` ^A ^A. OAUTHBEARER (RFC 7628 §3.1):
 * the GS2 header `n,a=U,` (`a=` optional; `y` also accepted, channel binding `p=` refused), then ^A,
 * key=value pairs each ending in ^A (host, port, auth, others ignored), then ^A.
 */
function parseOauthMessage(mech: 'XOAUTH2' | 'OAUTHBEARER', raw: Buffer): { user?: string; token: string } | string {
  const parts = raw.toString('utf8').split('\x01');
  let user: string | undefined;
  if (mech === 'OAUTHBEARER') {
    const gs2 = (parts.shift() ?? '').split(',');
    if (gs2.length !== 3 || gs2[2] !== '') return 'Malformed OAUTHBEARER GS2 header';
    const [flag, authz] = gs2 as [string, string];
    if (flag.startsWith('p=')) return 'Channel binding is not supported';
    if (flag !== 'n' && flag !== 'y') return 'Malformed OAUTHBEARER GS2 header';
    if (authz) {
      // saslname (RFC 5801): "," and "=" are escaped as =2C and =3D.
      if (!authz.startsWith('a=') || /=(?!2C|3D)/.test(authz.slice(2))) return 'Malformed OAUTHBEARER authorization identity';
      user = authz.slice(2).replace(/=2C/g, ',').replace(/=3D/g, '=');
    }
  }
  // What is left: at least one pair, then two empty strings (after the last pair's ^A and the final ^A).
  if (parts.length < 3 || parts.pop() !== '' || parts.pop() !== '') return `Malformed ${mech} response`;
  const pairs = new Map<string, string>();
  for (const kv of parts) {
    const m = /^([A-Za-z]+)=(.*)$/s.exec(kv);
    if (!m || pairs.has(m[1]!)) return `Malformed ${mech} response`;
    pairs.set(m[1]!, m[2]!);
  }
  const auth = /^Bearer +(\S+)$/i.exec(pairs.get('auth') ?? '');
  if (!auth || !B64TOKEN.test(auth[1]!)) return `${mech} response without a Bearer token`;
  if (mech === 'XOAUTH2') {
    user = pairs.get('user');
    if (!user) return 'XOAUTH2 response without a user';
  }
  return user === undefined ? { token: auth[1]! } : { user, token: auth[1]! };
}

// ---------------------------------------------------------------------------------------------
// The server
// ---------------------------------------------------------------------------------------------

const DEFAULT_LIMITS: ScriptedLimits = { maxLineBytes: 64 * 1024, maxLiteralBytes: 1024 * 1024, maxCommandBytes: 4 * 1024 * 1024 };

interface Shared {
  personality: Personality;
  users: Map<string, UserState>;
  limits: ScriptedLimits;
  log: string[];
  hostileGreeting?: HostileGreeting;
  onOauth?: ((user: string | undefined, accepted: boolean) => void) | undefined;
}

/** Starts a scripted IMAP server on 127.0.0.1 and a free port. */
export async function startScriptedImap(opts: ScriptedImapOptions): Promise<ScriptedImapServer> {
  const { personality } = opts;
  if (personality.delimiter !== null && [...personality.delimiter].length !== 1) throw new Error('scripted-imap: the delimiter must be one character or null');
  const users = new Map<string, UserState>();
  for (const [name, user] of Object.entries(opts.users)) {
    const state = buildUser(name, user, personality.delimiter, opts.faults?.[name]);
    if (user.gmail) {
      if (!personality.capabilities.concat(personality.capabilitiesAfterLogin ?? []).includes('X-GM-EXT-1')) throw new Error(`scripted-imap: user ${name} has gmail messages, but the personality does not advertise X-GM-EXT-1`);
      buildGmail(state, user.gmail, personality.delimiter);
    }
    users.set(name, state);
  }
  const greeting = opts.hostileGreeting;
  if (greeting && !(Number.isSafeInteger(greeting.bytes) && greeting.bytes >= 0)) throw new Error('scripted-imap: hostileGreeting.bytes must be a whole number >= 0');
  const shared: Shared = { personality, users, limits: { ...DEFAULT_LIMITS, ...opts.limits }, log: [], hostileGreeting: greeting, onOauth: opts.onOauth };

  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    // Responses go out as several small writes; without this, Nagle and delayed ACKs add ~40 ms a command.
    socket.setNoDelay(true);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    const session = new Session(socket, shared);
    session.run().catch(() => socket.destroy());
  });
  server.on('error', () => undefined);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as net.AddressInfo).port;
  let stopping: Promise<void> | undefined;
  return {
    host: '127.0.0.1',
    port,
    log: shared.log,
    connections: () => sockets.size,
    mailbox(name: string): StoredFolder[] {
      const user = users.get(name);
      if (!user) throw new Error(`scripted-imap: no user ${name}`);
      return user.folders.map((f) => ({
        name: f.name,
        subscribed: f.subscribed,
        messages: f.messages.map((m) => ({ uid: m.uid, raw: Buffer.from(m.raw), flags: [...m.flags], internalDate: new Date(m.internalDate.getTime()), ...(m.gm ? { gmMsgId: String(m.gm.msgId), labels: [...m.gm.labels] } : {}) })),
      }));
    },
    stats(name: string): ScriptedStats {
      const user = users.get(name);
      if (!user) throw new Error(`scripted-imap: no user ${name}`);
      return { ...user.stats };
    },
    setTokens(name: string, tokens: string[]): void {
      const user = users.get(name);
      if (!user) throw new Error(`scripted-imap: no user ${name}`);
      user.tokens = checkTokens(name, tokens);
    },
    stop() {
      // Resolves once the listener AND every connection have closed: the listener's callback alone can
      // come before the sockets' 'close' events, and connections() would still count them.
      stopping ??= Promise.all([
        new Promise<void>((resolve) => server.close(() => resolve())),
        ...[...sockets].map((s) => {
          const closed = new Promise<void>((resolve) => s.once('close', () => resolve()));
          s.destroy();
          return closed;
        }),
      ]).then(() => undefined);
      return stopping;
    },
  };
}

type State = 'not-authenticated' | 'authenticated' | 'selected' | 'logout';

/** One client connection. */
class Session {
  private readonly input: Input;
  private readonly p: Personality;
  private state: State = 'not-authenticated';
  private user: UserState | undefined;
  private selected: FolderState | undefined;
  private readOnly = false;
  private utf8 = false;
  private condstore = false;
  /** Messages of the selected mailbox this connection has been told about (EXISTS). */
  private knownExists = 0;
  /** Tagged commands since login (byeAfterCommands). */
  private commandsSinceLogin = 0;
  /** notConnected fault: this session is logged in but answers nothing. */
  private halfOpen = false;
  /** Tag of the command being run (for log lines written while it runs). */
  private tag = '*';
  /** The credentials this connection sent last (echoSecrets, {password} in fault texts). */
  private readonly secrets: SentSecrets = {};

  constructor(
    private readonly socket: net.Socket,
    private readonly shared: Shared,
  ) {
    this.p = shared.personality;
    this.input = new Input(socket, shared.limits.maxLiteralBytes + shared.limits.maxLineBytes);
    socket.on('data', (chunk: Buffer) => this.input.push(chunk));
    socket.on('end', () => this.input.end());
    socket.on('close', () => this.input.end());
  }

  // -- output ------------------------------------------------------------------------------

  private async write(data: string | Buffer): Promise<void> {
    const s = this.socket;
    if (s.destroyed || !s.writable) throw new ConnectionClosed();
    if (s.write(data)) return;
    await new Promise<void>((resolve, reject) => {
      const done = () => {
        s.off('drain', done);
        s.off('close', closed);
        resolve();
      };
      const closed = () => {
        s.off('drain', done);
        reject(new ConnectionClosed());
      };
      s.on('drain', done);
      s.once('close', closed);
    });
  }

  private send(line: string): Promise<void> {
    return this.write(line + '\r\n');
  }

  private caps(): string[] {
    return this.state === 'not-authenticated' ? this.p.capabilities : (this.p.capabilitiesAfterLogin ?? this.p.capabilities);
  }

  private hasCap(name: string): boolean {
    return this.caps().some((c) => c.toUpperCase() === name.toUpperCase());
  }

  // -- names ---------------------------------------------------------------------------------

  /** Unicode name -> the characters that go on the wire (before quoting). */
  private wireName(name: string): string {
    return this.p.utf7 && !this.utf8 ? encodeMutf7(name) : name;
  }

  /** Name as received (after unquoting) -> Unicode; null when it cannot be decoded. */
  private decodeName(raw: Buffer): string | null {
    const text = raw.toString('utf8');
    if (!this.p.utf7 || this.utf8) return text;
    return decodeMutf7(raw.toString('latin1'));
  }

  /** A mailbox name for LIST/LSUB/XLIST responses, in the personality's style. */
  private listName(name: string): string {
    return astring(this.wireName(name), this.p.nameStyle, this.utf8 || !this.p.utf7);
  }

  /** A mailbox name for other responses (STATUS): quoted (with escapes) in the 'literal' style. */
  private otherName(name: string): string {
    const style = this.p.nameStyle === 'literal' ? 'quoted-always' : this.p.nameStyle;
    return astring(this.wireName(name), style, this.utf8 || !this.p.utf7);
  }

  private delimiterWire(): string {
    return this.p.delimiter === null ? 'NIL' : quoted(this.p.delimiter, true)!;
  }

  private folder(raw: Buffer): FolderState {
    const name = this.decodeName(raw);
    const f = name === null ? undefined : this.user!.byName.get(inboxKey(name));
    if (!f) throw no('[NONEXISTENT] Mailbox does not exist');
    return f;
  }

  // -- main loop -----------------------------------------------------------------------------

  async run(): Promise<void> {
    try {
      if (this.shared.hostileGreeting) {
        // A greeting line that never ends: the client must give up by itself; stop() ends it too.
        this.shared.log.push(`<fault: hostile greeting of ${this.shared.hostileGreeting.bytes} bytes>`);
        await this.write(Buffer.from('* OK '));
        await writeRepeated((d) => this.write(d), Buffer.from('a'), this.shared.hostileGreeting.bytes);
        await untilClosed(this.socket);
        return;
      }
      await this.send(this.p.greeting);
      while (this.state !== 'logout') {
        const cmd = await this.readCommand();
        if (cmd === null) break;
        if (cmd === 'skip') continue;
        await this.dispatch(cmd);
      }
    } catch (err) {
      if (!(err instanceof ConnectionClosed)) throw err;
    } finally {
      this.socket.end();
    }
  }

  /** Reads one whole command (lines and literals). 'skip' when it was refused while reading. */
  private async readCommand(): Promise<Segment[] | 'skip' | null> {
    const { maxLineBytes, maxLiteralBytes, maxCommandBytes } = this.shared.limits;
    const segments: Segment[] = [];
    let total = 0;
    for (;;) {
      const got = await this.input.line(maxLineBytes);
      if (got === null) return null;
      if ('tooLong' in got) {
        const tag = leadingTag(segments.length ? (segments[0] as { line: Buffer }).line : got.tooLong);
        this.shared.log.push(`${tag ?? '*'} <line longer than ${maxLineBytes} bytes>`);
        await this.send(`${tag ?? '*'} BAD [TOOBIG] Command line too long`);
        return 'skip';
      }
      const line = got.line;
      segments.push({ line });
      total += line.length;
      const m = /\{(\d{1,10})(\+?)\}$/.exec(line.toString('latin1', Math.max(0, line.length - 14)));
      if (!m) return segments;
      const size = Number(m[1]);
      const nonSync = m[2] === '+';
      const tag = leadingTag((segments[0] as { line: Buffer }).line) ?? '*';
      const plusOk = this.hasCap('LITERAL+') || (this.hasCap('LITERAL-') && size <= 4096);
      total += size;
      if (size > maxLiteralBytes || total > maxCommandBytes || (nonSync && !plusOk)) {
        const why = nonSync && !plusOk ? 'Non-synchronizing literal not supported' : `[TOOBIG] Literal of ${size} bytes too big`;
        this.shared.log.push(`${tag} <refused: ${why}>`);
        if (nonSync) {
          // The client sends the bytes anyway. Swallow them if that is bounded; otherwise give up.
          if (size > maxLiteralBytes) {
            await this.send(`* BYE ${why}`);
            this.state = 'logout';
            return null;
          }
          if ((await this.input.bytes(size)) === null) return null;
          // And the rest of the command line after the literal.
          await this.input.line(maxLineBytes);
        }
        await this.send(`${tag} BAD ${why}`);
        return 'skip';
      }
      if (!nonSync) await this.send('+ Ready for literal data');
      const data = await this.input.bytes(size);
      if (data === null) return null;
      segments.push({ literal: data });
    }
  }

  private logCommand(segments: Segment[], tag: string, name: string): void {
    if (name === 'LOGIN') {
      let user = '';
      try {
        const r = new ArgReader(segments);
        r.tag();
        r.sp();
        r.atom();
        r.sp();
        user = JSON.stringify(r.astring().toString('utf8'));
      } catch {
        user = '?';
      }
      this.shared.log.push(`${tag} LOGIN ${user} ***`);
      return;
    }
    if (name === 'AUTHENTICATE') {
      const first = (segments[0] as { line: Buffer }).line.toString('latin1').split(' ');
      this.shared.log.push(first.slice(0, 3).join(' ') + (first.length > 3 ? ' ***' : ''));
      return;
    }
    let text = '';
    if (!name && segments.some((s) => 'line' in s && /LOGIN|AUTHENTICATE/i.test(s.line.toString('latin1')))) {
      // Not parsed far enough to know where a password is: keep none of it.
      this.shared.log.push(`${tag} <unparsable LOGIN/AUTHENTICATE, redacted>`);
      return;
    }
    for (const s of segments) {
      if ('line' in s) text += s.line.toString('utf8');
      else text += s.literal.length <= 256 && !/[\r\n\0]/.test(s.literal.toString('latin1')) ? s.literal.toString('utf8') : `<${s.literal.length} bytes>`;
    }
    this.shared.log.push(text);
  }

  private async dispatch(segments: Segment[]): Promise<void> {
    const r = new ArgReader(segments);
    let tag: string;
    try {
      tag = r.tag();
    } catch {
      this.logCommand(segments, '*', '');
      await this.send('* BAD Invalid tag');
      return;
    }
    let name = '';
    let invalid = false;
    try {
      r.sp();
      name = r.atom().toUpperCase();
      if (name === 'UID') {
        r.sp();
        name = `UID ${r.atom().toUpperCase()}`;
      }
    } catch {
      invalid = true;
      name = '';
    }
    this.logCommand(segments, tag, name);
    this.tag = tag;
    if (await this.byeInstead(tag)) return;
    if (invalid) {
      await this.send(`${tag} BAD Missing or invalid command`);
      return;
    }
    try {
      // Messages another connection appended to the selected mailbox: announce them before any answer.
      await this.reportExists();
      const text = await this.execute(name, r);
      await this.reportExists();
      await this.send(`${tag} ${text}`);
    } catch (err) {
      if (err instanceof ConnectionClosed) throw err;
      if (err instanceof DropConnection) {
        this.state = 'logout';
        return;
      }
      if (err instanceof Answered) return;
      if (err instanceof CommandError) await this.send(`${tag} ${err.status} ${err.message}`);
      else if (err instanceof TaggedResponse) await this.send(`${tag} ${err.message}`);
      else await this.send(`${tag} BAD Internal error: ${String((err as Error)?.message ?? err).replace(/[\r\n]+/g, ' ')}`);
    }
  }

  /**
   * byeAfterCommands: counts this tagged command (once logged in); when it is one too many and the
   * user's budget allows, answers `* BYE` instead, and the connection closes. True when it did.
   */
  private async byeInstead(tag: string): Promise<boolean> {
    const user = this.user;
    const rule = user?.faults.byeAfterCommands;
    if (!user || !rule || this.state === 'not-authenticated') return false;
    if (this.commandsSinceLogin++ < rule.count || user.byesLeft <= 0) return false;
    user.byesLeft--;
    this.shared.log.push(`${tag} <fault: answered with * BYE ${rule.text}>`);
    this.state = 'logout';
    await this.send(`* BYE ${rule.text}`);
    return true;
  }

  /** Sends `* n EXISTS` when the selected mailbox grew since this connection last heard. */
  private async reportExists(): Promise<void> {
    if (this.state !== 'selected' || !this.selected) return;
    const n = this.selected.messages.length;
    // It only shrinks through CLOSE on another connection; there is no EXPUNGE to report that with.
    if (n > this.knownExists) await this.send(`* ${n} EXISTS`);
    this.knownExists = n;
  }

  /** Runs a command; returns the text of the tagged OK ("OK ..."). */
  private async execute(name: string, r: ArgReader): Promise<string> {
    const anyState = ['CAPABILITY', 'NOOP', 'LOGOUT', 'ID'];
    const notAuth = ['LOGIN', 'AUTHENTICATE'];
    const auth = ['SELECT', 'EXAMINE', 'LIST', 'LSUB', 'XLIST', 'STATUS', 'NAMESPACE', 'ENABLE', 'IDLE', 'CREATE', 'DELETE', 'RENAME', 'SUBSCRIBE', 'UNSUBSCRIBE', 'APPEND'];
    const selected = ['FETCH', 'UID FETCH', 'SEARCH', 'UID SEARCH', 'CHECK', 'CLOSE', 'UNSELECT', 'STORE', 'UID STORE', 'COPY', 'UID COPY', 'MOVE', 'UID MOVE', 'EXPUNGE', 'UID EXPUNGE'];
    // Extensions answer only when the personality advertises them.
    const gated: Record<string, string> = { ID: 'ID', NAMESPACE: 'NAMESPACE', ENABLE: 'ENABLE', IDLE: 'IDLE', XLIST: 'XLIST', UNSELECT: 'UNSELECT', MOVE: 'MOVE', 'UID MOVE': 'MOVE', 'UID EXPUNGE': 'UIDPLUS' };
    const known = [...anyState, ...notAuth, ...auth, ...selected];
    if (!known.includes(name) || (gated[name] && !this.hasCap(gated[name]))) throw bad('Unknown command');
    if (notAuth.includes(name) && this.state !== 'not-authenticated') throw bad('Already authenticated');
    if (auth.includes(name) && this.state === 'not-authenticated') throw bad('Not authenticated');
    if (selected.includes(name) && this.state !== 'selected') throw bad('No mailbox selected');
    this.providerFault(name, anyState);

    switch (name) {
      case 'CAPABILITY':
        r.end();
        await this.send(`* CAPABILITY ${this.caps().join(' ')}`);
        return 'OK CAPABILITY completed.';
      case 'NOOP':
        r.end();
        return 'OK NOOP completed.';
      case 'CHECK':
        r.end();
        return 'OK CHECK completed.';
      case 'LOGOUT':
        r.end();
        await this.send(`* BYE ${this.p.byeText ?? 'Logging out'}`);
        this.state = 'logout';
        return 'OK LOGOUT completed.';
      case 'ID':
        return this.id(r);
      case 'LOGIN':
        return this.login(r);
      case 'AUTHENTICATE':
        return this.authenticate(r);
      case 'NAMESPACE':
        r.end();
        await this.send(`* NAMESPACE ${this.p.namespace}`);
        return 'OK NAMESPACE completed.';
      case 'ENABLE':
        return this.enable(r);
      case 'IDLE':
        return this.idle(r);
      case 'LIST':
      case 'XLIST':
      case 'LSUB':
        return this.list(name, r);
      case 'STATUS':
        return this.status(r);
      case 'SELECT':
      case 'EXAMINE':
        return this.select(name, r);
      case 'CLOSE':
      case 'UNSELECT':
        r.end();
        if (name === 'CLOSE' && !this.readOnly) {
          // RFC 3501 §6.4.2: CLOSE on a read-write mailbox expunges the \Deleted messages.
          const f = this.selected!;
          f.messages = f.messages.filter((m) => !has(m.flags, '\\Deleted'));
        }
        this.selected = undefined;
        this.state = 'authenticated';
        return `OK ${name} completed.`;
      case 'FETCH':
      case 'UID FETCH':
        return this.fetch(name === 'UID FETCH', r);
      case 'SEARCH':
      case 'UID SEARCH':
        return this.search(name === 'UID SEARCH', r);
      case 'CREATE':
        return this.create(r);
      case 'SUBSCRIBE':
      case 'UNSUBSCRIBE':
        return this.subscribe(name, r);
      case 'APPEND':
        return this.append(r);
      case 'STORE':
      case 'UID STORE':
        if (this.user!.gmail) return this.store(name === 'UID STORE', r);
        throw no('[CANNOT] This scripted server only adds folders and messages');
      default:
        // DELETE, RENAME, STORE, COPY, MOVE, EXPUNGE: nothing is ever changed or removed.
        throw no('[CANNOT] This scripted server only adds folders and messages');
    }
  }

  // -- commands ------------------------------------------------------------------------------

  private async id(r: ArgReader): Promise<string> {
    r.sp();
    if (r.peek() === '(') r.list();
    else if (r.atom().toUpperCase() !== 'NIL') throw bad('ID takes a list or NIL');
    r.end();
    const fields = this.p.id;
    const payload = fields
      ? '(' + Object.entries(fields).map(([k, v]) => `${quoted(k, true)} ${quoted(v, true)}`).join(' ') + ')'
      : 'NIL';
    await this.send(`* ID ${payload}`);
    return 'OK ID completed.';
  }

  private loggedIn(name: string, password: string): boolean {
    const user = this.shared.users.get(name);
    if (!user || user.password !== password) return false;
    this.enter(user);
    return true;
  }

  private enter(user: UserState): void {
    this.user = user;
    this.state = 'authenticated';
    if (user.notConnectedLeft > 0) {
      user.notConnectedLeft--;
      this.halfOpen = true;
    }
  }

  /** The provider faults that answer a command instead of running it (notConnected, throttle). */
  private providerFault(name: string, anyState: string[]): void {
    const user = this.user;
    if (!user || this.state === 'not-authenticated' || anyState.includes(name)) return;
    if (this.halfOpen) {
      this.shared.log.push(`${this.tag} <fault: authenticated but not connected>`);
      throw no('User is authenticated but not connected.');
    }
    const t = user.faults.throttle;
    if (t && t.commands.includes(name) && user.throttleLeft > 0 && ++user.throttleSeen % t.every === 0) {
      user.throttleLeft--;
      this.shared.log.push(`${this.tag} <fault: throttled>`);
      throw no(`Request is throttled. Suggested Backoff Time: ${t.backoffMs} milliseconds`);
    }
  }

  private login(r: ArgReader): string {
    if (this.hasCap('LOGINDISABLED')) throw no('[PRIVACYREQUIRED] LOGIN is disabled');
    r.sp();
    const user = r.astring().toString('utf8');
    r.sp();
    const password = r.astring().toString('utf8');
    r.end();
    this.secrets.password = password;
    if (!this.loggedIn(user, password)) {
      if (this.echoes(user)) throw new TaggedResponse(echoLogin(user, password));
      throw no('[AUTHENTICATIONFAILED] Authentication failed.');
    }
    return `OK ${this.p.loginOkText ?? 'LOGIN completed.'}`;
  }

  /**
   * echoSecrets of the user a login attempt names. A name nobody has (or none, OAUTHBEARER without
   * a=) echoes when any user of the server has echoSecrets: an echoing server echoes for everyone.
   */
  private echoes(name: string | undefined): boolean {
    const user = name === undefined ? undefined : this.shared.users.get(name);
    if (user) return !!user.faults.echoSecrets;
    return [...this.shared.users.values()].some((u) => u.faults.echoSecrets);
  }

  /** Sends a `+` continuation and reads the client's answer line (SASL). `*` cancels. */
  private async ask(challenge: string): Promise<string> {
    await this.send(`+ ${challenge}`);
    const got = await this.input.line(this.shared.limits.maxLineBytes);
    if (got === null) throw new ConnectionClosed();
    if ('tooLong' in got) throw bad('[TOOBIG] SASL response too long');
    this.shared.log.push('*** (SASL response)');
    const text = got.line.toString('latin1');
    if (text === '*') throw bad('AUTHENTICATE cancelled');
    return text;
  }

  private async authenticate(r: ArgReader): Promise<string> {
    r.sp();
    const mech = r.atom().toUpperCase();
    let initial: string | undefined;
    if (r.more()) {
      if (!this.hasCap('SASL-IR')) throw bad('SASL-IR is not supported');
      initial = r.atom();
    }
    r.end();
    if (!this.hasCap(`AUTH=${mech}`) || !SASL_MECHANISMS.includes(mech)) throw no('Unsupported authentication mechanism');
    const ok = `OK ${this.p.loginOkText ?? 'AUTHENTICATE completed.'}`;
    const b64 = (text: string): Buffer => {
      this.secrets.sasl = text;
      if (text === '=') return Buffer.alloc(0);
      if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4 !== 0) throw bad('Invalid base64');
      return Buffer.from(text, 'base64');
    };
    if (mech === 'PLAIN') {
      const blob = initial ?? (await this.ask(''));
      const parts = b64(blob).toString('utf8').split('\0');
      if (parts.length !== 3) throw bad('Malformed PLAIN response');
      const [authz, authc, pass] = parts as [string, string, string];
      this.secrets.password = pass;
      if (authz && authz !== authc) throw no('[AUTHORIZATIONFAILED] Authorization identity not permitted');
      if (!this.loggedIn(authc, pass)) {
        if (this.echoes(authc)) throw new TaggedResponse(echoAuthenticate(blob, pass));
        throw no('[AUTHENTICATIONFAILED] Authentication failed.');
      }
      return ok;
    }
    if (mech === 'XOAUTH2' || mech === 'OAUTHBEARER') {
      const blob = initial ?? (await this.ask(''));
      const msg = parseOauthMessage(mech, b64(blob));
      if (typeof msg === 'string') throw bad(msg);
      this.secrets.token = msg.token;
      // OAUTHBEARER may leave the user out (a=): the token alone then says whose it is.
      const name = msg.user ?? [...this.shared.users].find(([, u]) => u.tokens.includes(msg.token))?.[0];
      const user = name === undefined ? undefined : this.shared.users.get(name);
      const valid = !!user && user.tokens.includes(msg.token);
      this.shared.log.push(`${this.tag} <${mech} ${name === undefined ? '(no user)' : JSON.stringify(name)} Bearer ***: ${valid ? 'accepted' : 'rejected'}>`);
      this.shared.onOauth?.(name, valid);
      if (valid) {
        this.enter(user);
        return ok;
      }
      // The failure as Gmail sends it (RFC 7628 §3.2.2 for OAUTHBEARER): a `+` with a base64 JSON
      // error, which the client acknowledges (XOAUTH2: an empty line; OAUTHBEARER: %x01, "AQ=="),
      // and only then the tagged NO.
      const error = mech === 'XOAUTH2' ? { status: '401', schemes: 'Bearer', scope: OAUTH_SCOPE } : { status: 'invalid_token', scope: OAUTH_SCOPE };
      const ack = await this.ask(Buffer.from(JSON.stringify(error)).toString('base64'));
      if (ack !== (mech === 'XOAUTH2' ? '' : 'AQ==')) throw bad(`Invalid ${mech} error acknowledgement`);
      if (this.echoes(name)) throw new TaggedResponse(echoAuthenticate(blob, msg.token));
      throw no('[AUTHENTICATIONFAILED] Invalid credentials (Failure)');
    }
    // LOGIN: user name, then password, each a base64 answer to a prompt.
    const user = b64(initial ?? (await this.ask(Buffer.from('Username:').toString('base64')))).toString('utf8');
    const passBlob = await this.ask(Buffer.from('Password:').toString('base64'));
    const pass = b64(passBlob).toString('utf8');
    this.secrets.password = pass;
    if (!this.loggedIn(user, pass)) {
      if (this.echoes(user)) throw new TaggedResponse(echoAuthenticate(passBlob, pass));
      throw no('[AUTHENTICATIONFAILED] Authentication failed.');
    }
    return ok;
  }

  private async enable(r: ArgReader): Promise<string> {
    if (this.state !== 'authenticated') throw bad('ENABLE is only valid in the authenticated state');
    const asked: string[] = [];
    while (r.more()) asked.push(r.atom().toUpperCase());
    if (!asked.length) throw bad('ENABLE needs an argument');
    // Only what the personality advertises and this engine implements (RFC 5161: ignore the rest).
    const enabled: string[] = [];
    for (const ext of asked) {
      if (!this.hasCap(ext) || enabled.includes(ext)) continue;
      if (ext === 'CONDSTORE') this.condstore = true;
      else if (ext === 'UTF8=ACCEPT') this.utf8 = true;
      else continue;
      enabled.push(ext);
    }
    await this.send(`* ENABLED${enabled.map((e) => ' ' + e).join('')}`);
    return 'OK ENABLE completed.';
  }

  private async idle(r: ArgReader): Promise<string> {
    r.end();
    await this.send('+ idling');
    const got = await this.input.line(this.shared.limits.maxLineBytes);
    if (got === null) throw new ConnectionClosed();
    const text = 'line' in got ? got.line.toString('latin1') : '';
    this.shared.log.push(text || '<too long>');
    if (text.toUpperCase() !== 'DONE') throw bad('Expected DONE');
    return 'OK IDLE terminated.';
  }

  /** LIST / XLIST / LSUB, including the RFC 5258 extended syntax. */
  private async list(command: 'LIST' | 'XLIST' | 'LSUB', r: ArgReader): Promise<string> {
    const extended = command === 'LIST' && this.hasCap('LIST-EXTENDED');
    const select = new Set<string>();
    const ret = new Set<string>();
    r.sp();
    if (r.peek() === '(') {
      if (!extended) throw bad('Selection options need LIST-EXTENDED');
      for (const t of r.list()) {
        if (t.kind !== 'atom') throw bad('Invalid selection option');
        select.add(t.value.toUpperCase());
      }
      r.sp();
    }
    const reference = this.decodeName(r.astring());
    r.sp();
    const rawPatterns: Buffer[] = [];
    if (r.peek() === '(') {
      if (!extended) throw bad('Multiple patterns need LIST-EXTENDED');
      for (const t of r.list()) {
        if (t.kind === 'list') throw bad('Invalid pattern');
        rawPatterns.push(t.kind === 'atom' ? Buffer.from(t.value, 'latin1') : t.value);
      }
    } else rawPatterns.push(r.listMailbox());
    if (r.more()) {
      if (!extended || r.atom().toUpperCase() !== 'RETURN') throw bad('Unexpected arguments');
      r.sp();
      for (const t of r.list()) {
        // Options with arguments (STATUS (...) of LIST-STATUS) are not implemented.
        const s = t.kind === 'atom' ? t.value.toUpperCase() : '';
        if (!['SUBSCRIBED', 'CHILDREN', 'SPECIAL-USE'].includes(s) || (s === 'SPECIAL-USE' && !this.hasCap('SPECIAL-USE'))) throw bad(`Unsupported return option ${s || '(...)'}`);
        ret.add(s);
      }
    }
    r.end();
    // RECURSIVEMATCH (RFC 5258 §3) is not implemented; REMOTE is accepted (nothing is remote).
    for (const s of select) if (!['SUBSCRIBED', 'REMOTE', 'SPECIAL-USE'].includes(s) || (s === 'SPECIAL-USE' && !this.hasCap('SPECIAL-USE'))) throw bad(`Unsupported selection option ${s}`);
    if (reference === null) throw no('Invalid reference name');
    const patterns: string[] = [];
    for (const raw of rawPatterns) {
      const p = this.decodeName(raw);
      if (p === null) throw no('Invalid mailbox pattern');
      patterns.push(p);
    }

    const d = this.p.delimiter;
    const user = this.user!;
    // LIST "" "": the delimiter and the root (RFC 3501 §6.3.8).
    if (command !== 'LSUB' && patterns.length === 1 && patterns[0] === '') {
      const root = d && reference.includes(d) ? reference.slice(0, reference.indexOf(d) + 1) : '';
      await this.send(`* ${command} (\\Noselect) ${this.delimiterWire()} ${this.listName(root)}`);
      return `OK ${command} completed.`;
    }

    const showSpecialUse =
      command === 'XLIST' || this.p.specialUse === 'always' || this.p.specialUse === undefined || (this.p.specialUse === 'on-request' && (ret.has('SPECIAL-USE') || select.has('SPECIAL-USE')));
    const emitted = new Set<string>();
    let wildcard = false;
    for (const pattern of patterns) {
      const full = reference + pattern;
      wildcard ||= /[*%]/.test(full);
      const re = patternRegex(full, d);
      const lines: string[] = [];
      for (const f of user.folders) {
        if (emitted.has(f.name) || !matchesPattern(f.name, full, re, d)) continue;
        if ((command === 'LSUB' || select.has('SUBSCRIBED')) && !f.subscribed) continue;
        if (select.has('SPECIAL-USE') && !f.attributes.some((a) => SPECIAL_USE.has(a.toLowerCase()))) continue;
        emitted.add(f.name);
        lines.push(this.listLine(command, f.name, f.attributes, user.parents.has(f.name), showSpecialUse, ret.has('SUBSCRIBED') && f.subscribed));
      }
      // "%" at the end also returns levels of hierarchy that are no folders, as \Noselect.
      if (full.endsWith('%') && d && command !== 'LSUB' && !select.size) {
        for (const parent of user.parents) {
          if (emitted.has(parent) || user.byName.has(parent) || !matchesPattern(parent, full, re, d)) continue;
          emitted.add(parent);
          lines.push(this.listLine(command, parent, ['\\Noselect'], true, false, false));
        }
      }
      for (const line of lines) await this.send(line);
    }
    if (command !== 'LSUB' && wildcard) for (const raw of user.faults.malformedList ?? []) await this.send(raw);
    return `OK ${command} completed.`;
  }

  private listLine(command: string, name: string, stored: string[], hasChildren: boolean, showSpecialUse: boolean, subscribed: boolean): string {
    const attrs: string[] = [];
    const add = (a: string) => {
      if (!has(attrs, a)) attrs.push(a);
    };
    for (const a of stored) {
      if (SPECIAL_USE.has(a.toLowerCase())) {
        if (showSpecialUse && this.p.specialUse !== 'never') add(this.p.lowercaseSpecialUse ? a.toLowerCase() : a);
        else if (command === 'XLIST') add(a);
        continue;
      }
      add(a);
    }
    if (!this.p.omitHasChildren && !stored.some((a) => CHILD_INFO.has(a.toLowerCase()))) add(hasChildren ? '\\HasChildren' : '\\HasNoChildren');
    for (const a of this.p.listExtras?.attributes ?? []) add(a);
    if (name === 'INBOX') {
      for (const a of this.p.listExtras?.inboxAttributes ?? []) add(a);
      if (command === 'XLIST') add('\\Inbox');
    }
    if (subscribed) add('\\Subscribed');
    return `* ${command} (${attrs.join(' ')}) ${this.delimiterWire()} ${this.listName(name)}`;
  }

  private async status(r: ArgReader): Promise<string> {
    r.sp();
    const raw = r.astring();
    r.sp();
    const items = r.list().map((t) => {
      if (t.kind !== 'atom') throw bad('Invalid STATUS item');
      return t.value.toUpperCase();
    });
    r.end();
    const allowed = ['MESSAGES', 'RECENT', 'UIDNEXT', 'UIDVALIDITY', 'UNSEEN', ...(this.hasCap('CONDSTORE') ? ['HIGHESTMODSEQ'] : [])];
    for (const item of items) if (!allowed.includes(item)) throw bad(`Unsupported STATUS item ${item}`);
    const f = this.folder(raw);
    if (f.noSelect) throw no('[NONEXISTENT] Mailbox is not selectable');
    if (items.includes('HIGHESTMODSEQ')) this.condstore = true;
    const value = (item: string): number => {
      switch (item) {
        case 'MESSAGES':
          return f.messages.length;
        case 'RECENT':
          return f.messages.filter((m) => has(m.flags, '\\Recent')).length;
        case 'UIDNEXT':
          return f.uidNext;
        case 'UIDVALIDITY':
          return f.uidValidity;
        case 'UNSEEN':
          return f.messages.filter((m) => !has(m.flags, '\\Seen')).length;
        default:
          return f.highestModseq;
      }
    };
    await this.send(`* STATUS ${this.otherName(f.name)} (${items.map((i) => `${i} ${value(i)}`).join(' ')})`);
    return 'OK STATUS completed.';
  }

  private async select(command: 'SELECT' | 'EXAMINE', r: ArgReader): Promise<string> {
    // A failed SELECT leaves no mailbox selected (RFC 3501 §6.3.1).
    this.selected = undefined;
    if (this.state === 'selected') this.state = 'authenticated';
    r.sp();
    const raw = r.astring();
    if (r.more()) {
      const params = r.list();
      for (const t of params) {
        if (t.kind === 'atom' && t.value.toUpperCase() === 'CONDSTORE' && this.hasCap('CONDSTORE')) this.condstore = true;
        else throw bad('Unsupported SELECT parameter');
      }
    }
    r.end();
    const f = this.folder(raw);
    if (f.noSelect) throw no('[NONEXISTENT] Mailbox is not selectable');
    const keywords = new Set<string>();
    for (const m of f.messages) for (const flag of m.flags) if (!flag.startsWith('\\')) keywords.add(flag);
    const flags = [...SYSTEM_FLAGS, ...keywords].join(' ');
    const readOnly = command === 'EXAMINE';
    await this.send(`* FLAGS (${flags})`);
    await this.send(readOnly ? '* OK [PERMANENTFLAGS ()] Read-only mailbox.' : `* OK [PERMANENTFLAGS (${flags} \\*)] Flags permitted.`);
    await this.send(`* ${f.messages.length} EXISTS`);
    await this.send(`* ${f.messages.filter((m) => has(m.flags, '\\Recent')).length} RECENT`);
    const unseen = f.messages.findIndex((m) => !has(m.flags, '\\Seen'));
    if (unseen >= 0) await this.send(`* OK [UNSEEN ${unseen + 1}] First unseen.`);
    await this.send(`* OK [UIDVALIDITY ${f.uidValidity}] UIDs valid`);
    await this.send(`* OK [UIDNEXT ${f.uidNext}] Predicted next UID`);
    if (this.condstore) await this.send(`* OK [HIGHESTMODSEQ ${f.highestModseq}] Highest`);
    this.selected = f;
    this.knownExists = f.messages.length;
    this.readOnly = readOnly;
    this.state = 'selected';
    return `OK [${readOnly ? 'READ-ONLY' : 'READ-WRITE'}] ${command} completed.`;
  }

  /** CREATE (RFC 3501 §6.3.3): the folder and any missing parents, all selectable and unsubscribed. */
  private create(r: ArgReader): string {
    r.sp();
    const raw = r.astring();
    r.end();
    const decoded = this.decodeName(raw);
    const d = this.p.delimiter;
    // A trailing delimiter only declares that children will follow.
    const name = decoded !== null && d && decoded.endsWith(d) ? decoded.slice(0, -d.length) : decoded;
    const segments = name === null ? [] : d ? name.split(d) : [name];
    if (name === null || segments.some((s) => s === '') || /[*%\0\r\n]/.test(name)) throw no('[CANNOT] Invalid mailbox name');
    // INBOX is case-insensitive, also as the first level of a hierarchy below it.
    if (segments[0]!.toUpperCase() === 'INBOX') segments[0] = 'INBOX';
    const user = this.user!;
    const full = segments.join(d ?? '');
    if (user.byName.has(full)) throw no('[ALREADYEXISTS] Mailbox already exists');
    for (let i = 1; i <= segments.length; i++) {
      const level = segments.slice(0, i).join(d ?? '');
      if (!user.byName.has(level)) addFolder(user, level, d);
    }
    return 'OK CREATE completed.';
  }

  /** SUBSCRIBE / UNSUBSCRIBE (RFC 3501 §6.3.6-7) of an existing folder; both are idempotent. */
  private subscribe(command: 'SUBSCRIBE' | 'UNSUBSCRIBE', r: ArgReader): string {
    r.sp();
    const raw = r.astring();
    r.end();
    this.folder(raw).subscribed = command === 'SUBSCRIBE';
    return `OK ${command} completed.`;
  }

  /**
   * APPEND (RFC 3501 §6.3.11): one message, stored byte for byte, with its flags and internal date
   * (default: now), under the folder's next UID; APPENDUID (RFC 4315) with UIDPLUS. Literal limits are
   * enforced while the command is read (readCommand), like for every other command.
   */
  private append(r: ArgReader): string {
    r.sp();
    const rawName = r.astring();
    r.sp();
    const flags: string[] = [];
    if (r.peek() === '(') {
      for (const flag of r.flagList()) {
        let stored = flag;
        if (flag.startsWith('\\')) {
          // \Recent cannot be set by a client (RFC 3501 §2.3.2), and no other system flag exists here.
          const system = SYSTEM_FLAGS.find((f) => f.toLowerCase() === flag.toLowerCase());
          if (!system) throw bad(`Invalid flag ${flag}`);
          stored = system;
        }
        if (!has(flags, stored)) flags.push(stored);
      }
      r.sp();
    }
    let internalDate: Date | undefined;
    if (r.peek() === '"') {
      internalDate = parseDateTime(r.string().toString('latin1'));
      r.sp();
    }
    if (r.peek() !== '{') throw bad('APPEND needs the message as a literal');
    const raw = r.string();
    // A second message (MULTIAPPEND) or CATENATE: neither is implemented nor advertised.
    r.end();
    const user = this.user!;
    const name = this.decodeName(rawName);
    const f = name === null ? undefined : user.byName.get(inboxKey(name));
    if (!f) throw no("[TRYCREATE] Mailbox doesn't exist");
    if (f.noSelect) throw no('[CANNOT] Mailbox cannot hold messages');

    if (this.p.maxAppendBytes !== undefined && raw.length > this.p.maxAppendBytes) {
      this.shared.log.push(`${this.tag} <refused: ${raw.length} bytes over the ${this.p.maxAppendBytes}-byte APPEND limit>`);
      throw new TaggedResponse(this.p.appendTooLarge ?? 'NO [TOOBIG] Message too large');
    }
    const up = user.faults.bandwidthLimit?.uploadBytes;
    if (up !== undefined && user.stats.appendedBytes + raw.length > up) throw no('[OVERQUOTA] Account exceeded command or bandwidth limits. (Failure)');
    const rules = user.faults.appendFailures ?? [];
    for (let i = 0; i < rules.length; i++) {
      const rule = rules[i]!;
      if (user.appendFailuresLeft[i]! > 0 && raw.includes(rule.match)) {
        user.appendFailuresLeft[i]!--;
        throw new TaggedResponse(fillSecrets(rule.response, this.secrets));
      }
    }

    user.stats.appends++;
    user.stats.appendedBytes += raw.length;
    if (user.gmail) {
      // One message, labelled by the folder it was appended to, shown there and in All Mail.
      const label = labelOfFolder(f.name);
      const gm: GmailState = { msgId: user.nextMsgId++, thrId: 0n, labels: label ? [label] : [] };
      gm.thrId = gm.msgId;
      const view = { raw: Buffer.from(raw), flags, internalDate: new Date(Math.floor((internalDate ?? new Date()).getTime() / 1000) * 1000), gm };
      const here = addView(f, view);
      if (f.name !== ALL_MAIL && !outsideAllMail(gm.labels)) addView(user.byName.get(ALL_MAIL)!, view);
      return this.hasCap('UIDPLUS') ? `OK [APPENDUID ${f.uidValidity} ${here.uid}] Append completed.` : 'OK Append completed.';
    }
    const uid = f.uidNext++;
    f.messages.push({
      uid,
      raw: Buffer.from(raw),
      flags,
      internalDate: new Date(Math.floor((internalDate ?? new Date()).getTime() / 1000) * 1000),
      modseq: ++f.highestModseq,
      gmMsgId: (BigInt(stableHash(f.name)) << 32n) | BigInt(uid),
    });

    const drop = user.faults.appendDropConnection;
    if (drop && user.dropsLeft > 0 && raw.includes(drop.match)) {
      user.dropsLeft--;
      this.shared.log.push(`<fault: message stored as ${f.name} UID ${uid}, connection dropped without a tagged answer>`);
      throw new DropConnection();
    }
    return this.hasCap('UIDPLUS') ? `OK [APPENDUID ${f.uidValidity} ${uid}] Append completed.` : 'OK Append completed.';
  }

  /**
   * STORE / UID STORE for a Gmail user: FLAGS (shared by every view of the message) and
   * X-GM-LABELS. +X-GM-LABELS shows the message in the label's folder (created if missing, as Gmail
   * does), -X-GM-LABELS takes it out (an EXPUNGE is sent when that is the selected folder). \Starred
   * views are not updated by flag changes. Answers FETCH responses unless .SILENT.
   */
  private async store(byUid: boolean, r: ArgReader): Promise<string> {
    if (this.readOnly) throw no('[READ-ONLY] The mailbox was opened with EXAMINE');
    r.sp();
    const set = r.sequenceSet();
    r.sp();
    const item = r.atom().toUpperCase();
    const m = /^([+-]?)(FLAGS|X-GM-LABELS)(\.SILENT)?$/.exec(item);
    if (!m) throw bad('Invalid STORE data item');
    r.sp();
    const values: string[] = [];
    if (!r.take('(')) throw bad('Expected a list');
    while (!r.take(')')) {
      if (values.length) r.sp();
      values.push(r.take('\\') ? `\\${r.atom()}` : r.astring().toString('utf8'));
    }
    r.end();
    const [, op, what, silent] = m as unknown as [string, string, string, string | undefined];
    const user = this.user!;
    if (what === 'X-GM-LABELS') {
      for (const rule of user.faults.labelStoreFailures ?? []) {
        if (rule.times !== 'always' && rule.times <= 0) continue;
        if (rule.label !== undefined && !values.includes(rule.label)) continue;
        if (rule.times !== 'always') rule.times--;
        throw new TaggedResponse(rule.response);
      }
      user.stats.labelStores++;
    } else {
      user.stats.flagStores++;
    }
    const f = this.selected!;
    const targets = this.resolve(set, byUid);
    const removedHere: MessageState[] = [];
    for (const { msg } of targets) {
      if (what === 'FLAGS') {
        const next = op === '+' ? [...msg.flags, ...values] : op === '-' ? msg.flags.filter((x) => !values.some((v) => v.toLowerCase() === x.toLowerCase())) : values;
        // In place: every view of a Gmail message shares this array.
        msg.flags.splice(0, msg.flags.length, ...next.filter((x, i) => next.findIndex((y) => y.toLowerCase() === x.toLowerCase()) === i));
      } else if (msg.gm) {
        const gm = msg.gm;
        const before = [...gm.labels];
        const next = op === '+' ? [...before, ...values.filter((v) => !before.includes(v))] : op === '-' ? before.filter((l) => !values.includes(l)) : [...new Set(values)];
        gm.labels.splice(0, gm.labels.length, ...next);
        for (const label of next.filter((l) => !before.includes(l))) {
          const name = inboxKey(folderOfLabel(label));
          const folder = user.byName.get(name) ?? addFolder(user, name, this.p.delimiter);
          if (!folder.messages.some((x) => x.gm === gm)) addView(folder, { raw: msg.raw, flags: msg.flags, internalDate: msg.internalDate, gm });
        }
        for (const label of before.filter((l) => !next.includes(l))) {
          const folder = user.byName.get(inboxKey(folderOfLabel(label)));
          if (!folder) continue;
          if (folder === f) removedHere.push(...folder.messages.filter((x) => x.gm === gm));
          folder.messages = folder.messages.filter((x) => x.gm !== gm);
        }
      }
      msg.modseq = ++f.highestModseq;
    }
    if (!silent) {
      for (const { seq, msg } of targets) {
        if (removedHere.includes(msg)) continue;
        const data = what === 'FLAGS' ? `FLAGS (${msg.flags.join(' ')})` : `X-GM-LABELS ${wireLabels(msg.gm?.labels ?? [])}`;
        await this.send(`* ${seq} FETCH (${byUid ? `UID ${msg.uid} ` : ''}${data})`);
      }
    }
    // The selected folder lost messages: EXPUNGE them, highest sequence number first.
    const seqs = targets.filter(({ msg }) => removedHere.includes(msg)).map(({ seq }) => seq).sort((a, b) => b - a);
    for (const seq of seqs) await this.send(`* ${seq} EXPUNGE`);
    this.knownExists -= seqs.length;
    return `OK ${byUid ? 'UID STORE' : 'STORE'} completed.`;
  }

  /** The messages a sequence set names, in mailbox order, with their sequence numbers. */
  private resolve(set: string, byUid: boolean): Array<{ seq: number; msg: MessageState }> {
    const msgs = this.selected!.messages;
    if (byUid) {
      const ranges = parseSequenceSet(set, msgs.length ? msgs[msgs.length - 1]!.uid : 0);
      return msgs.map((msg, i) => ({ seq: i + 1, msg })).filter(({ msg }) => inRanges(ranges, msg.uid));
    }
    if (set.includes('*') && msgs.length === 0) throw bad('Invalid message sequence: the mailbox is empty');
    const ranges = parseSequenceSet(set, msgs.length);
    if (ranges.length && ranges[ranges.length - 1]![1] > msgs.length) throw bad('Invalid message sequence number');
    return msgs.map((msg, i) => ({ seq: i + 1, msg })).filter(({ seq }) => inRanges(ranges, seq));
  }

  private parseFetchItems(r: ArgReader): FetchItem[] {
    const names: string[] = [];
    if (r.take('(')) {
      // "(att SP att ...)" by hand, not with list(): attributes may hold bracketed sections.
      for (;;) {
        names.push(r.fetchAtt());
        if (r.take(')')) break;
        r.sp();
      }
    } else names.push(r.fetchAtt());
    const items: FetchItem[] = [];
    const macro: Record<string, string[]> = {
      ALL: ['FLAGS', 'INTERNALDATE', 'RFC822.SIZE', 'ENVELOPE'],
      FAST: ['FLAGS', 'INTERNALDATE', 'RFC822.SIZE'],
      FULL: ['FLAGS', 'INTERNALDATE', 'RFC822.SIZE', 'ENVELOPE', 'BODY'],
    };
    const upperNames = names.length === 1 && macro[names[0]!.toUpperCase()] ? macro[names[0]!.toUpperCase()]! : names;
    for (const n of upperNames) items.push(this.parseFetchItem(n));
    return items;
  }

  private parseFetchItem(text: string): FetchItem {
    const upper = text.toUpperCase();
    const simple = ['UID', 'FLAGS', 'INTERNALDATE', 'RFC822.SIZE'] as const;
    if ((simple as readonly string[]).includes(upper)) return { kind: 'simple', name: upper as (typeof simple)[number] };
    if (upper === 'MODSEQ' && this.hasCap('CONDSTORE')) {
      this.condstore = true;
      return { kind: 'simple', name: 'MODSEQ' };
    }
    if ((upper === 'X-GM-MSGID' || upper === 'X-GM-THRID' || upper === 'X-GM-LABELS') && this.hasCap('X-GM-EXT-1')) return { kind: 'simple', name: upper };
    if (upper === 'RFC822') return { kind: 'section', key: 'RFC822', section: '', fields: [], peek: false };
    if (upper === 'RFC822.HEADER') return { kind: 'section', key: 'RFC822.HEADER', section: 'HEADER', fields: [], peek: true };
    if (upper === 'RFC822.TEXT') return { kind: 'section', key: 'RFC822.TEXT', section: 'TEXT', fields: [], peek: false };
    const m = /^(BODY|BODY\.PEEK)\[([^\]]*)\](?:<(\d{1,10})(?:\.(\d{1,10}))?>)?$/i.exec(text);
    if (!m) {
      if (['ENVELOPE', 'BODY', 'BODYSTRUCTURE'].includes(upper) || upper.startsWith('BINARY')) throw bad(`${upper} is not implemented by the scripted server`);
      throw bad(`Unknown FETCH attribute ${text}`);
    }
    const peek = m[1]!.toUpperCase() === 'BODY.PEEK';
    const spec = m[2]!;
    const partial: [number, number | undefined] | undefined = m[3] !== undefined ? [Number(m[3]), m[4] !== undefined ? Number(m[4]) : undefined] : undefined;
    if (m[4] !== undefined && Number(m[4]) === 0) throw bad('Invalid partial');
    const sm = /^(HEADER\.FIELDS\.NOT|HEADER\.FIELDS|HEADER|TEXT|)(?: (\(.*\)))?$/i.exec(spec);
    if (!sm) throw bad(`Section ${spec} is not implemented by the scripted server`);
    const section = sm[1]!.toUpperCase() as '' | 'HEADER' | 'TEXT' | 'HEADER.FIELDS' | 'HEADER.FIELDS.NOT';
    let fields: string[] = [];
    if (section.startsWith('HEADER.FIELDS')) {
      if (!sm[2]) throw bad('HEADER.FIELDS needs a list of field names');
      const inner = new ArgReader([{ line: Buffer.from(sm[2], 'latin1') }]);
      fields = inner.list().map((t) => {
        if (t.kind === 'list') throw bad('Invalid header field name');
        return t.kind === 'atom' ? t.value : t.value.toString('latin1');
      });
      if (!fields.length) throw bad('Empty header field list');
      inner.end();
    } else if (sm[2]) throw bad('Unexpected section arguments');
    const key = `BODY[${section}${fields.length ? ` (${fields.join(' ')})` : ''}]`;
    return { kind: 'section', key, section, fields, peek, partial };
  }

  private async fetch(byUid: boolean, r: ArgReader): Promise<string> {
    r.sp();
    const set = r.sequenceSet();
    r.sp();
    const items = this.parseFetchItems(r);
    let changedSince: number | undefined;
    if (r.more()) {
      const mods = r.list();
      for (let i = 0; i < mods.length; i++) {
        const t = mods[i]!;
        const next = mods[i + 1];
        if (t.kind === 'atom' && t.value.toUpperCase() === 'CHANGEDSINCE' && this.hasCap('CONDSTORE') && next?.kind === 'atom' && /^\d{1,19}$/.test(next.value)) {
          changedSince = Number(next.value);
          this.condstore = true;
          i++;
        } else throw bad('Unsupported FETCH modifier');
      }
    }
    r.end();
    const f = this.selected!;
    if (byUid && !items.some((i) => i.kind === 'simple' && i.name === 'UID')) items.unshift({ kind: 'simple', name: 'UID' });
    if (changedSince !== undefined && !items.some((i) => i.kind === 'simple' && i.name === 'MODSEQ')) items.push({ kind: 'simple', name: 'MODSEQ' });
    let targets = this.resolve(set, byUid);
    if (changedSince !== undefined) targets = targets.filter(({ msg }) => msg.modseq > changedSince!);

    const wantsBody = items.some((i) => i.kind === 'section' && (i.section === '' || i.section === 'TEXT'));
    const wantsContent = items.some((i) => i.kind === 'section');
    const kind = fetchKind(items);
    const hostile = this.hostileFetch(kind, f);
    if (kind === 'body' && hostile.bye && targets.some(({ msg }) => hostile.bye!.includes(msg.uid))) {
      this.shared.log.push(`${this.tag} <fault: body FETCH answered with * BYE, connection closed>`);
      this.state = 'logout';
      await this.send('* BYE Server shutting down');
      throw new DropConnection();
    }
    if (kind === 'listing') await this.hostileListingStart(f);
    const down = this.user!.faults.bandwidthLimit?.downloadBytes;
    if (kind === 'body' && down !== undefined && this.user!.stats.fetchedBodyBytes >= down) throw no('[OVERQUOTA] Account exceeded command or bandwidth limits. (Failure)');
    /** With okBeforeData: every response, kept until the tagged answer has gone out. */
    const deferred: OutPart[] | undefined = hostile.okBeforeData ? [] : undefined;
    const emit = async (parts: OutPart[]) => {
      if (deferred) deferred.push(...parts);
      else {
        if (hostile.delayMs !== undefined) await pause(this.socket, hostile.delayMs);
        await this.writeParts(parts);
      }
    };
    let failure: string | undefined;
    for (const { seq, msg } of targets) {
      const fail = this.fetchFailure(f, msg.uid, wantsBody, wantsContent);
      if (fail !== undefined) {
        failure ??= fail;
        continue;
      }
      if (wantsBody && this.user!.faults.malformedFetch?.[f.name]?.includes(msg.uid)) {
        await emit([`* ${seq} FETCH (UID ${msg.uid} BODY[] "unterminated body\r\n`]);
        continue;
      }
      if (hostile.omit?.includes(msg.uid)) continue;
      const parts: OutPart[] = [`* ${seq} FETCH (`];
      let first = true;
      const put = (...p: OutPart[]) => {
        if (!first) parts.push(' ');
        first = false;
        parts.push(...p);
      };
      let setSeen = false;
      for (const item of items) {
        if (item.kind === 'simple') {
          switch (item.name) {
            case 'UID':
              if (!hostile.withoutUid) put(`UID ${hostile.uidAs?.[msg.uid] ?? msg.uid}`);
              break;
            case 'FLAGS':
              put(`FLAGS (${msg.flags.join(' ')})`);
              break;
            case 'INTERNALDATE':
              put(`INTERNALDATE ${formatInternalDate(msg.internalDate)}`);
              break;
            case 'RFC822.SIZE':
              put(`RFC822.SIZE ${msg.raw.length}`);
              break;
            case 'MODSEQ':
              put(`MODSEQ (${msg.modseq})`);
              break;
            case 'X-GM-MSGID':
              put(`X-GM-MSGID ${msg.gm?.msgId ?? msg.gmMsgId}`);
              break;
            case 'X-GM-THRID':
              put(`X-GM-THRID ${msg.gm?.thrId ?? msg.gmMsgId}`);
              break;
            case 'X-GM-LABELS':
              put(`X-GM-LABELS ${wireLabels(msg.gm?.labels ?? [])}`);
              break;
          }
          continue;
        }
        const { header, body } = splitMessage(msg.raw);
        let data: Buffer;
        if (item.section === '') data = msg.raw;
        else if (item.section === 'HEADER') data = header;
        else if (item.section === 'TEXT') data = body;
        else data = headerFields(header, item.fields, item.section === 'HEADER.FIELDS.NOT');
        let key = item.key;
        if (item.partial) {
          const [start, count] = item.partial;
          data = data.subarray(Math.min(start, data.length), count === undefined ? undefined : Math.min(start + count, data.length));
          key += `<${start}>`;
        }
        if (!item.peek && !this.readOnly && !has(msg.flags, '\\Seen')) setSeen = true;
        if (kind === 'body' && item.section === '' && !item.partial) {
          // The whole message: the one item the body faults change (swapped, cut short, or grown).
          const partner = swapPartner(hostile.swaps, msg.uid);
          if (partner !== undefined) data = f.messages.find((m) => m.uid === partner)?.raw ?? data;
          const oversize = hostile.oversize?.[msg.uid];
          if (oversize !== undefined) {
            const source = data;
            put(`${key} {${oversize}}\r\n`, (w: Write) => writeOversize(w, source, oversize));
            continue;
          }
          const cut = hostile.truncate?.[msg.uid];
          if (cut !== undefined) data = data.subarray(0, Math.min(cut, data.length));
        }
        if (kind === 'body' && item.section === '' && !item.partial) this.user!.stats.fetchedBodyBytes += data.length;
        put(`${key} {${data.length}}\r\n`, data);
      }
      if (setSeen) {
        // RFC 3501 §6.4.5: a non-PEEK body fetch sets \Seen, and the new flags are reported.
        msg.flags.push('\\Seen');
        msg.modseq = ++f.highestModseq;
        if (!items.some((i) => i.kind === 'simple' && i.name === 'FLAGS')) put(`FLAGS (${msg.flags.join(' ')})`);
      }
      parts.push(')\r\n');
      await emit(parts);
    }
    const text = failure ?? `OK ${byUid ? 'UID FETCH' : 'FETCH'} completed.`;
    if (deferred) {
      // okBeforeData: the tagged answer first, the data right behind it (one write unless streamed).
      this.shared.log.push(`${this.tag} <fault: tagged answer written before the FETCH data>`);
      await this.writeParts([`${this.tag} ${text}\r\n`, ...deferred]);
      throw new Answered();
    }
    if (failure !== undefined) throw new TaggedResponse(failure);
    return text;
  }

  /** The hostile faults that apply to this FETCH (body faults only to a body FETCH, and so on). */
  private hostileFetch(kind: FetchKind, f: FolderState) {
    const faults = this.user!.faults;
    const body = kind === 'body';
    return {
      uidAs: forFolder(faults.reportUidAs, f.name),
      bye: body ? forFolder(faults.byeOnBodyFetch, f.name) : undefined,
      omit: body ? forFolder(faults.omitFromBodyFetch, f.name) : undefined,
      withoutUid: everyFetch(forFolder(faults.fetchWithoutUid, f.name), kind),
      okBeforeData: everyFetch(forFolder(faults.okBeforeData, f.name), kind),
      swaps: body ? forFolder(faults.swapBodies, f.name) : undefined,
      truncate: body ? forFolder(faults.truncateBody, f.name) : undefined,
      oversize: body ? forFolder(faults.oversizeBody, f.name) : undefined,
      delayMs: kind === 'listing' ? forFolder(faults.slowListing, f.name)?.delayMs : undefined,
    };
  }

  /** endlessLine and untaggedFlood: what a listing FETCH sends before (or instead of) its data. */
  private async hostileListingStart(f: FolderState): Promise<void> {
    const faults = this.user!.faults;
    const write = (d: Buffer) => this.write(d);
    const endless = forFolder(faults.endlessLine, f.name);
    if (endless) {
      this.shared.log.push(`${this.tag} <fault: endless FETCH line of ${endless.bytes} bytes, then silence>`);
      await this.write(Buffer.from('* 1 FETCH (UID 1 FLAGS ('));
      await writeRepeated(write, Buffer.from('a'), endless.bytes);
      await untilClosed(this.socket);
      throw new ConnectionClosed();
    }
    const flood = forFolder(faults.untaggedFlood, f.name);
    if (flood?.kind === 'EXISTS') {
      // The number this connection already knows: the lines change nothing, they only take room.
      this.shared.log.push(`${this.tag} <fault: ${flood.count} untagged EXISTS lines>`);
      await writeLines(write, `* ${this.knownExists} EXISTS`, flood.count);
    } else if (flood) {
      // Any EXPUNGE renumbers the client's messages, so none can be harmless: nothing is sent.
      this.shared.log.push(`${this.tag} <fault: untaggedFlood EXPUNGE is not emitted>`);
    }
  }

  /** Writes response parts: runs of strings and buffers as one write each, streamed parts in between. */
  private async writeParts(parts: OutPart[]): Promise<void> {
    const write = (d: Buffer) => this.write(d);
    let run: Buffer[] = [];
    const flush = async () => {
      if (!run.length) return;
      const data = Buffer.concat(run);
      run = [];
      await writeChunked(write, data);
    };
    for (const p of parts) {
      if (typeof p === 'function') {
        await flush();
        await p(write);
      } else run.push(typeof p === 'string' ? Buffer.from(p, 'utf8') : p);
    }
    await flush();
  }

  /** The configured response when this FETCH of `uid` must fail (and counts it), else undefined. */
  private fetchFailure(f: FolderState, uid: number, wantsBody: boolean, wantsContent: boolean): string | undefined {
    const user = this.user!;
    const failure = user.faults.fetchFailures?.[f.name]?.[uid] ?? (f.name === 'INBOX' ? findInboxFailure(user.faults, uid) : undefined);
    if (!failure) return undefined;
    const trigger = failure.trigger ?? 'body';
    if ((trigger === 'body' && !wantsBody) || (trigger === 'content' && !wantsContent)) return undefined;
    const key = `${f.name}\0${uid}`;
    const left = user.failuresLeft.get(key) ?? 0;
    if (left <= 0) return undefined;
    user.failuresLeft.set(key, left - 1);
    return fillSecrets(failure.response, this.secrets);
  }

  private async search(byUid: boolean, r: ArgReader): Promise<string> {
    const msgs = this.selected!.messages;
    const tokens: Token[] = [];
    while (r.more()) tokens.push(r.token());
    if (!tokens.length) throw bad('SEARCH needs a search key');
    let i = 0;
    if (tokens[0]?.kind === 'atom' && tokens[0].value.toUpperCase() === 'CHARSET') {
      const cs = tokens[1];
      const name = cs?.kind === 'atom' ? cs.value : cs?.kind === 'string' ? cs.value.toString('latin1') : '';
      if (!['US-ASCII', 'UTF-8'].includes(name.toUpperCase())) throw no('[BADCHARSET (US-ASCII UTF-8)] Unsupported charset');
      i = 2;
    }
    type Pred = (m: MessageState, seq: number) => boolean;
    const str = (t: Token | undefined): string => {
      if (!t || t.kind === 'list') throw bad('Missing search argument');
      return t.kind === 'atom' ? t.value : t.value.toString('utf8');
    };
    const date = (t: Token | undefined): number => {
      const m = /^(\d{1,2})-([A-Za-z]{3})-(\d{4})$/.exec(str(t));
      const month = m ? MONTHS.findIndex((x) => x.toLowerCase() === m[2]!.toLowerCase()) : -1;
      if (!m || month < 0) throw bad('Invalid date');
      return Date.UTC(Number(m[3]), month, Number(m[1]));
    };
    const day = (d: Date) => Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate());
    const flag = (name: string, want: boolean): Pred => (m) => has(m.flags, name) === want;
    const one = (list: Token[], depth: number): Pred => {
      if (depth > MAX_LIST_DEPTH) throw bad('Search too deeply nested');
      const t = list[i++];
      if (!t) throw bad('Missing search key');
      if (t.kind === 'list') {
        const saved = i;
        i = 0;
        const preds: Pred[] = [];
        while (i < t.items.length) preds.push(one(t.items, depth + 1));
        i = saved;
        if (!preds.length) throw bad('Empty search list');
        return (m, s) => preds.every((p) => p(m, s));
      }
      if (t.kind === 'string') throw bad('Unexpected string in search');
      const key = t.value.toUpperCase();
      switch (key) {
        case 'ALL':
          return () => true;
        case 'ANSWERED':
        case 'DELETED':
        case 'DRAFT':
        case 'FLAGGED':
        case 'SEEN':
        case 'RECENT':
          return flag('\\' + key, true);
        case 'UNANSWERED':
        case 'UNDELETED':
        case 'UNDRAFT':
        case 'UNFLAGGED':
        case 'UNSEEN':
          return flag('\\' + key.slice(2), false);
        case 'KEYWORD': {
          const k = str(list[i++]);
          return flag(k, true);
        }
        case 'UNKEYWORD': {
          const k = str(list[i++]);
          return flag(k, false);
        }
        case 'LARGER': {
          const n = Number(str(list[i++]));
          return (m) => m.raw.length > n;
        }
        case 'SMALLER': {
          const n = Number(str(list[i++]));
          return (m) => m.raw.length < n;
        }
        case 'BEFORE': {
          const d = date(list[i++]);
          return (m) => day(m.internalDate) < d;
        }
        case 'ON': {
          const d = date(list[i++]);
          return (m) => day(m.internalDate) === d;
        }
        case 'SINCE': {
          const d = date(list[i++]);
          return (m) => day(m.internalDate) >= d;
        }
        case 'NOT': {
          const p = one(list, depth + 1);
          return (m, s) => !p(m, s);
        }
        case 'OR': {
          const a = one(list, depth + 1);
          const b = one(list, depth + 1);
          return (m, s) => a(m, s) || b(m, s);
        }
        case 'UID': {
          const ranges = parseSequenceSet(str(list[i++]), msgs.length ? msgs[msgs.length - 1]!.uid : 0);
          return (m) => inRanges(ranges, m.uid);
        }
        default: {
          if (/^[0-9:*,]+$/.test(key)) {
            const ranges = parseSequenceSet(key, msgs.length);
            return (_m, s) => inRanges(ranges, s);
          }
          throw bad(`Search key ${key} is not implemented by the scripted server`);
        }
      }
    };
    const preds: Pred[] = [];
    while (i < tokens.length) preds.push(one(tokens, 0));
    const hits = msgs.map((m, k) => ({ m, seq: k + 1 })).filter(({ m, seq }) => preds.every((p) => p(m, seq)));
    await this.send(`* SEARCH${hits.map(({ m, seq }) => ' ' + (byUid ? m.uid : seq)).join('')}`);
    return `OK ${byUid ? 'UID SEARCH' : 'SEARCH'} completed.`;
  }
}

/** A fetch failure configured for INBOX under another spelling of its name ("inbox"). */
function findInboxFailure(faults: UserFaults, uid: number): FetchFailure | undefined {
  for (const [name, byUid] of Object.entries(faults.fetchFailures ?? {})) if (name.toUpperCase() === 'INBOX' && byUid[uid]) return byUid[uid];
  return undefined;
}

/** The tag at the start of a line, if it looks like one. */
function leadingTag(line: Buffer): string | undefined {
  const head = line.toString('latin1', 0, Math.min(line.length, 128));
  const sp = head.indexOf(' ');
  const tag = sp > 0 ? head.slice(0, sp) : '';
  return tag && [...tag].every((ch) => isAstringChar(ch) && ch !== '+') ? tag : undefined;
}

/** okBeforeData / fetchWithoutUid: `true` touches body FETCHes, `'all'` listing FETCHes as well. */
function everyFetch(setting: boolean | 'all' | undefined, kind: FetchKind): boolean {
  return setting === 'all' ? kind !== 'other' : !!setting && kind === 'body';
}
