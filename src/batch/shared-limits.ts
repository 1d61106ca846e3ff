/**
 * A server's limits counted across every worker of a queue, in PostgreSQL (the queue's own
 * database): the {@link SharedLimits} a {@link ServerGate} consults after its process-local checks.
 * One {@link SharedLimitsHub} per worker process; `hub.limitsFor(serverKey, limits)` gives the
 * shared limits of one server.
 *
 * **Connection slots** are session-level advisory locks, `pg_advisory_lock(classid, slot)`:
 * classid is {@link slotLockKey}(serverKey), a stable 32-bit hash computed here (the same in every
 * process and on every PostgreSQL version), slot is 0 .. maxConnections-1. Holding slot N means
 * holding that lock. All of a hub's slot locks live on ONE dedicated connection (a `pg.Client`,
 * not a pool: session locks belong to the session that took them), so a worker that dies, is
 * killed or loses the network loses that session and its slots free themselves; nobody has to
 * clean up after it. Advisory locks are re-entrant within a session, so the hub remembers which
 * slots it holds and never asks for those again. Taking a slot: the locks taken on the server key
 * are read from `pg_locks`, then the free slots are tried with `pg_try_advisory_lock` until one
 * is got (another worker may win the race for one). Waiting acquisitions queue up per server in
 * arrival order and are retried every `pollMs` (default 250 ms, ±25 % jitter so that workers do
 * not poll in lock-step); an aborted one leaves the queue and rejects with the signal's reason.
 * There is no fairness between processes beyond that: to give others a chance, a process that
 * has just given a slot back waits for a poll before taking one again on that server.
 * Queries on the lock connection run one at a time (a promise chain), so the hub's view of what it
 * holds is always the session's. Any error on that connection ends the session (a query that
 * failed half way may have taken a lock we do not know of; ending the session frees it) and the
 * slots held are then *lost*: still counted as in use here, but free for other workers until a new
 * session takes them again. The hub opens a new session at once when it holds slots, and on the
 * next request otherwise, and re-takes the lost slots it can; one another worker took meanwhile
 * stays over the cap until given back (a short overshoot after a database outage, never a
 * deadlock). Giving a slot back never fails: a slot of a lost session is already free.
 *
 * **Rates** (messages and bytes per second) are a leaky bucket like ServerGate's own, kept in the
 * table `mailmover_state.server_clock` (one row per server key: when the message and byte
 * "clocks" run out, and until when a throttling pause holds everyone back), in milliseconds since
 * the epoch by the DATABASE's clock, so clock skew between machines does not matter. A booking is
 * one statement (an upsert) that advances the clocks by the work's cost at the limit's pace,
 * starting no earlier than now and than the pause, and returns how long to wait for its turn.
 * `pauseFor(ms)` moves the pause's end later (never earlier). The schema and table are created on
 * first use, under a transaction-level advisory lock so that many workers starting together on a
 * fresh database do not trip over each other (and only when missing: a user without the right to
 * create a schema can use one an administrator created). These statements go through a small
 * `pg.Pool`, apart from the lock connection, so a booking never waits behind a slot poll.
 * ServerGate books only when a rate is set, so with no rate configured a throttling pause is not
 * shared: it holds back the process that met it only (book() itself always honours the pause).
 *
 * Limits: all workers must use the same database (advisory locks are per database) and connect to
 * it directly or through a pooler in session mode (a transaction-mode pooler breaks session
 * locks). Server keys are stored in the table as given: keep secrets out of them. Each process
 * uses its own idea of a server's limits; workers are expected to share one configuration. Errors
 * (the database cannot be reached, a statement fails, the hub is closed) are {@link MigrateError}s
 * with code MM-QUEUE and scope `config`, with any password in the connection string masked.
 */
import { createHash } from 'node:crypto';
import pg from 'pg';
import { ERROR_CODES, MigrateError } from '../core/errors.js';
import { MAX_SUGGESTED_MS, type ServerLimits, type SharedLimits } from '../copy/retry-policy.js';
import { maskUrl as masked } from '../state/store.js';

