/**
 * Secret references for batch files: `env:NAME` (an environment variable) or `file:PATH` (a
 * file's content, one trailing newline dropped). A literal value is accepted for small tests but
 * flagged, so that the caller can warn: passwords do not belong in a CSV file.
 *
 * Every value resolved is registered for scrubbing (src/core/redact.ts), literal ones too.
 */
import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';
import { registerSecret, type SecretContext } from '../core/redact.js';

/** A secret file larger than this is refused: a password or token is a line, not a document. */
export const MAX_SECRET_FILE_BYTES = 64 * 1024;

/** A resolved secret, and whether it was written literally in the file. */
export interface Secret {
  value: string;
  literal: boolean;
}

/** True when `ref` is a reference (`env:`/`file:`), false when it is a literal secret. */
export function isReference(ref: string): boolean {
  return ref.startsWith('env:') || ref.startsWith('file:');
}

/**
 * Resolves a reference; throws an Error whose message names the reference (never the secret).
 * `login` (the user the secret logs in as) lets the SASL blobs built from it be scrubbed too.
 */
export function resolveSecret(ref: string, env: NodeJS.ProcessEnv = process.env, login: SecretContext = {}): Secret {
  const secret = find(ref, env);
  registerSecret(secret.value, login);
  return secret;
}

function find(ref: string, env: NodeJS.ProcessEnv): Secret {
  if (ref.startsWith('env:')) {
    const name = ref.slice(4);
    const value = env[name];
    if (!name || value === undefined || value === '') throw new Error(`the environment variable ${name || '(empty name)'} is not set`);
    return { value, literal: false };
  }
  if (ref.startsWith('file:')) {
    const value = readSecretFile(ref.slice(5)).replace(/\r?\n$/, '');
    if (!value) throw new Error(`the file "${ref.slice(5)}" is empty`);
    return { value, literal: false };
  }
  return { value: ref, literal: true };
}

/**
 * Reads a secret file. It is opened without blocking and checked on the open descriptor (so
 * it cannot be swapped between the check and the read): a FIFO, a device or a directory would
 * block or flood the whole batch, so only a regular file of at most 64 KiB is read.
 */
function readSecretFile(file: string): string {
  let fd: number;
  try {
    fd = openSync(file, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
  } catch (err) {
    throw new Error(`the file "${file}" cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new Error(`"${file}" is not a regular file (${kind(st)}); a secret reference must name a regular file`);
    if (st.size > MAX_SECRET_FILE_BYTES) throw new Error(`the file "${file}" is ${st.size} bytes; a secret file may hold at most ${MAX_SECRET_FILE_BYTES} bytes`);
    // One byte more than allowed, to notice a file that grew after the fstat.
    const buf = Buffer.alloc(MAX_SECRET_FILE_BYTES + 1);
    let n = 0;
    for (let got = 1; got > 0 && n < buf.length; n += got) {
      try {
        got = readSync(fd, buf, n, buf.length - n, null);
      } catch (err) {
        throw new Error(`the file "${file}" cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
      }
    }
    if (n > MAX_SECRET_FILE_BYTES) throw new Error(`the file "${file}" holds more than ${MAX_SECRET_FILE_BYTES} bytes`);
    return buf.subarray(0, n).toString('utf8');
  } finally {
    closeSync(fd);
  }
}

function kind(st: import('node:fs').Stats): string {
  if (st.isDirectory()) return 'a directory';
  if (st.isFIFO()) return 'a FIFO';
  if (st.isSocket()) return 'a socket';
  if (st.isCharacterDevice() || st.isBlockDevice()) return 'a device';
  return 'not a file';
}
