/**
 * Runs one tool process with a timeout and measures it: wall seconds (monotonic clock around
 * spawn..exit) and peak RSS of the tool process.
 *
 * Peak RSS and CPU time come from GNU time (`/usr/bin/time -f '%M %U %S' -o FILE`: the ru_maxrss
 * of the process it waits for, in KiB, and its user and system CPU seconds, which include the
 * children it waited for). Without GNU time the fallback polls VmHWM in /proc/PID/status every 20 ms
 * (the high-water mark itself is exact, but the last poll may come a little before the end).
 *
 * Every child is started in its own process group (detached) and only that group is signalled,
 * so a timeout or Ctrl-C kills exactly the processes we started and nothing else.
 */
import { spawn } from 'node:child_process';
import { existsSync, openSync, closeSync } from 'node:fs';
import { readFile } from 'node:fs/promises';

export const GNU_TIME = '/usr/bin/time';

export type RssMethod = 'gnu-time %M (ru_maxrss)' | '/proc/PID/status VmHWM polled every 20 ms';

export function rssMethod(): RssMethod {
  return existsSync(GNU_TIME) ? 'gnu-time %M (ru_maxrss)' : '/proc/PID/status VmHWM polled every 20 ms';
}

export interface RunResult {
  wallSeconds: number;
  exitCode: number | null;
  signal: string | null;
  timedOut: boolean;
  peakRssKiB: number | null;
  /** User + system CPU seconds of the tool process and the children it waited for (GNU time %U + %S); null without GNU time. */
  cpuSeconds: number | null;
}

const liveGroups = new Set<number>();

/** SIGKILL to every process group we started that is still running (for Ctrl-C / exit). */
export function killAllChildren(): void {
  for (const pgid of liveGroups) {
    try {
      process.kill(-pgid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
  liveGroups.clear();
}

export interface RunOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  timeoutMs: number;
  stdoutFile: string;
  stderrFile: string;
  /** File GNU time writes to. */
  timeFile: string;
}

export async function runMeasured(cmd: string, args: string[], opts: RunOptions): Promise<RunResult> {
  const useTime = existsSync(GNU_TIME);
  const out = openSync(opts.stdoutFile, 'w');
  const err = openSync(opts.stderrFile, 'w');
  const started = performance.now();
  const child = useTime
    ? spawn(GNU_TIME, ['-f', '%M %U %S', '-o', opts.timeFile, cmd, ...args], { cwd: opts.cwd, env: opts.env, detached: true, stdio: ['ignore', out, err] })
    : spawn(cmd, args, { cwd: opts.cwd, env: opts.env, detached: true, stdio: ['ignore', out, err] });
  closeSync(out);
  closeSync(err);
  const pid = child.pid;
  if (pid) liveGroups.add(pid);
  let timedOut = false;
  let killTimer: NodeJS.Timeout | undefined;
  const timer = setTimeout(() => {
    timedOut = true;
    if (!pid) return;
    try {
      process.kill(-pid, 'SIGTERM');
    } catch {
      /* gone */
    }
    killTimer = setTimeout(() => {
      try {
        process.kill(-pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }, 5000);
  }, opts.timeoutMs);
  let hwm = 0;
  const poller =
    !useTime && pid
      ? setInterval(() => {
          readFile(`/proc/${pid}/status`, 'utf8')
            .then((s) => {
              const m = /VmHWM:\s+(\d+)\s+kB/.exec(s);
              if (m) hwm = Math.max(hwm, Number(m[1]));
            })
            .catch(() => undefined);
        }, 20)
      : undefined;
  const { code, signal } = await new Promise<{ code: number | null; signal: string | null }>((resolve) => {
    child.once('error', (e) => resolve({ code: null, signal: String(e) }));
    child.once('exit', (c, s) => resolve({ code: c, signal: s }));
  });
  const wallSeconds = (performance.now() - started) / 1000;
  clearTimeout(timer);
  if (killTimer) clearTimeout(killTimer);
  if (poller) clearInterval(poller);
  if (pid) {
    if (timedOut) {
      // the group leader is gone; a tool that ignored SIGTERM may still sit in our group
      try {
        process.kill(-pid, 'SIGKILL');
      } catch {
        /* the group is empty */
      }
    }
    liveGroups.delete(pid);
  }
  let peakRssKiB: number | null = hwm || null;
  let cpuSeconds: number | null = null;
  if (useTime) {
    peakRssKiB = null;
    try {
      // GNU time may write "Command exited with non-zero status N" first; "%M %U %S" is the last line
      const lines = (await readFile(opts.timeFile, 'utf8')).trim().split('\n');
      const m = /^(\d+) (\d+(?:\.\d+)?) (\d+(?:\.\d+)?)$/.exec(lines[lines.length - 1] ?? '');
      if (m) {
        peakRssKiB = Number(m[1]);
        cpuSeconds = Number(m[2]) + Number(m[3]);
      }
    } catch {
      /* no time file: both unknown */
    }
  }
  return { wallSeconds, exitCode: code, signal, timedOut, peakRssKiB, cpuSeconds };
}

/** Last `bytes` of a file (for error messages). */
export async function tailOf(file: string, bytes = 1500): Promise<string> {
  try {
    return (await readFile(file, 'utf8')).slice(-bytes).trim();
  } catch {
    return '';
  }
}
