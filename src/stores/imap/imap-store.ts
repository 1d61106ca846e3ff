/**
 * {@link MailStore} over one imapflow connection.
 *
 * Names are encoded and decoded here and nowhere else: the rest of the program sees paths as
 * segments. Every failure leaves this module as a MigrateError with the server's own words.
 */
import { ImapFlow, type ImapFlowOptions, type ListResponse } from 'imapflow';
import { encodePath } from 'imapflow/lib/tools.js';
import type { Logger } from 'pino';
import { ERROR_CODES, MigrateError } from '../../core/errors.js';
import { isLoopbackHost, type Credentials, type Endpoint, type EndpointSecurity } from '../../core/endpoint.js';
import { parseServerName, toServerName, type NameSpace } from '../../core/mailbox-path.js';
import type { AppendItem, AppendOutcome, FetchOutcome, FolderInfo, FolderListing, FolderStatus, MailStore, MessageListing, StoreCaps } from '../mail-store.js';
import { commandError, connectError, isConnectionLoss, isHalfOpen, serverText } from './imap-errors.js';
import { multiAppend } from './multiappend.js';
import { IMAP_RESERVED_NAMES } from './reserved-names.js';
import { packUids } from './uid-set.js';
import { ResponseLog } from './response-log.js';
import { sleep } from '../../core/sleep.js';
import { hasKeyword } from '../../core/flags.js';
import { PRE_LOGIN_LIMITS, SESSION_LIMITS, applyLimits, isOversize, withSynchronizingLiterals } from './wire-limits.js';
import { Keepalive } from './keepalive.js';
import { existingUids, fetchBodies } from './bodies.js';
import { listFlags, listMessages, listUids } from './listing.js';
import { searchUids } from './search.js';
import type { ImapSession } from './session.js';

/** Options for one IMAP connection. */
export interface ImapStoreOptions {
  endpoint: Endpoint;
  credentials: Credentials;
  security: EndpointSecurity;
  side: 'source' | 'destination';
  /** Seconds to wait for TCP connect and the greeting (default 20). */
  connectTimeoutSeconds?: number;
  /** Seconds of silence on an open connection before it is given up (default 300). */
  socketTimeoutSeconds?: number;
  /** Substitute for a separator character inside a folder name (default '_'). */
  separatorSubstitute?: string;
  logger?: Logger | undefined;
}

/** One authenticated IMAP connection used as a mail store. */
export class ImapStore implements MailStore, ImapSession {
  private client: ImapFlow | undefined;
  private ns: NameSpace = { prefix: '', delimiter: '/' };
  private readonly opts: ImapStoreOptions;
  /** Last asynchronous error imapflow emitted (socket errors arrive as events). */
  private lastError: unknown;
  /** Server lines imapflow could not parse (see response-log.ts). */
  /** @internal (ImapSession) */
  readonly responses: ResponseLog;
  /** NOOPs while this connection waits for the other side (a slow listing there must not time it out). */
  private readonly keepalive: Keepalive;

  constructor(opts: ImapStoreOptions) {
    this.opts = opts;
    this.responses = new ResponseLog(opts.logger?.child({ component: 'imapflow', side: opts.side }));
    this.keepalive = new Keepalive(Math.max(1000, ((opts.socketTimeoutSeconds ?? 300) * 1000) / 3));
  }

  async connect(signal?: AbortSignal): Promise<void> {
    const tokens = this.opts.credentials.accessToken;
    if (!tokens) return this.connectWith(undefined, signal);
    try {
      await this.connectWith(await tokens(false), signal);
    } catch (err) {
      // A refused token has usually expired: get a fresh one (read the file again, run the
      // command again) and try once more.
      if (!(err instanceof MigrateError) || err.code !== ERROR_CODES.AUTH_FAILED) throw err;
      this.opts.logger?.info({ side: this.opts.side }, 'access token refused; getting a fresh one');
      await this.connectWith(await tokens(true), signal);
    }
  }

