/**
 * A worker's heartbeat in the ledger (the `worker` table, schema 5): its id, host, pid, start,
 * the mailboxes it runs now, written when it starts, every `seconds`, when a mailbox starts or
 * ends, and once more (stopped) when it quits. The console shows a worker not seen for several
 * heartbeats as gone (it died, or its machine or network did).
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { ControlStore, RunningMailbox } from '../state/batch-control.js';

/** The heartbeat every 10 s by default. */
export const HEARTBEAT_SECONDS = 10;

export class WorkerHeartbeat {
  readonly id = `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
  private readonly startedAt = new Date().toISOString();
  private readonly running = new Map<string, RunningMailbox>();
  private timer: NodeJS.Timeout | undefined;
  private writing = Promise.resolve();

  constructor(
    private readonly control: ControlStore,
    private readonly seconds = HEARTBEAT_SECONDS,
  ) {}

  /** Writes the first beat and then one every `seconds`. */
  async start(): Promise<void> {
    await this.beat();
    this.timer = setInterval(() => void this.beat(), this.seconds * 1000);
    this.timer.unref();
  }

  /** A mailbox started (`key` names it until {@link done}). */
  begin(key: string, m: RunningMailbox): void {
    this.running.set(key, m);
    void this.beat();
  }

  done(key: string): void {
    this.running.delete(key);
    void this.beat();
  }

  /** The last beat, marked stopped. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.beat(true);
  }

  /** One write at a time; a failed one is skipped (the next beat tries again). */
  private beat(stopped = false): Promise<void> {
    const row = { id: this.id, host: hostname(), pid: process.pid, startedAt: this.startedAt, heartbeatSeconds: this.seconds, running: [...this.running.values()] };
    this.writing = this.writing.then(() => this.control.heartbeat(row, stopped)).catch(() => undefined);
    return this.writing;
  }
}
