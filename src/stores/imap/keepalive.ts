/**
 * Keeps an idle IMAP connection alive while the lane works on the other side.
 *
 * A lane holds a source and a destination connection. While one side is busy for a long time (a
 * big folder listed over a slow link, a server that trickles its answer, a flood of untagged
 * lines), the other sends nothing, and after --idle-timeout seconds of silence it would be given
 * up ("destination connection is closed") although nothing is wrong with it; on every rerun the
 * same. So a connection with no command in flight sends a NOOP every `intervalMs` (a third of
 * the idle timeout), which also keeps NAT and firewall state alive. A NOOP is never sent while a
 * command (IDLE included) is running.
 */
import type { ImapFlow } from 'imapflow';

interface RequestState {
  currentRequest?: unknown;
  requestQueue?: unknown[];
  usable: boolean;
}

export class Keepalive {
  private timer: NodeJS.Timeout | undefined;
  private readonly intervalMs: number;

  constructor(intervalMs: number) {
    this.intervalMs = intervalMs;
  }

  start(client: ImapFlow): void {
    this.stop();
    const state = client as unknown as RequestState;
    this.timer = setInterval(() => {
      if (!state.usable) return this.stop();
      if (state.currentRequest || (state.requestQueue?.length ?? 0) > 0) return;
      client.noop().catch(() => undefined);
    }, this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}