/** Options of {@link SharedLimitsHub}. */
export interface SharedLimitsHubOptions {
  /** How often a waiting acquisition looks for a free slot again (default 250 ms). */
  pollMs?: number;
}

/** The default of {@link SharedLimitsHubOptions.pollMs}. */
export const DEFAULT_POLL_MS = 250;

/** How long connecting, and any one statement, may take before the attempt counts as failed. */
const CONNECT_TIMEOUT_MS = 10_000;
const QUERY_TIMEOUT_MS = 30_000;
/** Delay before a lost lock session holding slots is opened again. */
const REVIVE_MS = 1000;
/** Shown in pg_stat_activity unless the connection string names an application. */
const APP_NAME = 'mailmover-limits';
/** SQLSTATEs of objects created by someone else at the same moment (or a deadlock doing so). */
const RACING = new Set(['42P06', '42P07', '23505', '40P01', '42710']);

/** The database's clock, in milliseconds since the epoch. */
const NOW_MS = `(extract(epoch FROM clock_timestamp()) * 1000)::float8`;

const SETUP_SQL = [
  'CREATE SCHEMA IF NOT EXISTS mailmover_state',
  `CREATE TABLE IF NOT EXISTS mailmover_state.server_clock (
     server text PRIMARY KEY,
     message_clock double precision NOT NULL DEFAULT 0,
     byte_clock double precision NOT NULL DEFAULT 0,
     paused_until double precision NOT NULL DEFAULT 0
   )`,
];

/**
 * Books work: $1 server, $2 milliseconds the messages cost at the message rate, $3 the bytes at
 * the byte rate (NULL when that rate is not set: its clock stays). A clock restarts from now, or
 * from the end of a pause, when it ran out. Returns the milliseconds to wait for the work's turn.
 */
const BOOK_SQL = `
WITH n AS (SELECT ${NOW_MS} AS t)
INSERT INTO mailmover_state.server_clock AS c (server, message_clock, byte_clock)
SELECT $1, n.t + coalesce($2::float8, 0), n.t + coalesce($3::float8, 0) FROM n
ON CONFLICT (server) DO UPDATE SET
  message_clock = CASE WHEN $2::float8 IS NULL THEN c.message_clock
                       ELSE greatest((SELECT t FROM n), c.paused_until, c.message_clock) + $2::float8 END,
  byte_clock = CASE WHEN $3::float8 IS NULL THEN c.byte_clock
                    ELSE greatest((SELECT t FROM n), c.paused_until, c.byte_clock) + $3::float8 END
RETURNING greatest(0::float8,
  c.message_clock - $2::float8 - (SELECT t FROM n),
  c.byte_clock - $3::float8 - (SELECT t FROM n),
  c.paused_until - (SELECT t FROM n)) AS wait`;

/** Holds every process back until $2 ms from now on server $1 (a later end wins). */
const PAUSE_SQL = `
WITH n AS (SELECT ${NOW_MS} AS t)
INSERT INTO mailmover_state.server_clock AS c (server, paused_until)
SELECT $1, n.t + $2::float8 FROM n
ON CONFLICT (server) DO UPDATE SET paused_until = greatest(c.paused_until, EXCLUDED.paused_until)`;

const TRY_LOCK_SQL = 'SELECT pg_try_advisory_lock($1::int4, $2::int4) AS ok';

/** Slots of classid $1 (unsigned, as pg_locks shows it) locked by any session of this database. */
const TAKEN_SQL = `
SELECT objid::int8 AS slot FROM pg_locks
WHERE locktype = 'advisory' AND objsubid = 2 AND granted AND classid = $1::oid
  AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`;

/**
 * The advisory lock class (first key of `pg_advisory_lock(int4, int4)`) of a server's connection
 * slots: a stable signed 32-bit hash of the key. In `pg_locks` it appears as `classid`, unsigned
 * (`slotLockKey(k) >>> 0`), with `objid` the slot number and `objsubid` 2.
 */
export function slotLockKey(serverKey: string): number {
  return createHash('sha256').update(`mailmover-slot\n${serverKey}`).digest().readInt32BE(0);
}

