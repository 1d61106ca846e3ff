/**
 * Vendor presets for the scripted IMAP server: only wire behaviour (greeting, capabilities, NAMESPACE,
 * delimiter, how names are written, which attributes are shown). Folder trees belong to the tests.
 *
 * Each preset advertises the vendor's capabilities that change what a client does AND that the scripted
 * engine implements; capabilities of commands the engine does not implement (SORT, THREAD, QUOTA, ACL,
 * COMPRESS, STARTTLS, ESEARCH, LIST-STATUS, IMAP4rev2, ...) are left out, so that a client never takes a
 * path the server cannot answer. README.md lists the sources and, per preset, what was left out.
 */
import type { Personality } from './server.js';

/** Greeting with a CAPABILITY response code, the way Courier and Cyrus greet. */
const greetWith = (caps: string[], text: string) => `* OK [CAPABILITY ${caps.join(' ')}] ${text}`;

const COURIER_CAPS = ['IMAP4rev1', 'UIDPLUS', 'CHILDREN', 'NAMESPACE', 'IDLE', 'AUTH=PLAIN'];

/**
 * Courier-IMAP (Maildir++): everything under "INBOX." with "." as delimiter, shared folders under
 * "#shared." and "shared.", names always quoted and in modified UTF-7, \HasChildren/\HasNoChildren on
 * every entry, no special-use attributes. AUTH=PLAIN without SASL-IR (the response comes after "+").
 */
export const courier: Personality = {
  name: 'courier',
  greeting: greetWith(COURIER_CAPS, 'Courier-IMAP ready. Copyright 1998-2018 Double Precision, Inc.  See COPYING for distribution information.'),
  capabilities: COURIER_CAPS,
  namespace: '(("INBOX." ".")) NIL (("#shared." ".")("shared." "."))',
  delimiter: '.',
  nameStyle: 'quoted-always',
  utf7: true,
  specialUse: 'never',
  loginOkText: 'LOGIN Ok.',
  byeText: 'Courier-IMAP server shutting down',
};

const CYRUS_PREAUTH = ['IMAP4rev1', 'LITERAL+', 'ID', 'ENABLE', 'AUTH=PLAIN', 'AUTH=LOGIN', 'SASL-IR'];

/**
 * Cyrus IMAP (default, non-alt namespace): "INBOX." personal prefix, other users under "user.", shared
 * folders at the top level (""), "." delimiter, atoms where possible. SPECIAL-USE, LIST-EXTENDED and
 * XLIST; special-use attributes only when asked for with RETURN (SPECIAL-USE) (Cyrus 3.0 with
 * specialusealways off) and sent in lower case (`\sent`): a stress case, see README.md.
 */
export const cyrus: Personality = {
  name: 'cyrus',
  greeting: greetWith(CYRUS_PREAUTH, 'imap.example.test Cyrus IMAP 3.0.8 server ready'),
  capabilities: CYRUS_PREAUTH,
  capabilitiesAfterLogin: ['IMAP4rev1', 'LITERAL+', 'ID', 'ENABLE', 'NAMESPACE', 'UIDPLUS', 'UNSELECT', 'CHILDREN', 'CONDSTORE', 'LIST-EXTENDED', 'XLIST', 'MOVE', 'SPECIAL-USE', 'IDLE'],
  namespace: '(("INBOX." ".")) (("user." ".")) (("" "."))',
  delimiter: '.',
  nameStyle: 'atom-or-quoted',
  utf7: true,
  specialUse: 'on-request',
  lowercaseSpecialUse: true,
  id: { name: 'Cyrus IMAPD', version: '3.0.8', vendor: 'Project Cyrus', 'support-url': 'https://www.cyrusimap.org' },
  loginOkText: 'User logged in SESSIONID=<scripted-1>',
};

/**
 * Microsoft Exchange / Exchange Online: no prefix, "/" delimiter, atoms where possible and quoted names
 * with spaces ("Sent Items"), modified UTF-7. No SPECIAL-USE capability, but \Sent, \Trash, \Drafts,
 * \Junk on plain LIST lines, and \Marked on INBOX. AUTH=PLAIN with SASL-IR, LITERAL+.
 */
export const exchange: Personality = {
  name: 'exchange',
  greeting: '* OK The Microsoft Exchange IMAP4 service is ready.',
  capabilities: ['IMAP4', 'IMAP4rev1', 'AUTH=PLAIN', 'SASL-IR', 'UIDPLUS', 'ID', 'UNSELECT', 'CHILDREN', 'IDLE', 'NAMESPACE', 'LITERAL+'],
  capabilitiesAfterLogin: [
    'IMAP4',
    'IMAP4rev1',
    'AUTH=PLAIN',
    'SASL-IR',
    'UIDPLUS',
    'MOVE',
    'ID',
    'UNSELECT',
    'CLIENTACCESSRULES',
    'CLIENTNETWORKPRESENCELOCATION',
    'BACKENDAUTHENTICATE',
    'CHILDREN',
    'IDLE',
    'NAMESPACE',
    'LITERAL+',
  ],
  namespace: '(("" "/")) NIL NIL',
  delimiter: '/',
  nameStyle: 'atom-or-quoted',
  utf7: true,
  specialUse: 'always',
  listExtras: { inboxAttributes: ['\\Marked'] },
  id: { name: 'Microsoft.Exchange.Imap4.Imap4Server', version: '15.20' },
  byeText: 'Microsoft Exchange Server IMAP4 server signing off.',
};

