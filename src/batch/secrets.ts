/**
 * Secret references for batch files: `env:NAME` (an environment variable) or `file:PATH` (a
 * file's content, one trailing newline dropped). A literal value is accepted for small tests but
 * flagged, so that the caller can warn: passwords do not belong in a CSV file.
 */
import { readFileSync } from 'node:fs';

/** A resolved secret, and whether it was written literally in the file. */
export interface Secret {
  value: string;
  literal: boolean;
}

/** Resolves a reference; throws an Error whose message names the reference (never the secret). */
export function resolveSecret(ref: string, env: NodeJS.ProcessEnv = process.env): Secret {
  if (ref.startsWith('env:')) {
    const name = ref.slice(4);
    const value = env[name];
    if (!name || value === undefined || value === '') throw new Error(`the environment variable ${name || '(empty name)'} is not set`);
    return { value, literal: false };
  }
  if (ref.startsWith('file:')) {
    const file = ref.slice(5);
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      throw new Error(`the file "${file}" cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    }
    const value = text.replace(/\r?\n$/, '');
    if (!value) throw new Error(`the file "${file}" is empty`);
    return { value, literal: false };
  }
  return { value: ref, literal: true };
}