  /** One connection attempt, with the password or with `accessToken` (XOAUTH2/OAUTHBEARER). */
  private async connectWith(accessToken: string | undefined, signal?: AbortSignal): Promise<void> {
    const { endpoint, credentials, security } = this.opts;
    const loopback = isLoopbackHost(endpoint.host);
    // imap:// upgrades with STARTTLS when offered. To a host that is not loopback a password may
    // only travel encrypted, so STARTTLS becomes mandatory unless the user allowed plaintext.
    const requireStartTls = endpoint.protocol === 'imap' && !loopback && !security.allowPlaintext;
    const timeout = (this.opts.connectTimeoutSeconds ?? 20) * 1000;
    const options: ImapFlowOptions = {
      host: endpoint.host,
      port: endpoint.port,
      secure: endpoint.protocol === 'imaps',
      auth: accessToken
        ? { user: endpoint.user, accessToken }
        : credentials.authzid
          ? { user: endpoint.user, pass: credentials.password, authzid: credentials.authzid, loginMethod: 'AUTH=PLAIN' }
          : { user: endpoint.user, pass: credentials.password },
      tls: { rejectUnauthorized: !security.tlsInsecure },
      logger: this.responses.logger as unknown as ImapFlowOptions['logger'],
      connectionTimeout: timeout,
      greetingTimeout: timeout,
      socketTimeout: (this.opts.socketTimeoutSeconds ?? 300) * 1000,
      disableAutoIdle: true,
      clientInfo: { name: 'mailmover' },
      ...PRE_LOGIN_LIMITS,
    };
    if (endpoint.protocol === 'imap') options.doSTARTTLS = requireStartTls ? true : undefined;
    const client = new ImapFlow(options);
    client.on('error', (err: unknown) => {
      this.lastError = err;
    });
    const onAbort = () => void client.close();
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      await client.connect();
    } catch (err) {
      client.close();
      // Our own close() on Ctrl-C surfaces as "Unexpected close" (a TLS or connect error): it is the abort.
      if (signal?.aborted) throw signal.reason instanceof MigrateError ? signal.reason : new MigrateError(ERROR_CODES.ABORTED, `Stopped while connecting to the ${this.opts.side}.`, { scope: 'mailbox', cause: err });
      // A certificate problem during a required STARTTLS is MM-TLS-CERT, never "no STARTTLS".
      throw connectError(err, endpoint, this.opts.side, { requireStartTls });
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
    if (!requireStartTls && endpoint.protocol === 'imap' && !loopback && !client.secureConnection) {
      this.opts.logger?.warn({ side: this.opts.side }, 'password sent without TLS (--allow-plaintext)');
    }
    applyLimits(client, SESSION_LIMITS);
    this.client = client;
    this.keepalive.start(client);
    const ns = client.namespace as { prefix?: string; delimiter?: string | null } | undefined;
    this.ns = { prefix: ns?.prefix ?? '', delimiter: ns?.delimiter ?? '' };
  }

  /** @internal (ImapSession) */
  get side(): 'source' | 'destination' {
    return this.opts.side;
  }

  /** @internal (ImapSession) */
  abandon(reason: Error & { code: string }): void {
    this.lastError = reason;
    this.keepalive.stop();
    this.client?.close();
  }

  /** @internal (ImapSession) */
  get conn(): ImapFlow {
    if (!this.client || !this.client.usable) {
      throw new MigrateError(ERROR_CODES.CONNECTION_LOST, `The ${this.opts.side} connection is closed${this.lastError ? ` (${describe(this.lastError)})` : ''}.`, {
        scope: 'folder',
        retry: 'now',
      });
    }
    return this.client;
  }

  caps(): StoreCaps {
    const caps = this.conn.capabilities as Map<string, boolean | number>;
    const limit = caps.get('APPENDLIMIT');
    return {
      multiAppend: caps.has('MULTIAPPEND'),
      appendUid: caps.has('UIDPLUS'),
      appendLimit: typeof limit === 'number' ? limit : undefined,
      literalPlus: caps.has('LITERAL+'),
      reservedNames: IMAP_RESERVED_NAMES,
      // Unknown before a folder exists: a Dovecot with mbox storage marks a mail file \NoInferiors
      // only once it is there, and says nothing for a name not yet created (see README, mbox).
      mailOrChildren: false,
      search: true,
    };
  }