/**
 * Microsoft 365 / Exchange Online: Exchange's wire behaviour plus its message size limit: an APPEND of
 * more than 35 MiB is refused after its bytes were read (tests raise limits.maxLiteralBytes above it).
 * No MULTIAPPEND (neither advertised nor accepted). Throttling ("Suggested Backoff Time") and the
 * "User is authenticated but not connected." sessions are per-user faults (throttle, notConnected),
 * so that a test chooses how often they happen. The refusal's words are this server's: Exchange Online's
 * exact text was not available to check.
 */
export const exchangeOnline: Personality = {
  ...exchange,
  name: 'exchange-online',
  maxAppendBytes: 35 * 1024 * 1024,
  appendTooLarge: 'NO [LIMIT] APPEND failed: the message exceeds the maximum message size of 35 MB.',
};

/**
 * Gmail: no prefix, "/" delimiter, every name quoted, modified UTF-7; "[Gmail]" is a \Noselect parent of
 * the system folders. SPECIAL-USE and XLIST both advertised (so clients use LIST), special-use attributes
 * on every LIST line, LIST-EXTENDED, X-GM-EXT-1 (X-GM-MSGID/THRID/LABELS in FETCH), CONDSTORE, LITERAL-.
 */
export const gmail: Personality = {
  name: 'gmail',
  greeting: '* OK Gimap ready for requests from 127.0.0.1 scripted',
  capabilities: ['IMAP4rev1', 'UNSELECT', 'IDLE', 'NAMESPACE', 'ID', 'XLIST', 'CHILDREN', 'X-GM-EXT-1', 'SASL-IR', 'AUTH=PLAIN'],
  capabilitiesAfterLogin: [
    'IMAP4rev1',
    'UNSELECT',
    'IDLE',
    'NAMESPACE',
    'ID',
    'XLIST',
    'CHILDREN',
    'X-GM-EXT-1',
    'UIDPLUS',
    'ENABLE',
    'MOVE',
    'CONDSTORE',
    'LIST-EXTENDED',
    'LITERAL-',
    'SPECIAL-USE',
  ],
  namespace: '(("" "/")) NIL NIL',
  delimiter: '/',
  nameStyle: 'quoted-always',
  utf7: true,
  specialUse: 'always',
  id: { name: 'GImap', vendor: 'Google, Inc.', 'support-url': 'https://support.google.com/mail' },
  loginOkText: 'alice@gmail.example authenticated (Success)',
  byeText: 'LOGOUT Requested',
};

/**
 * A server without hierarchy: NIL delimiter on LIST lines and in NAMESPACE (RFC 3501 §6.3.8 and RFC 2342
 * §5 allow it), so a name like "Archive/2024" or "a.b" is one level. \Noinferiors on every entry; plain
 * LOGIN only (no AUTH= mechanism advertised).
 */
export const flat: Personality = {
  name: 'flat',
  greeting: '* OK Flat mail store IMAP4rev1 ready',
  capabilities: ['IMAP4rev1', 'NAMESPACE', 'LITERAL+'],
  namespace: '(("" NIL)) NIL NIL',
  delimiter: null,
  nameStyle: 'atom-or-quoted',
  utf7: true,
  omitHasChildren: true,
  listExtras: { attributes: ['\\Noinferiors'] },
};

/**
 * A generic server that writes every mailbox name in LIST/LSUB as a literal ({n} CRLF bytes), and uses
 * quoted strings with \" and \\ escapes elsewhere (STATUS, ID). Synchronizing literals only (no
 * LITERAL+), plain LOGIN, so literal arguments from the client go through "+" continuations.
 */
export const literalNames: Personality = {
  name: 'literal-names',
  greeting: '* OK Literal names IMAP4rev1 server ready',
  capabilities: ['IMAP4rev1', 'NAMESPACE', 'ID', 'UNSELECT', 'CHILDREN'],
  namespace: '(("" "/")) NIL NIL',
  delimiter: '/',
  nameStyle: 'literal',
  utf7: true,
  id: { name: 'Literal "names" \\ server', version: '1.0' },
};

export const PERSONALITIES = { courier, cyrus, exchange, gmail, flat, 'literal-names': literalNames } as const;
export type PersonalityName = keyof typeof PERSONALITIES;

/** Provider personalities: a vendor's wire behaviour plus a provider's limits (tested in provider-personalities.test.ts). */
export const PROVIDER_PERSONALITIES = { 'exchange-online': exchangeOnline } as const;
