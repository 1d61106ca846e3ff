/**
 * Folder rules: which source folders are copied and where they land. Parsed once from the
 * command line (or given by a library caller), applied purely by the folder planner.
 *
 * Paths in rules are written with '/' between levels whatever the servers' separators, without
 * the namespace prefix: `Archive/2024`, `INBOX`, `Sent Items`.
 */
import { ERROR_CODES, MigrateError } from '../core/errors.js';

/** A rename rule: a regular expression over the '/'-joined path and its replacement. */
export interface RenameRule {
  pattern: RegExp;
  replacement: string;
}

/** Parsed, validated folder rules. */
export interface FolderRules {
  /** When not empty, only folders whose path matches one of these are copied. */
  include: RegExp[];
  /** Folders whose path matches one of these are not copied. */
  exclude: RegExp[];
  /** Exact mappings of a folder (and everything below it) to another path. First match wins. */
  map: { from: string[]; to: string[] }[];
  /** Applied in order to the '/'-joined destination path, after `map`. */
  rename: RenameRule[];
  /** Segments every destination path is placed under (turns special-folder mapping off). */
  destPrefix: string[];
  /** Map Sent/Drafts/Trash/Junk/Archive onto the destination's own special folders. */
  automap: boolean;
  /** Copy Gmail's All Mail, Important and Starred views too (they repeat messages kept elsewhere). */
  includeGmailViews: boolean;
  /** Copy the folders of other users' and shared namespaces too, below the namespace's name. */
  includeOtherNamespaces: boolean;
}

/** Rules that copy everything to the same place, with special folders mapped. */
export const DEFAULT_RULES: FolderRules = Object.freeze({
  include: [],
  exclude: [],
  map: [],
  rename: [],
  destPrefix: [],
  automap: true,
  includeGmailViews: false,
  includeOtherNamespaces: false,
}) as FolderRules;

/** Rules as strings, the way the command line (or a config file) gives them. */
export interface FolderRuleOptions {
  include?: string[];
  exclude?: string[];
  /** `SOURCE=DESTINATION`, both '/'-separated paths. */
  map?: string[];
  /** `s|REGEX|REPLACEMENT|FLAGS` with any delimiter character after the `s`. */
  rename?: string[];
  destPrefix?: string;
  automap?: boolean;
  includeGmailViews?: boolean;
  includeOtherNamespaces?: boolean;
}

const ruleError = (message: string) => new MigrateError(ERROR_CODES.CONFIG_RULE, message, { scope: 'config' });

/** Splits a rule path into segments; empty segments are refused. */
export function splitRulePath(text: string, what: string): string[] {
  const segments = text.split('/');
  if (segments.some((s) => s === '')) throw ruleError(`${what}: "${text}" has an empty level (leading, trailing or double '/').`);
  return segments;
}

function regex(text: string, what: string, flags = 'u'): RegExp {
  try {
    return new RegExp(text, flags);
  } catch (err) {
    throw ruleError(`${what}: "${text}" is not a valid regular expression (${(err as Error).message}).`);
  }
}

/** Parses `s|REGEX|REPLACEMENT|FLAGS`. */
function parseRename(text: string): RenameRule {
  const what = '--rename';
  if (text.length < 4 || text[0] !== 's') throw ruleError(`${what}: "${text}" must look like s|REGEX|REPLACEMENT| (any delimiter after the s).`);
  const delim = text[1]!;
  const parts = text.slice(2).split(delim);
  if (parts.length !== 3) throw ruleError(`${what}: "${text}" must have exactly three "${delim}" delimiters: s${delim}REGEX${delim}REPLACEMENT${delim}FLAGS.`);
  const [source, replacement, flags] = parts as [string, string, string];
  if (!/^[gi]*$/.test(flags)) throw ruleError(`${what}: flags "${flags}" are not supported (use g and/or i).`);
  return { pattern: regex(source, what, `${flags}u`), replacement };
}

/** Parses and validates folder rules; throws MigrateError MM-CONFIG-RULE with what to fix. */
export function parseFolderRules(options: FolderRuleOptions = {}): FolderRules {
  return {
    include: (options.include ?? []).map((r) => regex(r, '--include')),
    exclude: (options.exclude ?? []).map((r) => regex(r, '--exclude')),
    map: (options.map ?? []).map((m) => {
      const eq = m.indexOf('=');
      if (eq <= 0 || eq === m.length - 1) throw ruleError(`--map: "${m}" must be SOURCE=DESTINATION (folder paths with '/' between levels).`);
      return { from: splitRulePath(m.slice(0, eq), '--map'), to: splitRulePath(m.slice(eq + 1), '--map') };
    }),
    rename: (options.rename ?? []).map(parseRename),
    destPrefix: options.destPrefix ? splitRulePath(options.destPrefix.replace(/^\/+|\/+$/g, ''), '--dest-prefix') : [],
    automap: options.automap ?? true,
    includeGmailViews: options.includeGmailViews ?? false,
    includeOtherNamespaces: options.includeOtherNamespaces ?? false,
  };
}

/** True when `path` is `prefix` or lies below it. INBOX compares case-insensitively. */
export function startsWithPath(path: readonly string[], prefix: readonly string[]): boolean {
  if (prefix.length > path.length) return false;
  return prefix.every((s, i) => (i === 0 && s.toUpperCase() === 'INBOX' ? path[0]!.toUpperCase() === 'INBOX' : path[i] === s));
}
