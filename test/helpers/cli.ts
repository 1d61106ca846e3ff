/**
 * Runs the built CLI (dist/cli/main.js) as a separate process, the way a user does, and collects
 * its exit code and output. Tests never import the CLI module: they drive the real binary.
 */
import { spawn } from 'node:child_process';
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

/** Runs `mailmover ...args` with extra environment variables; kills it after `timeoutMs`. */
export function runCli(args: string[], env: Record<string, string | undefined> = {}, timeoutMs = 180_000): Promise<CliResult> {
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
