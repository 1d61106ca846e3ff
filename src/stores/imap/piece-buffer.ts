/**
 * One message body assembled from the pieces of partial fetches (`BODY.PEEK[]<start.length>`),
 * in one buffer of the listed size.
 *
 * Why: imapflow gathers a literal's socket chunks and then joins them (two copies of the body at
 * once), so a 50 MB message fetched whole costs over 100 MB. Fetched in pieces of a few MiB, only
 * one piece is ever held twice. The buffer is allocated once at the size the source listed; a
 * message larger than listed (a server whose sizes are estimates) grows it, never beyond `limit`.
 */
import { freeBuffer } from '../../core/release-memory.js';

export class PieceBuffer {
  private buf: Buffer;
  private used = 0;

  /** `expected`: the listed size; `limit`: the most this body may hold. */
  constructor(
    expected: number,
    readonly limit: number,
  ) {
    this.buf = Buffer.allocUnsafe(Math.max(0, Math.min(expected, limit)));
  }

  get length(): number {
    return this.used;
  }

  /** Appends a piece; false (and nothing appended) when the body would pass `limit`. */
  push(piece: Uint8Array): boolean {
    const need = this.used + piece.length;
    if (need > this.limit) return false;
    if (need > this.buf.length) {
      const grown = Buffer.allocUnsafe(Math.min(this.limit, Math.max(need, this.buf.length * 2)));
      this.buf.copy(grown, 0, 0, this.used);
      freeBuffer(this.buf);
      this.buf = grown;
    }
    this.buf.set(piece, this.used);
    this.used = need;
    return true;
  }

  /** The body: exactly the bytes pushed (a view when it is shorter than allocated). */
  result(): Buffer {
    return this.used === this.buf.length ? this.buf : this.buf.subarray(0, this.used);
  }
}
