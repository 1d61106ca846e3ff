/**
 * A bounded page cache under pst-extractor's reads. The library walks its B-trees with many small
 * positional reads (often one byte at a time), each a `fs.readSync` system call; all of them go
 * through its `readSync(buffer, length, position)` method, which this replaces on one PSTFile
 * with reads of whole 64 KiB pages kept in a small LRU (at most 16 MiB). pst-extractor offers
 * no cache of its own; reading the file whole into memory (its Buffer mode) is what a
 * multi-gigabyte PST must not do. Reads of a page or more bypass the cache.
 */
import { readSync } from 'node:fs';

const PAGE = 64 * 1024;
const MAX_PAGES = 256;

interface Readable {
  readSync(buffer: Buffer, length: number, position: number): number;
}

/** Puts the cache under `file`'s reads of descriptor `fd`. */
export function cachePages(file: object, fd: number): void {
  const pages = new Map<number, Buffer>();
  const page = (n: number): Buffer => {
    const hit = pages.get(n);
    if (hit) {
      pages.delete(n);
      pages.set(n, hit); // most recently used last
      return hit;
    }
    const buf = Buffer.allocUnsafe(PAGE);
    const got = readSync(fd, buf, 0, PAGE, n * PAGE);
    const data = got === PAGE ? buf : Buffer.from(buf.subarray(0, got));
    pages.set(n, data);
    if (pages.size > MAX_PAGES) pages.delete(pages.keys().next().value!);
    return data;
  };
  (file as Readable).readSync = (buffer: Buffer, length: number, position: number): number => {
    if (length >= PAGE) return readSync(fd, buffer, 0, length, position);
    let done = 0;
    while (done < length) {
      const at = position + done;
      const p = page(Math.floor(at / PAGE));
      const offset = at % PAGE;
      if (offset >= p.length) break; // the end of the file
      const n = Math.min(length - done, p.length - offset);
      p.copy(buffer, done, offset, offset + n);
      done += n;
    }
    return done;
  };
}
