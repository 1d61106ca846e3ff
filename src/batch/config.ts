/**
 * The batch configuration file (YAML): the source and destination servers, admin access, and
 * the defaults and folder rules every mailbox of the batch uses. Checked in full before anything
 * connects; every problem is reported with its line, column and field.
 *
 * ```yaml
 * source:
 *   url: imaps://old.example.com          # no user: users come from the CSV
 *   master: { user: admin, password: env:OLD_MASTER_PW }   # optional: proxy/master-user login
 * destination:
 *   preset: m365                          # optional: a provider preset (mailmover presets); url then optional
 *   tlsInsecure: false
 * defaults: { connections: 2, retries: 3, badItemLimit: 10 }   # also gmailLabels: first, labelPriority: 'Work,Inbox'
 * rules: { exclude: ['^Junk$'], map: ['Old Mail=Archive/Old'] }
 * notify:                                 # optional: when the batch ends (src/notify/)
 *   email: { to: [ops@example.com], from: mailmover@example.com, smtp: smtp://relay.example.com:587, password: env:SMTP_PW }
 *   webhook: { url: https://hooks.example.com/mailmover, header: { Authorization: env:HOOK_TOKEN } }
 * ```
 */
import { parseLabelMode, parseLabelPriority } from '../stores/gmail/label-modes.js';
import { readFileSync } from 'node:fs';
import { LineCounter, parseDocument, isMap, isSeq, type Node } from 'yaml';
import { splitCommand } from '../core/access-token.js';
import { ERROR_CODES, MigrateError } from '../core/errors.js';
import { parseFolderRules, type FolderRuleOptions } from '../plan/folder-rules.js';
import { isReference } from './secrets.js';
import { mergePreset, presetByName, PRESET_NAMES, type Preset } from '../core/presets.js';
import { parseDuration, parseSize } from '../cli/option-parsers.js';
import { checkAddress, checkWebhookUrl, parseSmtpUrl, type NotifySettings } from '../notify/notify.js';

/** One server of a batch. */
export interface BatchServer {
  /** `imap://HOST[:PORT]` or `imaps://HOST[:PORT]`, without a user; or (source only) `pst:`, each row's source_user then the absolute path of a PST or OST file. */
  protocol: 'imap' | 'imaps' | 'pst';
  host: string;
  port: number | undefined;
  tlsInsecure: boolean;
  allowPlaintext: boolean;
  /** Connections at once and rates over the whole batch (see ServerLimits). */
  maxConnections?: number;
  maxMessagesPerSecond?: number;
  maxBytesPerSecond?: number;
  /**
   * Daily budgets per account on this server (README "Daily budgets"): bytes and messages downloaded
   * from each source account, or uploaded to each destination account, per window (defaults.budgetWindow).
   * A preset's published limits are the default (Gmail: 2,500 MB down, 500 MB up).
   */
  maxBytesPerDay?: number;
  maxMessagesPerDay?: number;
  /**
   * OAuth 2.0 for every mailbox: a credentials file from `mailmover login` (access tokens renewed
   * from its refresh token), a command printing a token, or a token file; `{user}` is replaced by
   * the mailbox's user.
   */
  oauth?: { tokenCommand?: string; tokenFile?: string; credentials?: string };
  /** The provider preset named by `preset:` (its url, connections, size limit and folder exclusions are defaults). */
  preset?: Preset;
  /** Log in as `USER<separator>MASTER` with the master's password (Dovecot's master users). */
  master?: { user: string; password: string; separator: string; method: 'separator' | 'authzid'; literal?: true; at?: string };
}

