/**
 * Runs the built CLI (dist/cli/main.js) as a separate process, the way a user does, and collects
 * its exit code and output. Tests never import the CLI module: they drive the real binary.
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The built CLI entry point. */
export const CLI = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));

/** What a CLI run produced. */
export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/**
 * Where CLI runs keep their default state ledger: a private directory per test process (never the
 * machine's ~/.local/state). Removed when the process exits.
 */
const STATE_HOME = mkdtempSync(path.join(os.tmpdir(), 'mailmover-state-'));
process.once('exit', () => rmSync(STATE_HOME, { recursive: true, force: true }));

/** How {@link runCli} treats a migrate that exits 0. */
export interface CliCheck {
  /**
   * Why `verify` must not be run after this migrate: a scenario in which the two legitimately
   * cannot agree (a server scripted to change between calls, a scan that moved messages away).
   * Required wording, never an empty string: the opt-out is explicit.
   */
  skipVerify?: string;
}

/**
 * Runs `mailmover ...args` with extra environment variables; kills it after `timeoutMs`.
 *
 * The invariant "migrate exit 0 means verify exit 0": when `args` is a migrate that copies (see
 * {@link verifyArgsFor}) and it exits 0, `verify` is run on the same pair with the options of
 * `args` that verify takes, in the same environment (passwords from the same variables and files),
 * and this throws, with both outputs, unless verify exits 0 too. `check.skipVerify` opts out.
 */
export async function runCli(args: string[], env: Record<string, string | undefined> = {}, timeoutMs = 180_000, check: CliCheck = {}): Promise<CliResult> {
  const run = await spawnCli(args, env, timeoutMs);
  if (run.code !== 0) return run;
  if (check.skipVerify !== undefined) {
    if (!check.skipVerify.trim()) throw new Error('runCli: skipVerify needs a reason');
    return run;
  }
  const verifyArgs = verifyArgsFor(args);
  if (!verifyArgs) return run;
  const v = await spawnCli(verifyArgs, env, timeoutMs);
  if (v.code !== 0) {
    throw new Error(
      `migrate exited 0 but verify exited ${v.code}: the invariant "migrate exit 0 => verify exit 0" does not hold\n` +
        `migrate ${JSON.stringify(args.slice(1))}\n--- migrate stdout ---\n${run.stdout}\n--- migrate stderr ---\n${run.stderr}\n` +
        `verify ${JSON.stringify(verifyArgs.slice(1))}\n--- verify stdout ---\n${v.stdout}\n--- verify stderr ---\n${v.stderr}`,
    );
  }
  return run;
}

/**
 * Migrate runs after which there is nothing for verify to hold the destination to, each with its
 * reason. Everything else that exits 0 is verified.
 */
const NOT_VERIFIED: Record<string, string> = {
  '--dry-run': 'a dry run changes nothing',
  '--dry': 'a dry run changes nothing',
  '--watch': 'a watch runs until stopped and exits with the interruption code',
  '--just-folders': 'copies no message by design, and verify has no such filter',
  '--help': 'prints help only',
  '--version': 'prints the version only',
};

/** Output options of migrate that must not reach verify (it would overwrite the report or the log). */
const OUTPUT_ONLY = new Set(['--report', '--json', '--log', '--no-progress']);

/**
 * The verify command for a migrate command line, or undefined when `args` is no migrate to verify:
 * the options verify takes, with their values, in their order (folder rules and message filters
 * included, so that it pairs and filters as migrate did); `--delete-source` (a move that empties
 * the source) is verified with `--finished`. Which options take a value is read from the built
 * CLI's own --help, so the list cannot drift from the program.
 */
export function verifyArgsFor(args: readonly string[]): string[] | undefined {
  if (args[0] !== 'migrate') return undefined;
  if (args.some((a) => NOT_VERIFIED[a.split('=')[0]!] !== undefined)) return undefined;
  const migrateOptions = optionsOf('migrate');
  const verifyOptions = optionsOf('verify');
  const out = ['verify'];
  let deleteSource = false;
  for (let i = 1; i < args.length; i++) {
    const arg = args[i]!;
    if (!arg.startsWith('--')) continue; // migrate takes no operand
    const name = arg.split('=')[0]!;
    const takesValue = migrateOptions.get(name) === 'value' && !arg.includes('=');
    const value = takesValue ? args[++i] : undefined;
    if (name === '--delete-source') deleteSource = true;
    if (!verifyOptions.has(name) || OUTPUT_ONLY.has(name)) continue;
    out.push(arg, ...(value !== undefined ? [value] : []));
  }
  if (deleteSource) out.push('--finished');
  return out;
}

const helpCache = new Map<string, Map<string, 'flag' | 'value' | 'optional'>>();

/** A command's long options (from its --help) and whether each takes a value. */
function optionsOf(command: string): Map<string, 'flag' | 'value' | 'optional'> {
  let options = helpCache.get(command);
  if (options) return options;
  const help = execFileSync(process.execPath, [CLI, command, '--help'], { encoding: 'utf8' });
  options = new Map();
  for (const m of help.matchAll(/^ {2}(?:-\w, )?(--[a-z0-9-]+)( <| \[)?/gm)) options.set(m[1]!, m[2] === ' <' ? 'value' : m[2] ? 'optional' : 'flag');
  helpCache.set(command, options);
  return options;
}

/** Runs the CLI once, as a child process. */
function spawnCli(args: string[], env: Record<string, string | undefined>, timeoutMs: number): Promise<CliResult> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const merged: Record<string, string> = {};
    for (const [k, v] of Object.entries({ ...process.env, XDG_STATE_HOME: STATE_HOME, MAILMOVER_FROM_PASSWORD: undefined, MAILMOVER_TO_PASSWORD: undefined, ...env })) {
      if (v !== undefined) merged[k] = v;
    }
    const child = spawn(process.execPath, [CLI, ...args], {
      env: merged,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, ms: Date.now() - started });
    });
  });
}
