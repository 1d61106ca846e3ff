/**
 * Work over a list of messages that survives lost connections and isolates the message that
 * causes them.
 *
 * Some servers drop the connection when they cannot read a message (Dovecot: "Disconnected:
 * FETCH failed"), and a network can drop it anywhere. Both look the same from here. So after a
 * loss the rest is taken one message at a time: a network blip then costs nothing, and a message
 * that breaks the connection each time it is touched is given up (and reported) after
 * `suspectLimit` losses, instead of failing the whole folder.
 */

/** What {@link isolateLosses} needs. */
export interface IsolateOptions {
  /** Marks the UIDs handled so far; `step` adds to it as it goes (so progress before a loss is kept). */
  done: Set<number>;
  /** Does the work for `part`, adding each handled UID to `done`. */
  step(part: readonly number[]): Promise<void>;
  /** True when `err` is a lost connection (anything else is rethrown). */
  isLoss(err: unknown): boolean;
  /** Rebuilds the connection after a loss. */
  recover(err: unknown): Promise<void>;
  /** Gives a UID up after it broke the connection `times` times; must add it to `done`. */
  giveUp(uid: number, err: unknown, times: number): void;
  /** Losses caused by one message alone before it is given up. */
  suspectLimit: number;
  /** Losses in a row, with no progress in between, before the whole thing is given up (the last error is thrown). */
  maxLossesInARow: number;
}

/** Runs `step` over `uids` until every UID is done (handled or given up). */
export async function isolateLosses(uids: readonly number[], o: IsolateOptions): Promise<void> {
  const suspects = new Map<number, number>();
  let oneByOne = false;
  let losses = 0;
  for (let left = uids.filter((u) => !o.done.has(u)); left.length > 0; left = left.filter((u) => !o.done.has(u))) {
    const part = oneByOne ? [left[0]!] : left;
    const before = o.done.size;
    try {
      await o.step(part);
      losses = 0;
    } catch (err) {
      if (!o.isLoss(err)) throw err;
      if (o.done.size > before) losses = 0;
      const rest = left.filter((u) => !o.done.has(u));
      if (oneByOne && rest[0] === part[0]) {
        const n = (suspects.get(part[0]!) ?? 0) + 1;
        suspects.set(part[0]!, n);
        // An error that asking again cannot change (an answer larger than allowed) costs the message at once.
        if (n >= o.suspectLimit || (err as { retry?: string })?.retry === 'never') {
          o.giveUp(part[0]!, err, n);
          losses = 0;
        }
      }
      oneByOne = true;
      if (++losses > o.maxLossesInARow) throw err;
      await o.recover(err);
    }
  }
}
