/**
 * `mailmover console`: checks the listen address and its protection, gets the access token, starts
 * the console (src/console/server.ts) and prints its URL once; Ctrl-C stops it.
 */
import { readFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { isLoopbackHost } from '../core/endpoint.js';
import { ERROR_CODES, MigrateError } from '../core/errors.js';
import { registerSecret } from '../core/redact.js';
import { defaultStatePath } from '../state/paths.js';
import { maskUrl } from '../state/types.js';
import { onInterrupt } from './common.js';
import { EXIT } from './exit-codes.js';

export interface ConsoleFlags {
  state?: string;
  queue?: string;
  listen: string;
  tlsCert?: string;
  tlsKey?: string;
  insecureHttp?: boolean;
  tokenFile?: string;
  operator?: string;
  sessionHours: number;
}

const optionError = (message: string) => new MigrateError(ERROR_CODES.CONFIG_OPTION, message, { scope: 'config' });

/** `ADDR:PORT`, `[IPV6]:PORT` or `PORT` (on 127.0.0.1). */
export function parseListen(text: string): { hostname: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]\s]+)):(\d{1,5})$/.exec(text) ?? /^()()(\d{1,5})$/.exec(text);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65_535) throw optionError(`--listen "${text}" is not ADDR:PORT (e.g. 127.0.0.1:8025, [::1]:8025, or 127.0.0.1:0 for any free port).`);
  return { hostname: m[1] || m[2] || '127.0.0.1', port };
}

function readFileOption(option: string, file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw optionError(`${option} "${file}" cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}).`);
  }
}

/** The OS user running the console (its login name), else a neutral name. */
function operatorName(): string {
  try {
    return userInfo().username || 'operator';
  } catch {
    return process.env.USER ?? 'operator';
  }
}

export async function runConsoleCommand(flags: ConsoleFlags): Promise<number> {
  const { hostname, port } = parseListen(flags.listen);
  if (!flags.tlsCert !== !flags.tlsKey) throw optionError('--tls-cert and --tls-key go together: give both, or neither.');
  if (!isLoopbackHost(hostname) && !flags.tlsCert && !flags.insecureHttp) {
    throw optionError(
      `--listen ${flags.listen} is reachable from other machines: the access token and every mailbox's status would cross the network in clear. ` +
        'Give --tls-cert FILE --tls-key FILE, or --insecure-http when a trusted network or a TLS proxy in front carries it.',
    );
  }
  let token: string | undefined;
  if (flags.tokenFile) {
    token = readFileOption('--token-file', flags.tokenFile).toString('utf8').trim();
    if (token.length < 16 || /\s/.test(token)) throw optionError(`--token-file "${flags.tokenFile}" must hold one token of at least 16 characters and no spaces.`);
  }
  const tls = flags.tlsCert ? { cert: readFileOption('--tls-cert', flags.tlsCert), key: readFileOption('--tls-key', flags.tlsKey!) } : undefined;
  const { newToken } = await import('../console/access.js');
  const { startConsole } = await import('../console/server.js');
  token ??= newToken();
  registerSecret(token);
  const location = flags.queue ?? flags.state ?? defaultStatePath();
  const operator = flags.operator ?? operatorName();
  if (!operator.trim() || operator.length > 200 || [...operator].some((ch) => ch.charCodeAt(0) < 32 || ch.charCodeAt(0) === 127)) throw optionError('--operator must be a name of 1 to 200 characters with no control character.');
  const controller = new AbortController();
  const release = onInterrupt(controller, 'stopping the console');
  try {
    const running = await startConsole({ location, hostname, port, token, tls, operator, sessionSeconds: flags.sessionHours * 3600, signal: controller.signal });
    process.stderr.write(`reading the ledger ${maskUrl(location)} (read-only)\n`);
    // Printed once; with --token-file the token stays in its file.
    process.stdout.write(flags.tokenFile ? `console: ${running.url}?token=<the token in ${flags.tokenFile}>\n` : `console: ${running.url}?token=${token}\n`);
    await running.closed;
  } finally {
    release();
  }
  return EXIT.OK;
}
