/**
 * Server CPU: the CPU seconds one Dovecot instance (ours, started by the bench) has used so far,
 * read from /proc, so that a run's server cost is `after - before`.
 *
 * Every process of the instance is in the master's process group (the master is started as the
 * leader of a new group, and Dovecot does not move its children out of it). The sum is, over the
 * live processes of that group, utime + stime (the process itself) + cutime + cstime (its children
 * that exited and were waited for). An imap process that ends during a run is reaped by the master,
 * so its CPU moves from its own entry into the master's cutime/cstime and is counted exactly once.
 * (The few milliseconds between a child's exit and its reaping are the only gap.)
 *
 * Linux only (/proc); elsewhere the value is null and the bench prints "-".
 */
import { spawnSync } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';

let clockTicks: number | undefined;

/** USER_HZ, the unit of the times in /proc/PID/stat (100 on every Linux we know, asked anyway). */
function ticksPerSecond(): number {
  if (clockTicks === undefined) {
    const out = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout?.trim();
    const n = Number(out);
    clockTicks = Number.isFinite(n) && n > 0 ? n : 100;
  }
  return clockTicks;
}

/** The fields of /proc/PID/stat after the command name (which may contain spaces and parentheses). */
function statFields(text: string): string[] | undefined {
  const close = text.lastIndexOf(')');
  return close < 0 ? undefined : text.slice(close + 2).trim().split(' ');
}

/** CPU seconds of the process group `pgid` (see the module comment), or null when /proc cannot tell. */
export async function groupCpuSeconds(pgid: number): Promise<number | null> {
  let entries: string[];
  try {
    entries = await readdir('/proc');
  } catch {
    return null;
  }
  let ticks = 0;
  let seen = false;
  for (const e of entries) {
    if (!/^\d+$/.test(e)) continue;
    let text: string;
    try {
      text = await readFile(`/proc/${e}/stat`, 'utf8');
    } catch {
      continue; // gone meanwhile
    }
    const f = statFields(text);
    // after ')': [0] state, [1] ppid, [2] pgrp, ..., [11] utime, [12] stime, [13] cutime, [14] cstime
    if (!f || Number(f[2]) !== pgid) continue;
    seen = true;
    ticks += Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]);
  }
  return seen ? ticks / ticksPerSecond() : null;
}
