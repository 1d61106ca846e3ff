/** Whether a source's listed sizes are exact or estimates (see {@link SizeTrust}). */

/**
 * Whether the source's RFC822.SIZE can be held against the bytes it sends. Most servers report
 * the exact size, and then a body of another size was cut short (or padded) on its way. Some
 * gateways report an estimate for every message (a size kept in another format than the MIME
 * they produce on the fly). Told apart by what a mailbox shows: once 5 bodies whose identity
 * matches have all differed from their listed size and none has matched it, the sizes are taken
 * as estimates for the rest of the run (said once in the log and the report); a single exact
 * match keeps them exact for good. `--accept-size-mismatch` decides it from the start.
 */
export class SizeTrust {
  private exact = 0;
  private inexact = 0;
  estimates: boolean;
  private readonly onEstimates: (() => void) | undefined;

  constructor(acceptFromStart: boolean, onEstimates?: () => void) {
    this.estimates = acceptFromStart;
    this.onEstimates = onEstimates;
  }

  /** Counts bodies whose identity matched: `exact` of them had the listed size, `inexact` not. */
  observe(exact: number, inexact: number): void {
    this.exact += exact;
    this.inexact += inexact;
    if (!this.estimates && this.exact === 0 && this.inexact >= ESTIMATE_EVIDENCE) {
      this.estimates = true;
      this.onEstimates?.();
    }
  }
}

/** Bodies of matching identity, all of another size than listed and none of it, before sizes count as estimates. */
const ESTIMATE_EVIDENCE = 5;
