/**
 * Waiting between the passes of `--watch`: the source's INBOX is watched with IDLE (RFC 2177)
 * where the server has it, so that new mail starts the next pass at once; other folders are
 * picked up by the pass that follows the interval (polling), as is everything on a server
 * without IDLE.
 *
 * Mail that arrives while a pass runs must not be missed: {@link SourceWatcher.mark} notes the
 * INBOX's UIDNEXT before the pass, and the wait after it returns at once when UIDNEXT moved.
 */
import { parseEndpoint } from '../core/endpoint.js';
import type { EndpointOptions } from './options.js';
import type { MailStore } from '../stores/mail-store.js';
import { storeFactory } from '../stores/imap/open.js';
import { sleep } from '../core/sleep.js';

/** Options of {@link SourceWatcher}. */
export interface WatcherOptions {
  from: EndpointOptions;
  connectTimeoutSeconds?: number;
}

const INBOX = ['INBOX'];

/** One connection to the source that watches its INBOX between passes. */
export class SourceWatcher {
  private store: MailStore | undefined;
  private baseline: number | undefined;

  constructor(private readonly options: WatcherOptions) {}

  /** Notes where the INBOX stands (call before a pass). Never throws: watching is a convenience. */
  async mark(signal?: AbortSignal): Promise<void> {
    try {
      const store = await this.connected(signal);
      this.baseline = (await store.folderStatus(INBOX))?.uidNext;
    } catch {
      await this.drop();
      this.baseline = undefined;
    }
  }

  /**
   * Waits up to `timeoutSeconds` for new mail in the INBOX; resolves true when new mail (or a
   * removal) ended the wait, or arrived since {@link mark}. Falls back to a plain wait on error.
   */
  async wait(timeoutSeconds: number, signal?: AbortSignal): Promise<boolean> {
    try {
      const store = await this.connected(signal);
      return await store.waitForChange(INBOX, timeoutSeconds * 1000, signal, this.baseline);
    } catch {
      await this.drop();
      // An abort only ends the wait early.
      await sleep(timeoutSeconds * 1000, signal).catch(() => undefined);
      return false;
    }
  }

  async close(): Promise<void> {
    await this.drop();
  }

  private async connected(signal?: AbortSignal): Promise<MailStore> {
    if (this.store?.isUsable()) return this.store;
    await this.drop();
    const from = typeof this.options.from.url === 'string' ? parseEndpoint(this.options.from.url, 'from') : this.options.from.url;
    const side = { ...this.options.from, endpoint: from };
    const store = (await storeFactory(side, side, { connectTimeoutSeconds: this.options.connectTimeoutSeconds, separatorSubstitute: '_' }))('source');
    await store.connect(signal);
    this.store = store;
    return store;
  }

  private async drop(): Promise<void> {
    const s = this.store;
    this.store = undefined;
    await s?.close();
  }
}
