/**
 * Where mailmover keeps its files by default (XDG base directories).
 */
import { homedir } from 'node:os';
import path from 'node:path';

/** The directory of mailmover's own state: $XDG_STATE_HOME/mailmover, or ~/.local/state/mailmover. */
export function stateHome(env: NodeJS.ProcessEnv = process.env): string {
  const base = env.XDG_STATE_HOME && path.isAbsolute(env.XDG_STATE_HOME) ? env.XDG_STATE_HOME : path.join(homedir(), '.local', 'state');
  return path.join(base, 'mailmover');
}

/** The default ledger file: $XDG_STATE_HOME/mailmover/state.db, or ~/.local/state/mailmover/state.db. */
export function defaultStatePath(env: NodeJS.ProcessEnv = process.env): string {
  return path.join(stateHome(env), 'state.db');
}
