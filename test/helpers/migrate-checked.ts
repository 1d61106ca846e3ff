/**
 * The library side of the invariant "a complete migration verifies": {@link migrateChecked} runs
 * `migrate()` and, when the report says 'complete', `verify()` on the same pair with the same
 * folder rules and message filter, and throws unless verify's status is 'match'. Integration tests
 * call it wherever the scenario is a normal migration; the others opt out with a reason.
 */
import { migrate, verify, type MigrateOptions, type MigrationReport, type VerifyOptions } from '../../src/index.js';

/** How {@link migrateChecked} treats a complete migration. */
export interface MigrateCheck {
  /** Why verify must not follow this migration (the two legitimately cannot agree); never empty. */
  skipVerify?: string;
}

/** The verify options that hold the destination to what `options` migrated. */
export function verifyOptionsFor(options: MigrateOptions): VerifyOptions {
  return {
    from: options.from,
    to: options.to,
    ...(options.folders ? { folders: options.folders } : {}),
    ...(options.separatorSubstitute !== undefined ? { separatorSubstitute: options.separatorSubstitute } : {}),
    ...(options.connectTimeoutSeconds !== undefined ? { connectTimeoutSeconds: options.connectTimeoutSeconds } : {}),
    ...(options.messageFilter ? { messageFilter: options.messageFilter } : {}),
    // A move empties the source of what it proved at the destination: only what is left must be there.
    ...(options.deleteSource ? { finished: true } : {}),
    ...(options.signal ? { signal: options.signal } : {}),
  };
}

/** `migrate(options)`, then (when complete and not a dry run) `verify()` of the same pair, which must match. */
export async function migrateChecked(options: MigrateOptions, check: MigrateCheck = {}): Promise<MigrationReport> {
  const report = await migrate(options);
  if (check.skipVerify !== undefined) {
    if (!check.skipVerify.trim()) throw new Error('migrateChecked: skipVerify needs a reason');
    return report;
  }
  if (report.status !== 'complete' || options.dryRun) return report;
  const v = await verify(verifyOptionsFor(options));
  if (v.status !== 'match') {
    const folders = v.folders.filter((f) => f.state !== 'match').map((f) => ({ source: f.source, state: f.state, error: f.error, differences: f.differences.slice(0, 10) }));
    throw new Error(
      `migrate() was complete but verify() says '${v.status}' (verdict ${v.verdict}): the invariant "complete => match" does not hold\n` +
        JSON.stringify({ totals: v.totals, error: v.error, folders, destinationOnly: v.destinationOnly }, null, 2),
    );
  }
  return report;
}