/** One session of the lock connection. */
interface Session {
  client: pg.Client;
  /** Tells apart the sessions the hub opened one after another. */
  gen: number;
  dead: boolean;
}

/** An acquisition waiting for a slot. */
interface Waiter {
  resolve: () => void;
  reject: (err: unknown) => void;
  signal: AbortSignal | undefined;
  onAbort: () => void;
}

/**
 * The shared limits of one worker process: the lock connection, the pool for rate bookings, and
 * the {@link SharedLimits} of each server. See the module comment for how they work.
 */
export class SharedLimitsHub {
  private readonly pollMs: number;
  private readonly servers = new Map<string, ServerLimitsShared>();
  /** The lock connection's queries, one after another. */
  private chain: Promise<void> = Promise.resolve();
  private session: Session | undefined;
  private sessions = 0;
  private reviveTimer: NodeJS.Timeout | undefined;
  private pool: pg.Pool | undefined;
  private setup: Promise<void> | undefined;
  private closed = false;

  /**
   * Connects lazily: nothing is opened until a slot is asked for or a rate booked.
   * @param connectionString the queue's PostgreSQL URL (`postgres://user:password@host/db`)
   */
  constructor(
    private readonly connectionString: string,
    opts: SharedLimitsHubOptions = {},
  ) {
    const poll = opts.pollMs ?? DEFAULT_POLL_MS;
    this.pollMs = Number.isFinite(poll) && poll > 0 ? poll : DEFAULT_POLL_MS;
  }

  /**
   * The shared limits of the server `serverKey` (the same object for the same key; its limits
   * become `limits`, the latest given). With no `maxConnections`, slots are not counted (acquire,
   * tryAcquire and release succeed at once); with no rate, book() only honours a shared pause.
   */
  limitsFor(serverKey: string, limits: ServerLimits): SharedLimits {
    let s = this.servers.get(serverKey);
    if (!s) this.servers.set(serverKey, (s = new ServerLimitsShared(this, serverKey, limits)));
    else s.limits = limits;
    return s;
  }

  /**
   * Gives every slot back and ends the connections. Waiting acquisitions reject; so does every
   * later call (release() excepted, which does nothing). Idempotent.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.reviveTimer);
    for (const s of this.servers.values()) s.shutdown(this.closedError());
    await this.chain;
    const session = this.session;
    this.session = undefined;
    if (session) {
      session.dead = true;
      // Ending the session frees its locks; unlock first all the same, in case a pooler keeps it.
      await session.client.query('SELECT pg_advisory_unlock_all()').catch(() => undefined);
      await session.client.end().catch(() => undefined);
    }
    await this.pool?.end().catch(() => undefined);
  }

  // ---------------------------------------------------------------------------------------------
  // For ServerLimitsShared
  // ---------------------------------------------------------------------------------------------

  /** @internal */
  get isClosed(): boolean {
    return this.closed;
  }

  /** @internal */
  get poll(): number {
    return this.pollMs;
  }