/** The whole file. */
export interface BatchConfig {
  source: BatchServer;
  destination: BatchServer;
  defaults: {
    connections: number;
    retries: number;
    retryDelaySeconds: number;
    badItemLimit: number | undefined;
    maxMessageSize: number | undefined;
    gmailLabels?: string;
    labelPriority?: string;
    /** The daily budgets' rolling window in ms (`budgetWindow: 2m`; default 24 h). */
    budgetWindowMs?: number | undefined;
    /** How long a mailbox is parked after a provider's own limit answer, in ms (`providerLimitPark: 12h`; default 24 h). */
    providerLimitParkMs?: number | undefined;
  };
  rules: FolderRuleOptions;
  /** Who is told when the batch ends (e-mail, webhooks); secrets as references. */
  notify?: NotifySettings;
  /** Things the administrator should fix (a literal master password), each with its line. */
  warnings?: string[];
}

type Where = (node: Node | null | undefined) => string;

/**
 * Reads and checks the configuration file. Throws MM-BATCH-CONFIG with line and field on any
 * problem. Warnings (a master password written in the file) are in `warnings` and are also given
 * to `warn`, once each (by default: written to stderr).
 */
export function loadBatchConfig(file: string, warn: (message: string) => void = (m) => process.stderr.write(`mailmover: warning: ${m}\n`)): BatchConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw fail(`${file}: cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false });
  if (doc.errors.length > 0) {
    const e = doc.errors[0]!;
    const pos = lines.linePos(e.pos[0]);
    throw fail(`${file}:${pos.line}:${pos.col}: not valid YAML: ${e.message.split('\n')[0]}`);
  }
  const where: Where = (node) => {
    const offset = node?.range?.[0];
    if (offset === undefined) return file;
    const pos = lines.linePos(offset);
    return `${file}:${pos.line}:${pos.col}`;
  };
  const root = doc.contents;
  if (!isMap(root)) throw fail(`${where(root)}: the file must be a mapping with "source" and "destination"`);
  const known = ['source', 'destination', 'defaults', 'rules', 'notify'];
  for (const pair of root.items) {
    const key = String((pair.key as { value?: unknown })?.value ?? pair.key);
    if (!known.includes(key)) throw fail(`${where(pair.key as Node)}: unknown field "${key}" (known: ${known.join(', ')})`);
  }
  const source = server(root.get('source', true) as Node | undefined, 'source', where, root);
  const destination = server(root.get('destination', true) as Node | undefined, 'destination', where, root);
  const warnings: string[] = [];
  for (const [name, s] of [['source', source], ['destination', destination]] as const) {
    if (s.master?.literal) warnings.push(`${s.master.at}: ${name}.master.password is written in the file; use env:NAME or file:PATH so that the password is not kept in the configuration`);
  }
  const defaultsNode = root.get('defaults', true) as Node | undefined;
  if (defaultsNode && !isMap(defaultsNode)) throw fail(`${where(defaultsNode)}: defaults must be a mapping`);
  const d = (defaultsNode && isMap(defaultsNode) ? defaultsNode.toJSON() : {}) as Record<string, unknown>;
  const num = (name: string, min: number, max: number, fallback: number | undefined, whole = true): number | undefined => {
    const v = d[name];
    if (v === undefined) return fallback;
    if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max || (whole && !Number.isInteger(v))) {
      throw fail(`${where((defaultsNode as { get?: (k: string, keep: boolean) => Node } | undefined)?.get?.(name, true))}: defaults.${name} must be a ${whole ? 'whole number' : 'number'} from ${min} to ${max}`);
    }
    return v;
  };
  for (const key of Object.keys(d)) {
    if (!['connections', 'retries', 'retryDelaySeconds', 'badItemLimit', 'maxMessageSize', 'gmailLabels', 'labelPriority', 'budgetWindow', 'providerLimitPark'].includes(key)) throw fail(`${where(defaultsNode)}: unknown field defaults.${key}`);
  }
  // A Gmail source's labels (see src/stores/gmail/label-modes.ts): checked here, with the line.
  const textOption = (name: 'gmailLabels' | 'labelPriority', check: (v: string) => unknown): string | undefined => {
    const v = d[name];
    const at = where((defaultsNode as { get?: (k: string, keep: boolean) => Node } | undefined)?.get?.(name, true));
    if (v === undefined) return undefined;
    if (typeof v !== 'string') throw fail(`${at}: defaults.${name} must be a string`);
    try {
      check(v);
    } catch (err) {
      throw fail(`${at}: ${(err as Error).message}`);
    }
    return v;
  };
  const gmailLabels = textOption('gmailLabels', (v) => parseLabelMode(v, 'defaults.gmailLabels'));
  const labelPriority = textOption('labelPriority', (v) => parseLabelPriority(v, 'defaults.labelPriority'));
  const duration = (name: string): number | undefined => {
    const v = d[name];
    if (v === undefined) return undefined;
    const ms = typeof v === 'string' || typeof v === 'number' ? parseDuration(v) : undefined;
    if (ms === undefined) throw fail(`${where((defaultsNode as { get?: (k: string, keep: boolean) => Node } | undefined)?.get?.(name, true))}: defaults.${name} must be a duration such as 90s, 2m, 12h or 1d, from 1 s to 30 days`);
    return ms;
  };
  const rulesNode = root.get('rules', true) as Node | undefined;
  if (rulesNode && !isMap(rulesNode)) throw fail(`${where(rulesNode)}: rules must be a mapping`);
  const rules = (rulesNode && isMap(rulesNode) ? rulesNode.toJSON() : {}) as Record<string, unknown>;
  const ruleNode = (name: string) => (rulesNode && isMap(rulesNode) ? (rulesNode.get(name, true) as Node | undefined) : undefined);
  const list = (name: string): string[] | undefined => {
    const v = rules[name];
    if (v === undefined) return undefined;
    if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) throw fail(`${where(ruleNode(name) ?? rulesNode)}: rules.${name} must be a list of strings`);
    return v as string[];
  };
  for (const key of Object.keys(rules)) {
    if (!['include', 'exclude', 'map', 'rename', 'destPrefix', 'automap'].includes(key)) throw fail(`${where(rulesNode)}: unknown field rules.${key}`);
  }
  if (rules.destPrefix !== undefined && typeof rules.destPrefix !== 'string') throw fail(`${where(ruleNode('destPrefix'))}: rules.destPrefix must be a string`);
  if (rules.automap !== undefined && typeof rules.automap !== 'boolean') throw fail(`${where(ruleNode('automap'))}: rules.automap must be true or false`);
  // Each rule is checked here, one at a time, so that a bad regex or mapping is reported with
  // its line before anything runs (not as a failure of every mailbox).
  for (const name of ['include', 'exclude', 'map', 'rename'] as const) {
    const items = list(name) ?? [];
    const seq = ruleNode(name);
    items.forEach((item, i) => {
      try {
        parseFolderRules({ [name]: [item] });
      } catch (err) {
        const at = seq && isSeq(seq) ? (seq.items[i] as Node | undefined) : seq;
        throw fail(`${where(at ?? rulesNode)}: rules.${name}: ${(err as Error).message}`);
      }
    });
  }
  if (typeof rules.destPrefix === 'string') {
    try {
      parseFolderRules({ destPrefix: rules.destPrefix });
    } catch (err) {
      throw fail(`${where(ruleNode('destPrefix'))}: rules.destPrefix: ${(err as Error).message}`);
    }
  }
  const notify = notifySection(root.get('notify', true) as Node | undefined, where, warnings);
  for (const w of warnings) warn(w);
  // The presets' defaults (connections, the destination's item size limit, the source's non-mail
  // folders) under whatever the file says; the endpoints are already resolved above.
  const merged = mergePreset(source.preset, destination.preset, { connections: num('connections', 1, 16, undefined), maxMessageSize: num('maxMessageSize', 1, 2 ** 40, undefined), exclude: list('exclude') ?? [] });
  return {
    ...(notify ? { notify } : {}),
    source,
    destination,
    defaults: {
      connections: merged.connections ?? 2,
      retries: num('retries', 1, 20, 3)!,
      retryDelaySeconds: num('retryDelaySeconds', 0, 600, 1, false)!,
      badItemLimit: num('badItemLimit', 0, 1e9, undefined),
      maxMessageSize: merged.maxMessageSize,
      ...(gmailLabels !== undefined ? { gmailLabels } : {}),
      ...(labelPriority !== undefined ? { labelPriority } : {}),
      ...(duration('budgetWindow') !== undefined ? { budgetWindowMs: duration('budgetWindow') } : {}),
      ...(duration('providerLimitPark') !== undefined ? { providerLimitParkMs: duration('providerLimitPark') } : {}),
    },
    rules: {
      ...(list('include') ? { include: list('include')! } : {}),
      ...(merged.exclude.length > 0 ? { exclude: merged.exclude } : {}),
      ...(list('map') ? { map: list('map')! } : {}),
      ...(list('rename') ? { rename: list('rename')! } : {}),
      ...(typeof rules.destPrefix === 'string' ? { destPrefix: rules.destPrefix } : {}),
      ...(typeof rules.automap === 'boolean' ? { automap: rules.automap } : {}),
    },
    warnings,
  };
}

function server(node: Node | undefined, name: string, where: Where, root: Node): BatchServer {
  if (!node) throw fail(`${where(root)}: "${name}" is missing`);
  if (!isMap(node)) throw fail(`${where(node)}: ${name} must be a mapping with a url`);
  const value = node.toJSON() as Record<string, unknown>;
  const at = (key: string) => where((node.get(key, true) as Node | undefined) ?? node);
  for (const key of Object.keys(value)) {
    if (!['url', 'preset', 'tlsInsecure', 'allowPlaintext', 'master', 'oauth', 'maxConnections', 'maxMessagesPerSecond', 'maxBytesPerSecond', 'maxBytesPerDay', 'maxMessagesPerDay'].includes(key)) throw fail(`${at(key)}: unknown field ${name}.${key}`);
  }
  const preset = value.preset === undefined ? undefined : typeof value.preset === 'string' ? presetByName(value.preset) : undefined;
  if (value.preset !== undefined && !preset) throw fail(`${at('preset')}: ${name}.preset must be one of ${PRESET_NAMES.join(', ')}`);
  // A preset with a server gives the url; an explicit url overrides it.
  if (value.url === undefined && preset?.host) value.url = `${preset.protocol}://${preset.host}:${preset.port}`;
  const limits: Record<string, number> = {};
  for (const key of ['maxConnections', 'maxMessagesPerSecond', 'maxBytesPerSecond']) {
    const v = value[key];
    if (v === undefined) continue;
    if (typeof v !== 'number' || !(v > 0) || (key === 'maxConnections' && !Number.isInteger(v))) throw fail(`${at(key)}: ${name}.${key} must be a positive number`);
    limits[key] = v;
  }
  // Daily budgets: sizes (500M) or numbers; the preset's published limit for this side by default.
  for (const key of ['maxBytesPerDay', 'maxMessagesPerDay']) {
    const v = value[key];
    if (v === undefined) continue;
    const n = key === 'maxBytesPerDay' && typeof v === 'string' ? sizeOf(v) : v;
    if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 1) throw fail(`${at(key)}: ${name}.${key} must be a positive whole number${key === 'maxBytesPerDay' ? ' of bytes, or a size such as 500M' : ''}`);
    limits[key] = n;
  }
  const presetDaily = name === 'source' ? preset?.dailyBudget?.downloadBytes : preset?.dailyBudget?.uploadBytes;
  if (limits.maxBytesPerDay === undefined && presetDaily !== undefined) limits.maxBytesPerDay = presetDaily;
  const url = value.url;
  if (url === 'pst:') {
    if (name !== 'source') throw fail(`${at('url')}: ${name}.url cannot be pst: (a PST file is a source only)`);
    return { protocol: 'pst', host: '', port: undefined, tlsInsecure: false, allowPlaintext: false, ...limits };
  }
  const m = typeof url === 'string' ? /^(imaps?):\/\/(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+)(?::(\d{1,5}))?\/?$/.exec(url) : null;
  if (!m) throw fail(`${at('url')}: ${name}.url must be imap://HOST[:PORT] or imaps://HOST[:PORT], without a user (users come from the CSV)${name === 'source' ? ', or pst: (each row\'s source_user the absolute path of a PST file)' : ''}`);
  const port = m[3] === undefined ? undefined : Number(m[3]);
  if (port !== undefined && (port < 1 || port > 65535)) throw fail(`${at('url')}: ${name}.url has an invalid port`);
  for (const flag of ['tlsInsecure', 'allowPlaintext']) {
    if (value[flag] !== undefined && typeof value[flag] !== 'boolean') throw fail(`${at(flag)}: ${name}.${flag} must be true or false`);
  }
  let master: BatchServer['master'];
  if (value.master !== undefined) {
    const mm = value.master as Record<string, unknown>;
    if (typeof mm !== 'object' || mm === null || typeof mm.user !== 'string' || !mm.user || typeof mm.password !== 'string' || !mm.password) {
      throw fail(`${at('master')}: ${name}.master needs user and password (a reference such as env:NAME or file:PATH)`);
    }
    if (mm.separator !== undefined && (typeof mm.separator !== 'string' || mm.separator.length !== 1)) throw fail(`${at('master')}: ${name}.master.separator must be one character`);
    if (mm.method !== undefined && mm.method !== 'separator' && mm.method !== 'authzid') throw fail(`${at('master')}: ${name}.master.method must be separator (USER*MASTER) or authzid (SASL PLAIN authorization identity)`);
    master = {
      user: mm.user,
      password: mm.password,
      separator: (mm.separator as string | undefined) ?? '*',
      method: (mm.method as 'separator' | 'authzid' | undefined) ?? 'separator',
      ...(isReference(mm.password) ? {} : { literal: true as const, at: where(((node.get('master', true) as { get?: (k: string, keep: boolean) => Node } | undefined)?.get?.('password', true)) ?? node) }),
    };
  }
  let oauth: BatchServer['oauth'];
  if (value.oauth !== undefined) {
    const o = value.oauth as Record<string, unknown>;
    const ok = typeof o === 'object' && o !== null && Object.keys(o).length === 1 && (typeof o.tokenCommand === 'string' || typeof o.tokenFile === 'string' || typeof o.credentials === 'string');
    if (!ok) throw fail(`${at('oauth')}: ${name}.oauth must be { credentials: "..." } (a file from mailmover login), { tokenCommand: "..." } or { tokenFile: "..." } ({user} is replaced by the mailbox's user)`);
    if (typeof o.tokenCommand === 'string') {
      try {
        splitCommand(o.tokenCommand);
      } catch (err) {
        throw fail(`${at('oauth')}: ${name}.oauth.tokenCommand: ${(err as Error).message} (the command is run without a shell: words, '...' and "..." only)`);
      }
    }
    oauth = typeof o.tokenCommand === 'string' ? { tokenCommand: o.tokenCommand } : typeof o.credentials === 'string' ? { credentials: o.credentials } : { tokenFile: o.tokenFile as string };
  }
  return {
    protocol: m[1] as 'imap' | 'imaps',
    ...(preset ? { preset } : {}),
    ...(oauth ? { oauth } : {}),
    host: m[2]!.replace(/^\[|\]$/g, ''),
    port,
    tlsInsecure: value.tlsInsecure === true,
    allowPlaintext: value.allowPlaintext === true,
    ...limits,
    ...(master ? { master } : {}),
  };
}