  namespace(): NameSpace {
    return { ...this.ns };
  }

  /** The server's name for a path. */
  serverName(path: readonly string[]): string {
    return toServerName(path, this.ns, this.opts.separatorSubstitute).name;
  }

  async listFolders(options: { otherNamespaces?: boolean } = {}): Promise<FolderListing> {
    let entries: ListResponse[];
    const mark = this.responses.mark();
    const others = this.otherNamespaces();
    try {
      entries = await this.newSessionWhenHalfOpen(() => this.conn.list());
      if (options.otherNamespaces) {
        // Other users' and shared folders are not under LIST "" "*" on most servers: list each
        // namespace from its own prefix (RFC 2342 §5).
        const run = this.conn as unknown as { run(c: string, ...a: unknown[]): Promise<ListResponse[]> };
        for (const ns of others) entries.push(...((await this.outsidePersonal(() => run.run('LIST', ns.prefix, '*', { listOnly: true }))) ?? []));
      }
    } catch (err) {
      throw commandError(ERROR_CODES.LIST_FAILED, 'mailbox', `Listing the ${this.opts.side} folders failed`, err);
    }
    const out: FolderInfo[] = [];
    const seen = new Set<string>();
    for (const e of entries) {
      if (seen.has(e.path)) continue;
      seen.add(e.path);
      const delimiter = e.delimiter ?? '';
      const personal = parseServerName(e.path, delimiter, this.ns);
      const outside = personal ? undefined : outsidePath(e.path, delimiter, others);
      const flags = [...e.flags].map((f) => f.toLowerCase());
      out.push({
        path: personal ?? outside!,
        ...(personal ? {} : { outside: true }),
        name: e.path,
        delimiter,
        noSelect: flags.includes('\\noselect') || flags.includes('\\nonexistent'),
        subscribed: !!e.subscribed,
        specialUse: specialUseAttribute(e.flags) ?? (e.specialUseSource === 'extension' ? e.specialUse : undefined),
      });
    }
    // A LIST line imapflow could not parse is a folder we cannot name: report it, raw.
    const unreadable = this.responses.since(mark).filter((line) => /^\*\s+(X?LIST|LSUB)\b/i.test(line));
    return { folders: out, unreadable, otherNamespaces: others.map((ns) => ns.prefix) };
  }

