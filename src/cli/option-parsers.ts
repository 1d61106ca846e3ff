/**
 * Parsers for command-line option values. Each throws a MigrateError (MM-CONFIG-OPTION, exit 2)
 * with the option's name and the value it got.
 */
import { ERROR_CODES, MigrateError } from '../core/errors.js';

/** Parses a size such as 25M, 1.5G, 10MB, 500k or 1048576 (binary units: 1K = 1024 bytes). */
export function parseSize(name: string) {
  return (value: string): number => {
    const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b)?\s*$/i.exec(value);
    const n = m ? Math.round(Number(m[1]) * 1024 ** ' kmgt'.indexOf((m[2] || ' ').toLowerCase())) : NaN;
    if (!m || !Number.isSafeInteger(n) || n < 1) {
      throw new MigrateError(ERROR_CODES.CONFIG_OPTION, `${name} takes a size such as 25M, 1G or a number of bytes (got "${value}").`, { scope: 'config' });
    }
    return n;
  };
}

/** A number option within [min, max]. */
export function numberOption(name: string, min: number, max: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isFinite(n) || n < min || n > max || value.trim() === '') {
      throw new MigrateError(ERROR_CODES.CONFIG_OPTION, `${name} takes a number from ${min} to ${max} (got "${value}").`, { scope: 'config' });
    }
    return n;
  };
}

/** A whole-number option within [min, max]. */
export function intOption(name: string, min: number, max: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min || n > max) {
      throw new MigrateError(ERROR_CODES.CONFIG_OPTION, `${name} takes a whole number from ${min} to ${max} (got "${value}").`, { scope: 'config' });
    }
    return n;
  };
}

/** A calendar date (YYYY-MM-DD, taken as midnight UTC) or a full ISO 8601 time. */
export function dateOption(name: string) {
  return (value: string): Date => {
    const d = /^\d{4}-\d{2}-\d{2}$/.test(value.trim()) ? new Date(`${value.trim()}T00:00:00Z`) : /^\d{4}-\d{2}-\d{2}T/.test(value.trim()) ? new Date(value.trim()) : new Date(NaN);
    if (Number.isNaN(d.getTime())) throw new MigrateError(ERROR_CODES.CONFIG_OPTION, `${name} takes a date such as 2024-01-31 (got "${value}").`, { scope: 'config' });
    return d;
  };
}

/** A duration such as 90s, 2m, 12h or 1d (a bare number is seconds), in ms; from 1 s to 30 days. */
export function durationOption(name: string) {
  return (value: string): number => {
    const ms = parseDuration(value);
    if (ms === undefined) throw new MigrateError(ERROR_CODES.CONFIG_OPTION, `${name} takes a duration such as 90s, 2m, 12h or 1d, from 1 s to 30 days (got "${value}").`, { scope: 'config' });
    return ms;
  };
}

/** Parses a duration (90s, 2m, 12h, 1d; a bare number is seconds) into ms; undefined when it is not one, or outside 1 s .. 30 days. */
export function parseDuration(value: string | number): number | undefined {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(s|m|min|h|d)?\s*$/i.exec(String(value));
  if (!m) return undefined;
  const unit = { s: 1000, m: 60_000, min: 60_000, h: 3600_000, d: 86_400_000 }[(m[2] ?? 's').toLowerCase() as 's'];
  const ms = Math.round(Number(m[1]) * unit);
  return ms >= 1000 && ms <= 30 * 86_400_000 ? ms : undefined;
}
