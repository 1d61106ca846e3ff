/**
 * OAuth 2.0 access tokens for IMAP (XOAUTH2 / OAUTHBEARER), as Gmail and Microsoft 365 require.
 * mailmover does not run OAuth flows itself: it reads a token that something else keeps fresh
 * (a file written by a token helper) or runs a command that prints one (e.g. a script around
 * `gcloud auth print-access-token` or `az account get-access-token`). When a server refuses a
 * token (it expired), the file is read again or the command is run again, once.
 */
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { ERROR_CODES, MigrateError } from './errors.js';

/** Gives a token; `fresh` asks for a new one (the last one was refused). */
export type TokenProvider = (fresh: boolean) => Promise<string>;

/** A token read from a file, read again when a fresh one is needed. */
export function tokenFromFile(file: string): TokenProvider {
  let cached: string | undefined;
  return async (fresh) => {
    if (cached && !fresh) return cached;
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      throw tokenError(`The access token file "${file}" cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'}).`, err);
    }
    cached = clean(text, `the access token file "${file}"`);
    return cached;
  };
}

/**
 * A token printed by a shell command, run again when a fresh one is needed. `{user}` in the
 * command is replaced by the mailbox's user, quoted for the shell.
 */
export function tokenFromCommand(command: string, user?: string, timeoutMs = 60_000): TokenProvider {
  const line = user === undefined ? command : command.replaceAll('{user}', `'${user.replaceAll("'", "'\\''")}'`);
  let cached: string | undefined;
  return async (fresh) => {
    if (cached && !fresh) return cached;
    const out = await new Promise<string>((resolve, reject) => {
      execFile('/bin/sh', ['-c', line], { timeout: timeoutMs, maxBuffer: 1024 * 1024 }, (err, stdout, stderr) => {
        if (err) reject(tokenError(`The access token command failed (${(err as NodeJS.ErrnoException).code ?? 'error'}): ${String(stderr).trim().slice(0, 300)}`, err));
        else resolve(String(stdout));
      });
    });
    cached = clean(out, 'the access token command');
    return cached;
  };
}

function clean(text: string, what: string): string {
  const token = text.trim();
  if (!token) throw tokenError(`${what} gave no token.`);
  if (/\s/.test(token)) throw tokenError(`${what} gave more than one word; it must print only the access token.`);
  return token;
}

function tokenError(message: string, cause?: unknown): MigrateError {
  return new MigrateError(ERROR_CODES.AUTH_TOKEN, message, { scope: 'mailbox', retry: 'never', ...(cause ? { cause } : {}) });
}
