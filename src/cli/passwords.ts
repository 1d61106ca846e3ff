/**
 * Where passwords come from, in order: --SIDE-password-file, MAILMOVER_SIDE_PASSWORD, a prompt
 * when stdin is a terminal. Passwords never come from the command line or the URL: both are
 * visible to other users in process listings and end up in shell history.
 */
import { readFile } from 'node:fs/promises';
import { ERROR_CODES, MigrateError } from '../core/errors.js';
import type { Side } from '../core/endpoint.js';
import { registerSecret } from '../core/redact.js';

/**
 * Resolves the password for one side and registers it (src/core/redact.ts), so that a server
 * echoing it back never puts it in a report or a log. `authzid` adds the SASL PLAIN blob for it.
 */
export async function resolvePassword(side: Side, file: string | undefined, env: NodeJS.ProcessEnv, user: string, authzid?: string): Promise<string> {
  const password = await find(side, file, env, user);
  registerSecret(password, { user, authzid });
  return password;
}

async function find(side: Side, file: string | undefined, env: NodeJS.ProcessEnv, user: string): Promise<string> {
  const envName = `MAILMOVER_${side.toUpperCase()}_PASSWORD`;
  if (file) {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? 'error';
      throw new MigrateError(ERROR_CODES.CONFIG_PASSWORD_FILE, `--${side}-password-file: cannot read "${file}" (${code}).`, { scope: 'config' });
    }
    // One trailing line break is how editors and `echo` end a file; it is not part of the password.
    const password = text.replace(/\r?\n$/, '');
    if (!password) throw new MigrateError(ERROR_CODES.CONFIG_PASSWORD_FILE, `--${side}-password-file: "${file}" is empty.`, { scope: 'config' });
    return password;
  }
  const fromEnv = env[envName];
  if (fromEnv) return fromEnv;
  if (process.stdin.isTTY && process.stderr.isTTY) {
    const password = await promptHidden(`Password for ${user} (${side === 'from' ? 'source' : 'destination'}): `);
    if (password) return password;
  }
  throw new MigrateError(
    ERROR_CODES.CONFIG_NO_PASSWORD,
    `No password for the ${side === 'from' ? 'source' : 'destination'} (${user}). Pass --${side}-password-file FILE or set ${envName}.`,
    { scope: 'config' },
  );
}

/**
 * Reads a line from the terminal without echoing it. Hand-written because it is a dozen lines
 * on top of raw mode, and Node's readline has no supported way to mute echo.
 */
function promptHidden(question: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const stdin = process.stdin;
    process.stderr.write(question);
    let value = '';
    const wasRaw = stdin.isRaw;
    stdin.setRawMode(true);
    stdin.resume();
    const done = (err?: Error) => {
      stdin.setRawMode(wasRaw);
      stdin.pause();
      stdin.off('data', onData);
      process.stderr.write('\n');
      if (err) reject(err);
      else resolve(value);
    };
    const onData = (chunk: Buffer) => {
      for (const ch of chunk.toString('utf8')) {
        if (ch === '\r' || ch === '\n') return done();
        if (ch === '\u0003') return done(new MigrateError(ERROR_CODES.ABORTED, 'Cancelled at the password prompt.', { scope: 'config' }));
        if (ch === '\u007f' || ch === '\b') value = value.slice(0, -1);
        else value += ch;
      }
    };
    stdin.on('data', onData);
  });
}