  /** @internal Runs `task` on the lock connection after the tasks before it (whatever their outcome). */
  serial<T>(task: () => Promise<T>): Promise<T> {
    const run = this.chain.then(() => {
      if (this.closed) throw this.closedError();
      return task();
    });
    this.chain = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  /** @internal The generation of the lock session now open (0: none). */
  get currentGen(): number {
    return this.session && !this.session.dead ? this.session.gen : 0;
  }

  /**
   * @internal Takes a free slot below `max` of server `classid`, not one of `held`; resolves with
   * its number and the generation of the session holding it, or undefined when all are taken.
   * Only inside {@link serial}.
   */
  async takeSlot(classid: number, max: number, held: ReadonlyMap<number, number>): Promise<{ slot: number; gen: number } | undefined> {
    const candidates: number[] = [];
    for (let i = 0; i < max; i++) if (!held.has(i)) candidates.push(i);
    if (!candidates.length) return undefined;
    const s = await this.openSession();
    const taken = new Set((await this.run<{ slot: string }>(s, TAKEN_SQL, [String(classid >>> 0)])).map((r) => Number(r.slot)));
    for (const slot of candidates) {
      if (taken.has(slot)) continue;
      const [row] = await this.run<{ ok: boolean }>(s, TRY_LOCK_SQL, [classid, slot]);
      if (row?.ok) return { slot, gen: s.gen };
    }
    return undefined;
  }

  /** @internal Unlocks a slot held by session `gen`, if that session is still open. Only inside {@link serial}; never throws. */
  async freeSlot(classid: number, slot: number, gen: number): Promise<void> {
    const s = this.session;
    // A lost session's locks are gone already; a failure ends the session, which frees the lock too.
    if (s && !s.dead && s.gen === gen) await this.run(s, 'SELECT pg_advisory_unlock($1::int4, $2::int4)', [classid, slot]).catch(() => undefined);
  }

  /** @internal Runs a rate statement through the pool (creating the table first when needed). */
  async rateQuery<R extends pg.QueryResultRow>(sql: string, params: unknown[]): Promise<R[]> {
    if (this.closed) throw this.closedError();
    try {
      const pool = this.ratePool();
      await (this.setup ??= this.createTable(pool).catch((err: unknown) => {
        this.setup = undefined; // try again next time
        throw err;
      }));
      return (await pool.query<R>(sql, params)).rows;
    } catch (err) {
      throw this.wrap(err);
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Connections
  // ---------------------------------------------------------------------------------------------

  /** A statement on lock session `s`; an error ends the session. */
  private async run<R extends pg.QueryResultRow>(s: Session, sql: string, params: unknown[]): Promise<R[]> {
    if (s.dead) throw this.wrap(new Error('the connection was lost'));
    try {
      return (await s.client.query<R>(sql, params)).rows;
    } catch (err) {
      this.drop(s);
      throw this.wrap(err);
    }
  }

  /** The lock session, opened (and the slots of a lost one taken again) when there is none. */
  private async openSession(): Promise<Session> {
    if (this.session && !this.session.dead) return this.session;
    if (this.closed) throw this.closedError();
    let client: pg.Client;
    try {
      client = new pg.Client({
        connectionString: this.connectionString,
        keepAlive: true,
        connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
        query_timeout: QUERY_TIMEOUT_MS,
        fallback_application_name: APP_NAME,
      });
    } catch (err) {
      throw this.wrap(err);
    }
    const s: Session = { client, gen: ++this.sessions, dead: false };
    client.on('error', () => this.drop(s));
    client.on('end', () => this.drop(s));
    try {
      await client.connect();
    } catch (err) {
      this.drop(s);
      throw this.wrap(err);
    }
    if (s.dead || this.closed) {
      this.drop(s);
      throw this.closed ? this.closedError() : this.wrap(new Error('the connection ended while opening'));
    }
    // Take again the slots a lost session held, where no other process took them meanwhile (the
    // session is new, so none of them is locked in it: no re-entrancy trap).
    for (const server of this.servers.values()) {
      for (const slot of server.lostSlots(s.gen)) {
        const [row] = await this.run<{ ok: boolean }>(s, TRY_LOCK_SQL, [server.classid, slot]);
        if (row?.ok) server.retaken(slot, s.gen);
      }
    }
    this.session = s;
    return s;
  }

  /** Ends a session after an error (its locks go with it); opens a new one soon if slots are held. */
  private drop(s: Session): void {
    if (s.dead) return;
    s.dead = true;
    if (this.session === s) this.session = undefined;
    s.client.end().catch(() => undefined);
    if (!this.closed && !this.reviveTimer && [...this.servers.values()].some((v) => v.holdsAny)) {
      this.reviveTimer = setTimeout(() => {
        this.reviveTimer = undefined;
        // Failures are dealt with by drop() (a new attempt) and by the next request.
        this.serial(() => this.openSession()).catch(() => undefined);
      }, REVIVE_MS);
      this.reviveTimer.unref();
    }
  }

  private ratePool(): pg.Pool {
    if (!this.pool) {
      this.pool = new pg.Pool({
        connectionString: this.connectionString,
        max: 3,
        idleTimeoutMillis: 30_000,
        connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
        query_timeout: QUERY_TIMEOUT_MS,
        fallback_application_name: APP_NAME,
      });
      this.pool.on('error', () => undefined); // an idle client's connection died: the pool replaces it
    }
    return this.pool;
  }

  /** Creates schema and table unless they exist, serialized across processes. */
  private async createTable(pool: pg.Pool): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      const client = await pool.connect();
      let broken: Error | undefined;
      try {
        const { rows } = await client.query<{ ok: boolean }>("SELECT to_regclass('mailmover_state.server_clock') IS NOT NULL AS ok");
        if (rows[0]?.ok) return;
        await client.query('BEGIN');
        try {
          await client.query("SELECT pg_advisory_xact_lock(hashtextextended('mailmover_state setup', 0))");
          for (const sql of SETUP_SQL) await client.query(sql);
          await client.query('COMMIT');
        } catch (err) {
          await client.query('ROLLBACK').catch(() => undefined);
          throw err;
        }
        return;
      } catch (err) {
        const code = (err as { code?: string }).code;
        if (!(code && RACING.has(code) && attempt < 5)) {
          broken = err as Error;
          throw err;
        }
        await new Promise((r) => setTimeout(r, 50 * attempt + Math.random() * 100));
      } finally {
        client.release(broken);
      }
    }
  }

  /** @internal */
  closedError(): MigrateError {
    return new MigrateError(ERROR_CODES.QUEUE, 'The shared server limits are closed (the worker is stopping).', { scope: 'config' });
  }

  /** An error of this module as a MigrateError, with no password in sight. */
  private wrap(err: unknown): MigrateError {
    if (err instanceof MigrateError) return err;
    const e = err as { message?: unknown; code?: unknown };
    const detail = masked(String(e?.message ?? err)) + (typeof e?.code === 'string' && e.code ? ` (${e.code})` : '');
    // Only the server's own errors are kept as the cause: others (a bad URL) may carry the connection string.
    const cause = err instanceof pg.DatabaseError ? err : undefined;
    return new MigrateError(ERROR_CODES.QUEUE, `The shared server limits at ${masked(this.connectionString)} cannot be used: ${detail}`, { scope: 'config', retry: 'later', cause });
  }
}

/** The {@link SharedLimits} of one server in a {@link SharedLimitsHub}. */
class ServerLimitsShared implements SharedLimits {
  readonly classid: number;
  /** Slots this process holds → generation of the session that has their lock (lost when not current). */
  private readonly held = new Map<number, number>();
  private waiters: Waiter[] = [];
  private timer: NodeJS.Timeout | undefined;
  private ticking = false;
  /** When this process last gave a slot back (it then lets others try first). */
  private releasedAt = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly hub: SharedLimitsHub,
    private readonly key: string,
    public limits: ServerLimits,
  ) {
    this.classid = slotLockKey(key);
  }

