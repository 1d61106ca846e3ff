/**
 * `mailmover presets`: what each provider preset sets (src/core/presets.ts), as a table or JSON.
 */
import { PRESETS, PRESET_NAMES, type Preset } from '../core/presets.js';

const size = (n: number | undefined) => (n === undefined ? '-' : n % (1024 * 1024) === 0 ? `${n / (1024 * 1024)} MiB` : `${Math.round(n / 1e6)} MB`);
const budget = (p: Preset) => (p.dailyBudget ? `down ${size(p.dailyBudget.downloadBytes)}/day, up ${size(p.dailyBudget.uploadBytes)}/day (enforced per account with a state ledger)` : '-');

/** The presets as text: one block per preset, the values of the table rows aligned. */
export function formatPresets(): string {
  const out: string[] = [];
  for (const name of PRESET_NAMES) {
    const p = PRESETS[name];
    const rows: [string, string][] = [
      ['server', p.host ? `${p.protocol}://${p.host}:${p.port}` : `${p.protocol}://YOUR-SERVER:${p.port} (give the host in --from/--to)`],
      ['sign-in', p.signIn === 'oauth' ? `OAuth 2.0 (mailmover login --provider ${p.oauthProvider}, then --from-oauth/--to-oauth)` : p.signIn === 'app-password' ? 'app password (--from-password-file/--to-password-file)' : 'password'],
      ['item size limit', `${size(p.maxMessageSize)} (as destination: larger messages are skipped and reported)`],
      ['connections', String(p.connections)],
      ['daily budget', budget(p)],
      ['left out', p.excludeFolders.length > 0 ? p.excludeFolders.join('  ') : '-'],
      ...p.notes.map((n): [string, string] => ['note', n]),
    ];
    out.push(`${p.name}: ${p.title}`);
    for (const [k, v] of rows) out.push(`  ${k.padEnd(16)}${v}`);
    out.push('');
  }
  out.push('Every value is a default: --from/--to with a full URL, --connections, --max-message-size and --no-preset-excludes override it.');
  return out.join('\n') + '\n';
}

/** The presets as JSON (sizes in bytes). */
export function presetsJson(): string {
  return JSON.stringify(PRESET_NAMES.map((n) => PRESETS[n]), null, 2) + '\n';
}