  /**
   * Runs `command`; when the session turns out half-open ("User is authenticated but not
   * connected.", Exchange Online), logs in again on a new connection and runs it there, at most
   * twice. (Folder work gets the same through CONNECTION_LOST and the copy engine's reconnect.)
   */
  private async newSessionWhenHalfOpen<T>(command: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await command();
      } catch (err) {
        if (attempt > 2 || !isHalfOpen(serverText(err))) throw err;
        this.opts.logger?.info({ side: this.opts.side }, 'half-open session (authenticated but not connected); logging in again');
        this.abandon(Object.assign(new Error('half-open session'), { code: 'EHALFOPEN' }));
        await this.connect();
      }
    }
  }

  /** The other users' and shared namespaces the server announced (RFC 2342), with a prefix. */
  private otherNamespaces(): NameSpace[] {
    const all = (this.client as unknown as { namespaces?: { other?: unknown; shared?: unknown } } | undefined)?.namespaces;
    const list = [all?.other, all?.shared].flatMap((n) => (Array.isArray(n) ? n : [])) as { prefix?: string; delimiter?: string | null }[];
    return list.filter((n) => typeof n.prefix === 'string' && n.prefix !== '').map((n) => ({ prefix: n.prefix!, delimiter: n.delimiter ?? '' }));
  }

  async createFolder(path: readonly string[]): Promise<{ created: boolean; name: string }> {
    const name = this.serverName(path);
    // Not imapflow's mailboxCreate: it subscribes every folder it creates, and subscriptions must
    // follow the source.
    const conn = this.conn as unknown as { exec(c: string, a: unknown[]): Promise<{ next: () => void }> };
    try {
      const res = await conn.exec('CREATE', [{ type: 'ATOM', value: encodePath(this.conn, name) }]);
      res.next();
      return { created: true, name };
    } catch (err) {
      if (/ALREADYEXISTS/i.test(serverText(err) ?? '')) return { created: false, name };
      throw commandError(ERROR_CODES.FOLDER_CREATE_FAILED, 'folder', `Creating folder "${name}" at the ${this.opts.side} failed`, err);
    }
  }

  async subscribe(path: readonly string[]): Promise<void> {
    const name = this.serverName(path);
    const ok = await this.conn.mailboxSubscribe(name);
    if (!ok) this.opts.logger?.warn({ folder: name }, 'subscribing failed');
  }

  async openFolder(path: readonly string[], readOnly: boolean, listedName?: string): Promise<FolderStatus> {
    const name = listedName ?? this.serverName(path);
    // A folder of another namespace ("#shared.team", "user.bob") is opened exactly as listed.
    const outside = !!listedName && !!this.ns.prefix && !listedName.startsWith(this.ns.prefix) && listedName.toUpperCase() !== 'INBOX';
    try {
      const open = () => this.conn.mailboxOpen(name, { readOnly });
      const box = outside ? await this.outsidePersonal(open) : await open();
      const modseq = (box as { highestModseq?: bigint | number }).highestModseq;
      return { uidValidity: BigInt(box.uidValidity), uidNext: box.uidNext, exists: box.exists, highestModseq: modseq === undefined ? undefined : BigInt(modseq) };
    } catch (err) {
      throw commandError(ERROR_CODES.FOLDER_SELECT_FAILED, 'folder', `Opening folder "${name}" at the ${this.opts.side} failed`, err);
    }
  }

  /**
   * Runs an imapflow call with the personal prefix hidden. imapflow adds the personal namespace
   * prefix to every name (and LIST reference) that lacks it, which would turn "#shared.team" into
   * "INBOX.#shared.team"; names of other namespaces must go out as listed.
   */
  private async outsidePersonal<T>(call: () => Promise<T>): Promise<T> {
    const conn = this.conn as ImapFlow & { namespace: { prefix: string; delimiter: string } };
    const saved = conn.namespace;
    conn.namespace = { ...saved, prefix: '' };
    try {
      return await call();
    } finally {
      conn.namespace = saved;
    }
  }

  async folderStatus(path: readonly string[]): Promise<FolderStatus | undefined> {
    const name = this.serverName(path);
    let st: { uidValidity?: bigint | number; uidNext?: number; messages?: number; highestModseq?: bigint | number } | false;
    // CONDSTORE: HIGHESTMODSEQ too, so that a rerun can tell that no flag changed (see list-stage.ts).
    const condstore = (this.conn.capabilities as Map<string, unknown>).has('CONDSTORE');
    try {
      st = (await this.conn.status(name, { uidValidity: true, uidNext: true, messages: true, ...(condstore ? { highestModseq: true } : {}) })) as typeof st;
    } catch (err) {
      throw commandError(ERROR_CODES.FOLDER_SELECT_FAILED, 'folder', `STATUS of "${name}" at the ${this.opts.side} failed`, err);
    }
    // imapflow answers false for a refused STATUS, and for a connection lost meanwhile.
    if (!this.client?.usable) throw new MigrateError(ERROR_CODES.CONNECTION_LOST, `The ${this.opts.side} connection was lost during STATUS of "${name}".`, { scope: 'folder', retry: 'now' });
    if (!st || st.uidValidity === undefined || st.uidNext === undefined || st.messages === undefined) return undefined;
    return { uidValidity: BigInt(st.uidValidity), uidNext: st.uidNext, exists: st.messages, ...(st.highestModseq !== undefined ? { highestModseq: BigInt(st.highestModseq) } : {}) };
  }

  async folderStatuses(folders: readonly FolderInfo[], signal?: AbortSignal): Promise<Map<string, FolderStatus>> {
    const out = new Map<string, FolderStatus>();
    const caps = this.conn.capabilities as Map<string, unknown>;
    // HIGHESTMODSEQ with CONDSTORE: a rerun then tells a quiet folder without selecting it (copy/quiet-stage.ts).
    const query = { messages: true, uidNext: true, uidValidity: true, ...(caps.has('STATUS=SIZE') ? { size: true } : {}), ...(caps.has('CONDSTORE') ? { highestModseq: true } : {}) };
    type Raw = { messages?: number; uidNext?: number; uidValidity?: bigint | number; size?: number; highestModseq?: bigint | number; error?: unknown } | false | undefined;
    const keep = (name: string, st: Raw) => {
      if (!st || st.error !== undefined || st.messages === undefined || st.uidValidity === undefined) return;
      out.set(name, {
        uidValidity: BigInt(st.uidValidity),
        uidNext: st.uidNext,
        exists: st.messages,
        ...(st.size !== undefined ? { bytes: st.size } : {}),
        ...(st.highestModseq !== undefined ? { highestModseq: BigInt(st.highestModseq) } : {}),
      });
    };
    // LIST-STATUS (RFC 5819): the whole personal tree's counts in one command.
    if (caps.has('LIST-STATUS')) {
      try {
        for (const e of await this.conn.list({ statusQuery: query })) keep(e.path, e.status as Raw);
      } catch (err) {
        this.opts.logger?.warn({ side: this.opts.side, err: (err as Error).message }, 'LIST-STATUS failed; asking STATUS folder by folder');
      }
    }
    // Without it (or for folders it left out, such as other namespaces): one STATUS each.
    for (const f of folders) {
      if (f.noSelect || out.has(f.name)) continue;
      signal?.throwIfAborted();
      if (!this.client?.usable) break;
      try {
        const ask = () => this.conn.status(f.name, query);
        // A folder of another namespace is asked for exactly as listed (as openFolder does).
        const outside = !!this.ns.prefix && !f.name.startsWith(this.ns.prefix) && f.name.toUpperCase() !== 'INBOX';
        keep(f.name, (outside ? await this.outsidePersonal(ask) : await ask()) as Raw);
      } catch {
        // A folder that will not say is planned without a count; its listing will tell.
      }
    }
    return out;
  }

  async setFlags(path: readonly string[], items: readonly { uid: number; flags: string[] }[]): Promise<void> {
    if (items.length === 0) return;
    const name = this.serverName(path);
    await this.openFolder(path, false);
    // One STORE per distinct set of flags ("mark all as read" at the source is one command here).
    const groups = new Map<string, { flags: string[]; uids: number[] }>();
    for (const item of items) {
      const key = [...item.flags].sort().join(' ');
      const g = groups.get(key) ?? { flags: item.flags, uids: [] };
      g.uids.push(item.uid);
      groups.set(key, g);
    }
    try {
      for (const g of groups.values()) {
        try {
          // An empty list clears every flag; FLAGS.SILENT via imapflow's messageFlagsSet.
          await this.conn.messageFlagsSet(packUids(g.uids), g.flags, { uid: true });
        } catch (err) {
          this.throwIfFatal(err, undefined, (e) => commandError(ERROR_CODES.FOLDER_FAILED, 'folder', `Setting flags in "${name}" failed`, e));
          this.opts.logger?.warn({ folder: name, uids: g.uids.length, err: serverText(err) ?? String(err) }, 'flags not updated');
        }
      }
    } finally {
      await this.leaveWithoutExpunge(path);
    }
  }

  /**
   * Leaves a folder selected read-write without expunging: CLOSE would remove every message
   * marked \\Deleted, including ones copied with that flag on purpose. Selecting the folder
   * read-only first leaves the read-write selection without expunging (RFC 3501 §6.3.1), and a
   * CLOSE of a read-only folder expunges nothing (§6.4.2). (UNSELECT would do it in one step, but
   * imapflow only offers it through its internals.)
   */
  private async leaveWithoutExpunge(path: readonly string[], listedName?: string): Promise<void> {
    if (!this.client?.usable || !this.client.mailbox) return;
    try {
      await this.openFolder(path, true, listedName);
      await this.conn.mailboxClose();
    } catch {
      // Best effort: the next SELECT or the logout leaves the folder without expunging as well.
    }
  }

  async deleteMessages(path: readonly string[], uids: readonly number[], listedName?: string): Promise<void> {
    if (uids.length === 0) return;
    const name = listedName ?? this.serverName(path);
    if (!this.caps().appendUid) {
      throw new MigrateError(ERROR_CODES.FOLDER_FAILED, `The ${this.opts.side} has no UIDPLUS: messages cannot be removed one by one without removing others marked \\Deleted, so "${name}" was left as it is`, { scope: 'folder' });
    }
    await this.openFolder(path, false, listedName);
    try {
      const ok = await this.conn.messageDelete(packUids([...uids]), { uid: true });
      if (!ok) throw new MigrateError(ERROR_CODES.FOLDER_FAILED, `Removing ${uids.length} message(s) from "${name}" at the ${this.opts.side} was refused`, { scope: 'folder' });
    } catch (err) {
      this.throwIfFatal(err, undefined, (e) => commandError(ERROR_CODES.FOLDER_FAILED, 'folder', `Removing messages from "${name}" failed`, e));
      throw commandError(ERROR_CODES.FOLDER_FAILED, 'folder', `Removing messages from "${name}" at the ${this.opts.side} failed`, err);
    } finally {
      await this.leaveWithoutExpunge(path, listedName);
    }
  }

  async closeFolder(): Promise<void> {
    if (this.client?.mailbox) await this.conn.mailboxClose();
  }

  listFlags(signal?: AbortSignal, options: { changedSince?: bigint } = {}): Promise<{ uid: number; flags: string[] }[]> {
    return listFlags(this, signal, options);
  }

  listUids(signal?: AbortSignal): Promise<number[]> {
    return listUids(this, signal);
  }

  listMessages(signal?: AbortSignal, options: { sinceUid?: number; uids?: readonly number[] } = {}): Promise<MessageListing> {
    return listMessages(this, signal, options);
  }

  /**
   * Rethrows what must end the folder rather than one message: an abort, or a lost connection
   * (wrapped by `wrap`). Anything else is the message's own failure and is left to the caller.
   */
  /** @internal (ImapSession) */
  throwIfFatal(err: unknown, signal: AbortSignal | undefined, wrap: (err: unknown) => MigrateError): void {
    if (signal?.aborted) throw signal.reason;
    if (isConnectionLoss(err) || !this.client?.usable) {
      // More bytes than allowed: the connection was closed by us, and asking again would get the
      // same answer. Said as what happened, not as a lost connection.
      const oversize = isOversize(err) ? err : isOversize(this.lastError) ? this.lastError : undefined;
      if (oversize) {
        const what = oversize.code === 'LiteralTooLarge' ? `a literal of ${oversize.literalSize ?? 'too many'} bytes` : `an answer longer than ${oversize.maxSize} bytes`;
        throw new MigrateError(ERROR_CODES.RESPONSE_TOO_LARGE, `The ${this.opts.side} sent ${what}, more than this command can need (limit ${oversize.maxSize} bytes); the connection was closed`, {
          scope: 'folder',
          retry: 'never',
          cause: err,
        });
      }
      const e = wrap(err);
      // The connection is gone whatever the error said (a NO and then BYE): the outcome of the
      // command is unknown, and the caller must treat it as a lost connection.
      if (e.code === ERROR_CODES.CONNECTION_LOST) throw e;
      const silent = (err as { code?: string })?.code === 'ETIMEOUT';
      const late = (this.lastError as { code?: string })?.code === 'EDEADLINE';
      const how = late
        ? (this.lastError as Error).message
        : silent
          ? `the ${this.opts.side} sent nothing for ${this.opts.socketTimeoutSeconds ?? 300} s (--idle-timeout)`
          : `the ${this.opts.side} closed the connection`;
      throw new MigrateError(ERROR_CODES.CONNECTION_LOST, `${e.message} (${how})`, {
        scope: 'folder',
        retry: 'now',
        cause: err,
        ...(e.serverResponse ? { serverResponse: e.serverResponse } : {}),
      });
    }
  }

  /** @internal (ImapSession) */
  listError(path: string, err: unknown): MigrateError {
    return commandError(ERROR_CODES.FOLDER_FAILED, 'folder', `Listing messages of "${path}" at the ${this.opts.side} failed`, err);
  }

  fetchBodies(uids: readonly number[], signal?: AbortSignal, options: { maxBytes?: number } = {}): AsyncIterable<FetchOutcome> {
    return fetchBodies(this, uids, signal, options);
  }

  existingUids(uids: readonly number[], signal?: AbortSignal): Promise<Set<number>> {
    return existingUids(this, uids, signal);
  }

  searchUids(keys: string, signal?: AbortSignal): Promise<number[]> {
    return searchUids(this, keys, signal);
  }

  async appendBatch(path: readonly string[], items: readonly AppendItem[]): Promise<AppendOutcome[]> {
    const name = this.serverName(path);
    const caps = this.caps();
    const out: (AppendOutcome | undefined)[] = items.map((item) =>
      caps.appendLimit !== undefined && item.body.length > caps.appendLimit
        ? { ok: false, error: new MigrateError(ERROR_CODES.MESSAGE_TOO_LARGE, `Message of ${item.body.length} bytes exceeds the destination's APPENDLIMIT of ${caps.appendLimit}`, { scope: 'message' }) }
        : undefined,
    );
    // Messages with NUL bytes need literal8 (RFC 3516), which imapflow's single APPEND handles.
    const multi = items.map((item, i) => ({ item, i })).filter(({ item, i }) => out[i] === undefined && !item.body.includes(0));
    // A command that carries keywords waits for "+" before each message (see wire-limits.ts).
    const synchronizing = (batch: readonly AppendItem[]) => batch.some((item) => hasKeyword(item.flags));
    const nonSync = (batch: readonly AppendItem[]) => !synchronizing(batch) && (this.conn.capabilities as Map<string, unknown>).has('LITERAL+');
    const guarded = <T>(batch: readonly AppendItem[], send: () => Promise<T>) => (synchronizing(batch) ? withSynchronizingLiterals(this.conn, send) : send());
    if (caps.multiAppend && multi.length > 1) {
      const batch = multi.map((m) => m.item);
      try {
        const res = await multiAppend(this.conn, name, batch, { nonSync: nonSync(batch) });
        multi.forEach(({ i }, k) => (out[i] = { ok: true, uid: res.uids?.[k] }));
      } catch (err) {
        if (nonSync(batch)) this.dropAfterBad(err);
        this.throwIfFatal(err, undefined, (e) => commandError(ERROR_CODES.APPEND_FAILED, 'folder', `Appending to "${name}" failed`, e));
        const e = commandError(ERROR_CODES.APPEND_FAILED, 'message', `The destination refused the messages`, err);
        // Out of quota: every further message would be refused too.
        if (e.scope === 'mailbox') throw e;
        // MULTIAPPEND is atomic (RFC 3502): nothing was stored. Retry one by one below so that a
        // single refused message does not cost the others.
      }
    }
    for (let i = 0; i < items.length; i++) {
      if (out[i] !== undefined) continue;
      const item = items[i]!;
      const nul = item.body.includes(0);
      try {
        // One message: its literal is synchronizing, so nothing but the command line precedes the server's "+".
        const uid = nul ? await guarded([item], async () => { const r = await this.conn.append(name, item.body, item.flags, item.internalDate); return r && typeof r === 'object' ? r.uid : undefined; }) : (await multiAppend(this.conn, name, [item])).uids?.[0];
        out[i] = { ok: true, uid };
      } catch (err) {
        if (nul && !synchronizing([item])) this.dropAfterBad(err);
        this.throwIfFatal(err, undefined, (e) => commandError(ERROR_CODES.APPEND_FAILED, 'folder', `Appending to "${name}" failed`, e));
        const e = commandError(ERROR_CODES.APPEND_FAILED, 'message', `The destination refused the message`, err);
        if (e.scope === 'mailbox') throw e;
        out[i] = { ok: false, error: e };
      }
    }
    return out as AppendOutcome[];
  }

  /**
   * A BAD to an APPEND sent with non-synchronizing literals: the server did not take the command
   * line, and whatever message bytes were already on their way may be read as commands. The
   * connection is closed at once so that nothing more is read from it; the engine reconnects and
   * asks the folder what arrived. (Flags are checked before they are sent and commands with
   * keywords wait for "+", so this is the last line of defence, not the first.)
   */
  private dropAfterBad(err: unknown): void {
    if ((err as { responseStatus?: string })?.responseStatus !== 'BAD') return;
    this.opts.logger?.warn({ side: this.opts.side, err: serverText(err) }, 'APPEND answered BAD: closing the connection');
    this.keepalive.stop();
    this.client?.close();
  }

  async waitForChange(path: readonly string[], timeoutMs: number, signal?: AbortSignal, sinceUidNext?: number): Promise<boolean> {
    const status = await this.openFolder(path, true);
    if (sinceUidNext !== undefined && status.uidNext !== undefined && status.uidNext > sinceUidNext) return true;
    // An abort that came while the folder was being selected: no event will say so again.
    if (signal?.aborted) return false;
    const conn = this.conn;
    if (!(conn.capabilities as Map<string, unknown>).has('IDLE')) {
      // An abort only ends the wait early.
      await sleep(timeoutMs, signal).catch(() => undefined);
      return false;
    }
    return new Promise<boolean>((resolve) => {
      let done = false;
      const finish = (changed: boolean) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        conn.off('exists', onChange);
        conn.off('expunge', onChange);
        signal?.removeEventListener('abort', onAbort);
        // Any command ends the IDLE (imapflow sends DONE first).
        if (conn.usable) conn.noop().catch(() => undefined);
        resolve(changed);
      };
      const onChange = () => finish(true);
      const onAbort = () => finish(false);
      const timer = setTimeout(() => finish(false), timeoutMs);
      conn.on('exists', onChange);
      conn.on('expunge', onChange);
      signal?.addEventListener('abort', onAbort, { once: true });
      conn.idle().catch(() => finish(false));
    });
  }

  isUsable(): boolean {
    return !!this.client?.usable;
  }

  async close(): Promise<void> {
    this.keepalive.stop();
    const client = this.client;
    this.client = undefined;
    if (!client) return;
    try {
      if (client.usable) await client.logout();
    } catch {
      // Best effort: a connection we are done with may already be gone.
    } finally {
      client.close();
    }
  }
}