  /** The cap on slots; undefined (no cap) when not set or not finite, like ServerGate's. */
  private get max(): number | undefined {
    const m = this.limits.maxConnections;
    return m === undefined || !Number.isFinite(m) ? undefined : Math.max(0, Math.floor(m));
  }

  get holdsAny(): boolean {
    return this.held.size > 0;
  }

  acquire(signal?: AbortSignal): Promise<void> {
    if (this.max === undefined) return Promise.resolve();
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (this.hub.isClosed) return Promise.reject(this.hub.closedError());
    return new Promise<void>((resolve, reject) => {
      const w: Waiter = {
        resolve,
        reject,
        signal,
        onAbort: () => {
          const i = this.waiters.indexOf(w);
          if (i >= 0) this.waiters.splice(i, 1);
          reject(signal!.reason);
        },
      };
      signal?.addEventListener('abort', w.onAbort, { once: true });
      this.waiters.push(w);
      // First in line, and this process did not just give a slot back: try now.
      this.schedule(this.waiters.length === 1 && Date.now() - this.releasedAt >= this.hub.poll);
    });
  }

  tryAcquire(): Promise<boolean> {
    const max = this.max;
    if (max === undefined) return Promise.resolve(true);
    return this.hub.serial(async () => {
      if (this.waiters.length) return false; // others here wait already: no jumping the line
      const got = await this.hub.takeSlot(this.classid, max, this.held);
      if (!got) return false;
      this.held.set(got.slot, got.gen);
      return true;
    });
  }

