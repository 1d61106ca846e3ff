/**
 * Provider presets: what mailmover knows about the big hosted mail services, as data, and one
 * pure function (mergePreset) that turns a preset and what the user gave explicitly into the
 * settings of a run. Every value here is a default: an explicit option always wins.
 *
 * The figures are the providers' published limits where there is one; README "Presets" says
 * where each comes from. Connection counts are mailmover's own choice (below the provider's
 * published per-account maximum, leaving room for the user's own mail clients). Daily budgets are
 * enforced per account (README "Daily budgets"): the source preset's download budget, the
 * destination preset's upload budget, unless --max-bytes-per-day / maxBytesPerDay says otherwise.
 */

/** How a provider's accounts sign in over IMAP. */
export type SignIn = 'oauth' | 'password' | 'app-password';

/** One provider's preset. Sizes are bytes. */
export interface Preset {
  name: PresetName;
  title: string;
  /** IMAP host and port (implicit TLS): undefined for on-premises servers, whose host only the admin knows. */
  host?: string;
  port: number;
  protocol: 'imaps' | 'imap';
  /** How accounts sign in; `oauthProvider` names the `mailmover login --provider` to use. */
  signIn: SignIn;
  oauthProvider?: 'google' | 'microsoft';
  /** The largest message the provider accepts (as a destination, by IMAP APPEND). */
  maxMessageSize?: number;
  /** Folders copied at once (each with its own connection pair), per mailbox. */
  connections: number;
  /** Per-account daily transfer budgets, the provider's published limits (enforced: README "Daily budgets"). */
  dailyBudget?: { downloadBytes?: number; uploadBytes?: number };
  /**
   * Source folders left out by default (regular expressions over the '/'-joined path, as
   * --exclude takes them): folders that hold no mail as IMAP shows it.
   */
  excludeFolders: string[];
  /** Folder quirks worth knowing, for `mailmover presets`. */
  notes: string[];
}

export const PRESET_NAMES = ['gmail', 'm365', 'exchange', 'yahoo', 'icloud', 'fastmail'] as const;
export type PresetName = (typeof PRESET_NAMES)[number];

const MB = 1024 * 1024;
/** The providers state these limits in decimal megabytes (Gmail's "2,500 MB a day"). */
const DECIMAL_MB = 1000 * 1000;

/** Exchange lists its non-mail folders over IMAP (empty, or holding items IMAP cannot show). */
const EXCHANGE_NON_MAIL = ['^(Calendar|Contacts|Tasks|Notes|Journal)(/|$)', '^Sync Issues(/|$)', '^Conversation History(/|$)'];

export const PRESETS: Readonly<Record<PresetName, Preset>> = Object.freeze({
  gmail: {
    name: 'gmail',
    title: 'Gmail and Google Workspace',
    host: 'imap.gmail.com',
    port: 993,
    protocol: 'imaps',
    signIn: 'oauth',
    oauthProvider: 'google',
    maxMessageSize: 25 * MB,
    connections: 4,
    dailyBudget: { downloadBytes: 2500 * DECIMAL_MB, uploadBytes: 500 * DECIMAL_MB },
    excludeFolders: [],
    notes: [
      'labels are folders: a message with three labels is listed in three folders (copied once per folder until label-aware copying lands)',
      '[Gmail]/All Mail, Important and Starred are views and left out (--include-gmail-views copies them)',
      '[Gmail]/Sent Mail, Drafts, Spam, Trash map onto the destination\'s special folders',
    ],
  },
  m365: {
    name: 'm365',
    title: 'Microsoft 365 / Exchange Online',
    host: 'outlook.office365.com',
    port: 993,
    protocol: 'imaps',
    signIn: 'oauth',
    oauthProvider: 'microsoft',
    maxMessageSize: 35 * MB,
    connections: 4,
    excludeFolders: EXCHANGE_NON_MAIL,
    notes: [
      'Calendar, Contacts, Tasks, Notes, Journal, Sync Issues and Conversation History are left out (English names; a localised mailbox needs --exclude)',
      '"Sent Items" and "Deleted Items" map onto the other side\'s special folders',
      'throttling answers carry a suggested backoff, which mailmover honours',
    ],
  },
  exchange: {
    name: 'exchange',
    title: 'Exchange Server (on-premises)',
    port: 993,
    protocol: 'imaps',
    signIn: 'password',
    maxMessageSize: 10 * MB,
    connections: 2,
    excludeFolders: EXCHANGE_NON_MAIL,
    notes: [
      'no host: give --from/--to as imaps://USER@YOUR-SERVER',
      'the message size limit is the organization default; raise it with --max-message-size when the admin raised MaxReceiveSize',
      'the same non-mail folders as m365 are left out',
    ],
  },
  yahoo: {
    name: 'yahoo',
    title: 'Yahoo Mail',
    host: 'imap.mail.yahoo.com',
    port: 993,
    protocol: 'imaps',
    signIn: 'app-password',
    maxMessageSize: 25 * MB,
    connections: 2,
    excludeFolders: [],
    notes: ['sign in with an app password (Account security, Generate app password)', '"Bulk" is the Spam folder'],
  },
  icloud: {
    name: 'icloud',
    title: 'iCloud Mail',
    host: 'imap.mail.me.com',
    port: 993,
    protocol: 'imaps',
    signIn: 'app-password',
    maxMessageSize: 20 * MB,
    connections: 2,
    excludeFolders: [],
    notes: ['sign in with an app-specific password and the iCloud address (the part before @ is also accepted by Apple)'],
  },
  fastmail: {
    name: 'fastmail',
    title: 'Fastmail',
    host: 'imap.fastmail.com',
    port: 993,
    protocol: 'imaps',
    signIn: 'app-password',
    maxMessageSize: 70 * MB,
    connections: 4,
    excludeFolders: [],
    notes: ['sign in with an app password (Settings, Privacy & Security, App passwords)'],
  },
});

