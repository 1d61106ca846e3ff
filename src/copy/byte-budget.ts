/**
 * A budget of message-body bytes in memory, shared by all lanes of a migration.
 *
 * Each batch takes its size from the budget before its bodies are fetched and gives it back once
 * they are appended, so the bodies held at once stay under the budget whatever the number of
 * lanes, the prefetch and the message sizes. A message larger than the whole budget waits until
 * the budget is entirely free and then goes alone. Waiters are served in order (no starvation).
 */
export class ByteBudget {
  private available: number;
  private readonly waiters: { bytes: number; resolve: () => void }[] = [];

  constructor(readonly capacity: number) {
    this.available = capacity;
  }

  /** Waits until `bytes` (at most the capacity) are free and takes them; returns what was taken. */
  async acquire(bytes: number, signal?: AbortSignal): Promise<number> {
    const want = Math.min(Math.max(0, bytes), this.capacity);
    if (this.waiters.length === 0 && this.available >= want) {
      this.available -= want;
      return want;
    }
    signal?.throwIfAborted();
    await new Promise<void>((resolve, reject) => {
      const onAbort = () => {
        const i = this.waiters.indexOf(waiter);
        if (i >= 0) this.waiters.splice(i, 1);
        reject(signal!.reason);
      };
      // The listener goes as soon as the wait ends, so waits never pile up listeners on the signal.
      const waiter = {
        bytes: want,
        resolve: () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        },
      };
      this.waiters.push(waiter);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
    return want;
  }

  /** Gives back what {@link acquire} returned. */
  release(bytes: number): void {
    this.available = Math.min(this.capacity, this.available + bytes);
    while (this.waiters.length > 0 && this.available >= this.waiters[0]!.bytes) {
      const w = this.waiters.shift()!;
      this.available -= w.bytes;
      w.resolve();
    }
  }
}