/** The `notify:` part: checked here with line and field; its secrets are resolved when the batch starts. */
function notifySection(node: Node | undefined, where: Where, warnings: string[]): NotifySettings | undefined {
  if (!node) return undefined;
  if (!isMap(node)) throw fail(`${where(node)}: notify must be a mapping with email and/or webhook`);
  const child = (n: Node | undefined, key: string) => (n && isMap(n) ? ((n.get(key, true) as Node | undefined) ?? n) : n);
  const value = node.toJSON() as Record<string, unknown>;
  for (const key of Object.keys(value)) if (key !== 'email' && key !== 'webhook') throw fail(`${where(child(node, key))}: unknown field notify.${key} (known: email, webhook)`);
  const out: NotifySettings = {};
  const emailNode = child(node, 'email');
  if (value.email !== undefined) {
    const e = value.email as Record<string, unknown>;
    if (!isMap(emailNode)) throw fail(`${where(emailNode)}: notify.email must be a mapping with to (and from, smtp, password)`);
    const at = (key: string) => where(child(emailNode, key));
    for (const key of Object.keys(e)) if (!['to', 'from', 'smtp', 'password'].includes(key)) throw fail(`${at(key)}: unknown field notify.email.${key}`);
    const to = typeof e.to === 'string' ? [e.to] : e.to;
    if (!Array.isArray(to) || to.length === 0 || to.some((x) => typeof x !== 'string')) throw fail(`${at('to')}: notify.email.to must be an address or a list of addresses`);
    for (const a of to as string[]) {
      const bad = checkAddress(a);
      if (bad) throw fail(`${at('to')}: notify.email.to: ${bad}`);
    }
    if (e.from !== undefined && (typeof e.from !== 'string' || checkAddress(e.from))) throw fail(`${at('from')}: notify.email.from must be an e-mail address`);
    if (e.smtp !== undefined) {
      const smtp = typeof e.smtp === 'string' ? parseSmtpUrl(e.smtp) : 'notify.email.smtp must be a string';
      if (typeof smtp === 'string') throw fail(`${at('smtp')}: notify.email.smtp: ${smtp}`);
    }
    if (e.password !== undefined && (typeof e.password !== 'string' || !e.password)) throw fail(`${at('password')}: notify.email.password must be a reference such as env:NAME or file:PATH`);
    if (typeof e.password === 'string' && !isReference(e.password)) warnings.push(`${at('password')}: notify.email.password is written in the file; use env:NAME or file:PATH so that the password is not kept in the configuration`);
    out.email = { to: to as string[], ...(typeof e.from === 'string' ? { from: e.from } : {}), ...(typeof e.smtp === 'string' ? { smtp: e.smtp } : {}), ...(typeof e.password === 'string' ? { password: e.password } : {}) };
  }
  if (value.webhook !== undefined) {
    const wn = child(node, 'webhook');
    // One webhook (a mapping) or several (a list of mappings).
    const nodes = isSeq(wn) ? (wn.items as Node[]) : [wn];
    const values = Array.isArray(value.webhook) ? (value.webhook as unknown[]) : [value.webhook];
    out.webhooks = values.map((v, i) => {
      const n = nodes[i];
      const w = v as Record<string, unknown>;
      const at = (key: string) => where(child(n, key));
      if (!isMap(n)) throw fail(`${where(n)}: notify.webhook must be a mapping with url (and header), or a list of them`);
      for (const key of Object.keys(w)) if (key !== 'url' && key !== 'header') throw fail(`${at(key)}: unknown field notify.webhook.${key} (known: url, header)`);
      const bad = typeof w.url === 'string' ? checkWebhookUrl(w.url) : 'notify.webhook.url is missing';
      if (bad) throw fail(`${at('url')}: notify.webhook.url: ${bad}`);
      const h = w.header;
      if (h !== undefined && (typeof h !== 'object' || h === null || Array.isArray(h) || Object.entries(h).some(([k, x]) => typeof x !== 'string' || !/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/.test(k)))) {
        throw fail(`${at('header')}: notify.webhook.header must map header names to values (a secret as env:NAME or file:PATH)`);
      }
      return { url: w.url as string, ...(h ? { header: h as Record<string, string> } : {}) };
    });
  }
  return out;
}

/** A size such as 500M (binary units), or undefined. */
function sizeOf(v: string): number | undefined {
  try {
    return parseSize('size')(v);
  } catch {
    return undefined;
  }
}

function fail(message: string): MigrateError {
  return new MigrateError(ERROR_CODES.BATCH_CONFIG, message, { scope: 'config' });
}