  release(): Promise<void> {
    // Nothing held (no cap, or never acquired): nothing to do. The cap may have been lifted
    // meanwhile; slots taken under it are still given back.
    if (!this.held.size || this.hub.isClosed) return Promise.resolve();
    return this.hub
      .serial(async () => {
        if (!this.held.size) return;
        // Give back a lost slot first: another process may be using it too, putting us over the cap.
        const gen = this.hub.currentGen;
        const entries = [...this.held];
        const [slot, holder] = entries.find(([, g]) => g !== gen) ?? entries[entries.length - 1]!;
        this.held.delete(slot);
        this.releasedAt = Date.now();
        await this.hub.freeSlot(this.classid, slot, holder);
      })
      .catch(() => undefined); // closed meanwhile: everything is given back anyway
  }

  async book(messages: number, bytes: number): Promise<number> {
    const { maxMessagesPerSecond: mps, maxBytesPerSecond: bps } = this.limits;
    const cost = (amount: number, rate: number | undefined) => (rate && rate > 0 && Number.isFinite(rate) ? (Math.max(0, amount) * 1000) / rate : null);
    const [row] = await this.hub.rateQuery<{ wait: number }>(BOOK_SQL, [this.key, cost(messages, mps), cost(bytes, bps)]);
    return Math.max(0, Math.ceil(Number(row?.wait ?? 0)));
  }

  async pauseFor(ms: number): Promise<void> {
    if (!(ms > 0)) return;
    await this.hub.rateQuery(PAUSE_SQL, [this.key, Math.min(ms, MAX_SUGGESTED_MS)]);
  }

  /** Slots held here whose lock is not in session `gen` (it was lost with an earlier session). */
  lostSlots(gen: number): number[] {
    return [...this.held].filter(([, g]) => g !== gen).map(([slot]) => slot);
  }

  /** A lost slot's lock was taken again in session `gen`. */
  retaken(slot: number, gen: number): void {
    if (this.held.has(slot)) this.held.set(slot, gen);
  }

  /** Rejects every waiting acquisition and forgets every slot (the hub is closing). */
  shutdown(err: unknown): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) this.fail(w, err);
    this.held.clear();
  }

  /** Tries for slots now (`now`) or after a poll interval; one try at a time. */
  private schedule(now: boolean): void {
    if (this.ticking || this.hub.isClosed) return; // the try under way looks at every waiter
    if (now) {
      clearTimeout(this.timer);
      this.timer = undefined;
      this.ticking = true;
      void this.hub.serial(() => this.tick()).catch((err: unknown) => this.failAll(err)).finally(() => {
        this.ticking = false;
        if (this.waiters.length) this.schedule(false);
      });
    } else if (!this.timer) {
      const delay = this.hub.poll * (0.75 + Math.random() / 2);
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.schedule(true);
      }, delay);
    }
  }

  /** Hands free slots to the waiters, first come first served. Inside the hub's serial chain. */
  private async tick(): Promise<void> {
    while (this.waiters.length) {
      const max = this.max;
      if (max === undefined) {
        for (const w of this.waiters.splice(0)) this.grant(w);
        return;
      }
      const got = await this.hub.takeSlot(this.classid, max, this.held);
      if (!got) return;
      const w = this.waiters.shift();
      if (!w) {
        await this.hub.freeSlot(this.classid, got.slot, got.gen); // its waiter gave up meanwhile
        return;
      }
      this.held.set(got.slot, got.gen);
      this.grant(w);
    }
  }

  private grant(w: Waiter): void {
    w.signal?.removeEventListener('abort', w.onAbort);
    w.resolve();
  }

  private fail(w: Waiter, err: unknown): void {
    w.signal?.removeEventListener('abort', w.onAbort);
    w.reject(err);
  }

  private failAll(err: unknown): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) this.fail(w, err);
  }
}
