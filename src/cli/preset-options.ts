/**
 * --from-preset / --to-preset: applied to the parsed options of migrate, plan, verify and
 * report before their action runs (src/core/presets.ts merges; this only reads and writes the
 * command's option values). A value the user gave on the command line is never replaced: an
 * option counts as given when commander says its value came from the command line.
 */
import type { Command } from 'commander';
import { ERROR_CODES, MigrateError } from '../core/errors.js';
import { mergePreset, presetByName, PRESET_NAMES, type Preset } from '../core/presets.js';

function preset(name: string | undefined, side: 'from' | 'to'): Preset | undefined {
  if (name === undefined) return undefined;
  const p = presetByName(name.toLowerCase());
  if (!p) throw new MigrateError(ERROR_CODES.CONFIG_OPTION, `--${side}-preset: unknown preset "${name}" (known: ${PRESET_NAMES.join(', ')}; \`mailmover presets\` shows them).`, { scope: 'config' });
  return p;
}

/** Rewrites the options of `cmd` by the presets it was given; does nothing without presets. */
export function applyPresetOptions(cmd: Command): void {
  const o = cmd.opts<{ from: string; to: string; fromPreset?: string; toPreset?: string; connections?: number; maxMessageSize?: number; exclude?: string[]; presetExcludes?: boolean }>();
  const from = preset(o.fromPreset, 'from');
  const to = preset(o.toPreset, 'to');
  if (!from && !to) return;
  const has = (name: string) => cmd.options.some((opt) => opt.attributeName() === name);
  const given = (name: string) => has(name) && cmd.getOptionValueSource(name) === 'cli';
  let merged;
  try {
    merged = mergePreset(from, to, {
      from: o.from,
      to: o.to,
      connections: given('connections') ? o.connections : undefined,
      maxMessageSize: given('maxMessageSize') ? o.maxMessageSize : undefined,
      exclude: o.exclude ?? [],
      presetExcludes: o.presetExcludes,
    });
  } catch (err) {
    throw new MigrateError(ERROR_CODES.CONFIG_OPTION, `${(err as Error).message}.`, { scope: 'config' });
  }
  cmd.setOptionValueWithSource('from', merged.from!, 'cli');
  cmd.setOptionValueWithSource('to', merged.to!, 'cli');
  if (has('connections') && merged.connections !== undefined) cmd.setOptionValueWithSource('connections', merged.connections, given('connections') ? 'cli' : 'default');
  if (has('maxMessageSize') && merged.maxMessageSize !== undefined) cmd.setOptionValueWithSource('maxMessageSize', merged.maxMessageSize, given('maxMessageSize') ? 'cli' : 'default');
  if (has('exclude')) cmd.setOptionValueWithSource('exclude', merged.exclude, 'cli');
}
