/**
 * OAuth 2.0 access tokens for IMAP (XOAUTH2 / OAUTHBEARER), as Gmail and Microsoft 365 require.
 * mailmover does not run OAuth flows itself: it reads a token that something else keeps fresh
 * (a file written by a token helper) or runs a command that prints one (e.g. a script around
 * `gcloud auth print-access-token` or `az account get-access-token`). When a server refuses a
 * token (it expired), the file is read again or the command is run again, once.
 *
 * Token commands never go through a shell: a user name from a batch list is data, and no
 * quoting scheme makes data safe in every place a template could put it. The command is split
 * into words once ({@link splitCommand}), `{user}` is replaced inside each word as plain text,
 * and the program is run directly. Whatever needs a shell (pipes, variables) goes in a script.
 */
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { ERROR_CODES, MigrateError } from './errors.js';
import { registerSecret } from './redact.js';

/** Gives a token; `fresh` asks for a new one (the last one was refused). */
export type TokenProvider = (fresh: boolean) => Promise<string>;

/** A token read from a file, read again when a fresh one is needed. `user` helps scrub echoed SASL blobs. */
export function tokenFromFile(file: string, user?: string): TokenProvider {
  let cached: string | undefined;
  return async (fresh) => {
    if (cached && !fresh) return cached;
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      throw tokenError(`The access token file "${file}" cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'}).`, err);
    }
    cached = clean(text, `the access token file "${file}"`, user);
    return cached;
  };
}

/** Characters that mean something to a shell: refused outside quotes, so nobody expects a shell. */
const SHELL_CHARS = /[|&;<>()$`\\*?[\]{}~!#]/;

/**
 * Splits a command template into argv words. The rules, deliberately few:
 * - words are separated by blanks (spaces, tabs, line breaks);
 * - `'...'` and `"..."` group characters (blanks included) into a word; the quotes are removed;
 *   inside either kind every character is literal (no escapes, no `$`); quoted and unquoted
 *   parts next to each other make one word (`--user="{user}"`); `""` is an empty word;
 * - outside quotes, the characters `| & ; < > ( ) $ \` \ * ? [ ] { } ~ ! #` are refused (nothing
 *   is expanded, so a pipe or a variable would silently not work), except `{user}` itself;
 * - an unbalanced quote is refused.
 * Throws an Error saying what is wrong (callers wrap it in their configuration error).
 */
export function splitCommand(template: string): string[] {
  const words: string[] = [];
  let word: string | undefined;
  for (let i = 0; i < template.length; ) {
    const ch = template[i]!;
    if (/\s/.test(ch)) {
      if (word !== undefined) words.push(word);
      word = undefined;
      i++;
    } else if (ch === "'" || ch === '"') {
      const close = template.indexOf(ch, i + 1);
      if (close < 0) throw new Error(`the ${ch === "'" ? 'single' : 'double'} quote at character ${i + 1} is never closed`);
      word = (word ?? '') + template.slice(i + 1, close);
      i = close + 1;
    } else if (template.startsWith('{user}', i)) {
      word = (word ?? '') + '{user}';
      i += 6;
    } else {
      if (SHELL_CHARS.test(ch)) {
        throw new Error(`"${ch}" at character ${i + 1} is a shell character, and token commands are not run by a shell (put pipes and variables in a script, or quote the character)`);
      }
      word = (word ?? '') + ch;
      i++;
    }
  }
  if (word !== undefined) words.push(word);
  if (words.length === 0 || words[0] === '') throw new Error('the command is empty');
  return words;
}

/**
 * A token printed by a command, run again when a fresh one is needed. The command is split into
 * words by {@link splitCommand} (a bad command throws MM-CONFIG-OPTION here, before anything
 * runs); `{user}` in any word is replaced by the mailbox's user as plain text, and the user is
 * also in the environment as MAILMOVER_USER. The program is run without a shell.
 */
export function tokenFromCommand(command: string, user?: string, timeoutMs = 60_000): TokenProvider {
  let template: string[];
  try {
    template = splitCommand(command);
  } catch (err) {
    throw new MigrateError(ERROR_CODES.CONFIG_OPTION, `The access token command cannot be used: ${(err as Error).message}.`, { scope: 'config' });
  }
  const argv = user === undefined ? template : template.map((w) => w.replaceAll('{user}', user));
  const env = user === undefined ? process.env : { ...process.env, MAILMOVER_USER: user };
  let cached: string | undefined;
  return async (fresh) => {
    if (cached && !fresh) return cached;
    const out = await new Promise<string>((resolve, reject) => {
      execFile(argv[0]!, argv.slice(1), { timeout: timeoutMs, maxBuffer: 1024 * 1024, env, shell: false }, (err, stdout, stderr) => {
        if (err) {
          const e = err as NodeJS.ErrnoException & { killed?: boolean; code?: string | number };
          const why = e.code === 'ENOENT' ? `"${argv[0]}" was not found` : e.killed ? `no answer within ${timeoutMs / 1000} s` : `exit ${e.code ?? 'error'}`;
          reject(tokenError(`The access token command failed (${why}): ${String(stderr).trim().slice(0, 300)}`, err));
        } else resolve(String(stdout));
      });
    });
    cached = clean(out, 'the access token command', user);
    return cached;
  };
}

function clean(text: string, what: string, user: string | undefined): string {
  const token = text.trim();
  if (!token) throw tokenError(`${what} gave no token.`);
  if (/\s/.test(token)) throw tokenError(`${what} gave more than one word; it must print only the access token.`);
  registerSecret(token, { user });
  return token;
}

function tokenError(message: string, cause?: unknown): MigrateError {
  return new MigrateError(ERROR_CODES.AUTH_TOKEN, message, { scope: 'mailbox', retry: 'never', ...(cause ? { cause } : {}) });
}