/** The preset of a name, or undefined. */
export function presetByName(name: string): Preset | undefined {
  return (PRESET_NAMES as readonly string[]).includes(name) ? PRESETS[name as PresetName] : undefined;
}

/**
 * The endpoint URL of a side: a full URL as given (it overrides the preset's host, port and
 * TLS), or, for a bare user (`alice@example.com`), the preset's server with that user. Returns
 * undefined when the text is a bare user and the preset names no host (on-premises Exchange).
 */
export function presetEndpoint(preset: Preset, text: string): string | undefined {
  if (/^[a-z][a-z0-9+.-]*:/i.test(text)) return text;
  if (!preset.host) return undefined;
  return `${preset.protocol}://${encodeURIComponent(text)}@${preset.host}:${preset.port}`;
}

/** What the user gave for a run, undefined where nothing was given explicitly. */
export interface GivenSettings {
  /** The endpoints as given (undefined: not resolved here, e.g. a batch config's url). */
  from?: string | undefined;
  to?: string | undefined;
  connections?: number | undefined;
  maxMessageSize?: number | undefined;
  exclude: string[];
  /** False: leave out the presets' default folder exclusions (--no-preset-excludes). */
  presetExcludes?: boolean | undefined;
}

/** The settings of a run after the presets were applied. */
export interface MergedSettings {
  from: string | undefined;
  to: string | undefined;
  connections: number | undefined;
  maxMessageSize: number | undefined;
  exclude: string[];
}

/**
 * Applies the source and destination presets to what the user gave. An explicit value always
 * wins; otherwise: the endpoint is the preset's server, connections the smaller of the two
 * presets', the item size limit the destination's, and the source's non-mail folders are
 * added to the exclusions (unless presetExcludes is false). Pure. Throws an Error whose message
 * names the side when a bare user is given for a preset without a host.
 */
export function mergePreset(from: Preset | undefined, to: Preset | undefined, given: GivenSettings): MergedSettings {
  const endpoint = (preset: Preset | undefined, text: string | undefined, side: 'from' | 'to') => {
    if (!preset || text === undefined) return text;
    const url = presetEndpoint(preset, text);
    if (url === undefined) throw new Error(`--${side}-preset ${preset.name} has no server name (on-premises); give --${side} as imaps://USER@HOST`);
    return url;
  };
  const counts = [from?.connections, to?.connections].filter((n): n is number => n !== undefined);
  const presetExcludes = given.presetExcludes === false ? [] : (from?.excludeFolders ?? []);
  return {
    from: endpoint(from, given.from, 'from'),
    to: endpoint(to, given.to, 'to'),
    connections: given.connections ?? (counts.length > 0 ? Math.min(...counts) : undefined),
    maxMessageSize: given.maxMessageSize ?? to?.maxMessageSize,
    exclude: [...given.exclude, ...presetExcludes.filter((x) => !given.exclude.includes(x))],
  };
}
