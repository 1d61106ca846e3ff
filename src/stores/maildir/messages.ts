/**
 * Delivering one message into a Maildir folder (reading is local/message-file.ts).
 *
 * A delivery follows the Maildir rules: a unique name in `tmp/`, written and synced, then renamed
 * into `cur/` with its flags; a run killed mid-write leaves at most a file in `tmp/`, which no
 * reader counts as a message.
 */
import { hostname } from 'node:os';
import { open, rename, unlink, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { servedSize } from '../local/message-file.js';

let counter = 0;
/** A unique name as the Maildir spec describes: time, microseconds, pid, a counter, the host. */
export function uniqueName(size: number, virtualSize: number): string {
  const now = Date.now();
  const secs = Math.floor(now / 1000);
  const micros = (now % 1000) * 1000 + (counter % 1000);
  counter++;
  // The host name must not contain '/' or ':' (the spec's escapes).
  const host = hostname().replace(/\//g, '\\057').replace(/:/g, '\\072');
  return `${secs}.M${micros}P${process.pid}Q${counter}.${host},S=${size},W=${virtualSize}`;
}

/**
 * Delivers a message into a folder directory: tmp/ first, synced, then renamed into cur/ with its
 * flag letters, dated with its INTERNALDATE (Dovecot reads INTERNALDATE from the file's mtime).
 * Returns the unique part of the name (what dovecot-uidlist lists) and the file name in cur/.
 */
export async function deliver(dir: string, body: Buffer, letters: string, internalDate: Date | undefined): Promise<{ base: string; file: string }> {
  const base = uniqueName(body.length, servedSize(body));
  const tmp = join(dir, 'tmp', base);
  const file = `${base}:2,${letters}`;
  const handle = await open(tmp, 'wx', 0o600);
  try {
    await handle.writeFile(body);
    await handle.sync();
  } catch (err) {
    await handle.close().catch(() => undefined);
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
  await handle.close();
  if (internalDate && !Number.isNaN(internalDate.getTime())) await utimes(tmp, internalDate, internalDate);
  await rename(tmp, join(dir, 'cur', file));
  return { base, file };
}