/**
 * The RFC 6154 attribute among a LIST line's flags, read case-insensitively and whether or not
 * the server advertises SPECIAL-USE: Exchange puts \Sent on plain LIST lines without the
 * capability (RFC 6154 §2 allows it), and attribute names are case-insensitive. imapflow only
 * trusts them with the capability and in one spelling, and its name guesses are not the server's
 * word, so the store reads the flags itself.
 */
const SPECIAL_USE_ATTRIBUTES = ['\\All', '\\Archive', '\\Drafts', '\\Flagged', '\\Junk', '\\Sent', '\\Trash', '\\Important'];
/**
 * Levels of a folder outside the personal namespace: the namespace's name first ("#shared",
 * "user"), then the rest split on the separator, so that it keeps its place below that name.
 */
function outsidePath(name: string, delimiter: string, others: readonly NameSpace[]): string[] {
  const ns = others.find((n) => name.startsWith(n.prefix));
  if (!ns) return [name];
  const label = ns.delimiter && ns.prefix.endsWith(ns.delimiter) ? ns.prefix.slice(0, -ns.delimiter.length) : ns.prefix;
  const rest = name.slice(ns.prefix.length);
  return [label, ...(rest ? (delimiter ? rest.split(delimiter) : [rest]) : [])];
}

function specialUseAttribute(flags: Iterable<string>): string | undefined {
  for (const flag of flags) {
    const match = SPECIAL_USE_ATTRIBUTES.find((a) => a.toLowerCase() === flag.toLowerCase());
    if (match) return match;
  }
  return undefined;
}



function describe(err: unknown): string {
  const e = err as { code?: string; message?: string };
  return e?.code ?? e?.message ?? String(err);
}
