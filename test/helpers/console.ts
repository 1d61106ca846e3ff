/**
 * Starts the built `mailmover console` as a separate process (the way a user does), waits for the
 * URL it prints, and gives a session cookie for direct HTTP requests.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { CLI } from './cli.js';

export interface RunningConsole {
  /** The printed URL, with the token. */
  url: string;
  /** The URL without the token. */
  base: string;
  token: string;
  child: ChildProcess;
  stderr(): string;
  /** A session cookie (`mm_console=...`) from the token exchange. */
  login(): Promise<string>;
  stop(): Promise<void>;
}

export function startConsole(args: string[], env: Record<string, string> = {}): Promise<RunningConsole> {
  const child = spawn(process.execPath, [CLI, 'console', '--listen', '127.0.0.1:0', ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the console did not start: ${err}`)), 60_000);
    child.on('exit', (code) => reject(new Error(`the console exited (${code}): ${err}`)));
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /console: (\S+)\n/.exec(out);
      if (!m) return;
      clearTimeout(timer);
      const url = m[1]!;
      const base = url.replace(/\?.*$/, '');
      resolve({
        url,
        base,
        token: new URL(url).searchParams.get('token') ?? '',
        child,
        stderr: () => err,
        async login() {
          const res = await fetch(url, { redirect: 'manual' });
          const cookie = /^(mm_console=[^;]+)/.exec(res.headers.get('set-cookie') ?? '')?.[1];
          if (res.status !== 303 || !cookie) throw new Error(`no session: ${res.status}`);
          return cookie;
        },
        stop: () =>
          new Promise<void>((done) => {
            if (child.exitCode !== null) return done();
            child.once('exit', () => done());
            child.kill('SIGTERM');
          }),
      });
    });
  });
}
