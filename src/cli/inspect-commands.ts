/**
 * `mailmover verify` and `mailmover report`: read-only looks at a mailbox pair and at the ledger.
 */
import { parseEndpoint } from '../core/endpoint.js';
import { mailboxName } from '../job/migrate.js';
import { checkVerifyModes, verify, type VerifyReport } from '../job/verify.js';
import { defaultStatePath } from '../state/ledger.js';
import { formatVerifySummary, terminalText } from './output.js';
import { EXIT, exitForError } from './exit-codes.js';
import { type VerifyFlags, filterOption, folderOptions } from './options.js';
import { hintFor, openLog, onInterrupt, sidePassword, sideTokens, openRecorded, writeReport } from './common.js';

/** `mailmover report`: the audit trail the ledger keeps for a mailbox. */
export async function runReport(flags: { from: string; to: string; fromAuthzid?: string; toAuthzid?: string; state?: string; json?: boolean }): Promise<number> {
  // Named as migrate names them in the ledger (with the user acted as, for authzid logins).
  const from = { display: mailboxName(parseEndpoint(flags.from, 'from').display, flags.fromAuthzid) };
  const to = { display: mailboxName(parseEndpoint(flags.to, 'to').display, flags.toAuthzid) };
  const ledger = await openRecorded(flags.state ?? defaultStatePath(), 'no migration with a ledger has run, or pass --state FILE');
  const file = ledger.location;
  try {
    const folders = await ledger.folders(from.display, to.display);
    const skipped = await ledger.skippedItems(from.display, to.display);
    if (flags.json) {
      process.stdout.write(JSON.stringify({ source: from.display, destination: to.display, state: file, folders, skipped }, null, 2) + '\n');
    } else {
      const lines = [`${from.display} -> ${to.display} (${file})`];
      if (folders.length === 0) lines.push('No record of this mailbox.');
      for (const f of folders) {
        lines.push(`${terminalText(f.source)} -> ${terminalText(f.destination)}: ${f.copies} copied${f.skipped ? `, ${f.skipped} skipped` : ''}${f.intents ? `, ${f.intents} in flight when a run stopped` : ''}; last complete pass ${f.syncedAt ?? 'none'}`);
      }
      for (const k of skipped) lines.push(`skipped: "${terminalText(k.folder)}" UID ${k.sourceUid}: ${k.code} ${terminalText(k.reason)}${k.attempts ? ` (${k.attempts} tries)` : ''} at ${k.at}`);
      process.stdout.write(lines.join('\n') + '\n');
    }
  } finally {
    await ledger.close();
  }
  return EXIT.OK;
}

export async function runVerify(flags: VerifyFlags): Promise<number> {
  checkVerifyModes(flags); // before any password prompt
  const from = parseEndpoint(flags.from, 'from');
  const to = parseEndpoint(flags.to, 'to');
  const fromPassword = await sidePassword('from', flags, from.user);
  const toPassword = await sidePassword('to', flags, to.user);
  const logger = openLog(flags.log);
  const controller = new AbortController();
  const release = onInterrupt(controller, 'stopping the comparison');
  let report: VerifyReport;
  try {
    report = await verify({
      from: { url: from, password: fromPassword, ...sideTokens('from', flags), ...(flags.fromAuthzid ? { authzid: flags.fromAuthzid } : {}), tlsInsecure: !!flags.fromTlsInsecure, allowPlaintext: !!flags.allowPlaintext },
      to: { url: to, password: toPassword, ...sideTokens('to', flags), ...(flags.toAuthzid ? { authzid: flags.toAuthzid } : {}), tlsInsecure: !!flags.toTlsInsecure, allowPlaintext: !!flags.allowPlaintext },
      deep: !!flags.deep,
      strict: !!flags.strict,
      finished: !!flags.finished,
      ...(flags.gmailLabels !== undefined ? { gmailLabels: flags.gmailLabels } : {}),
      ...(flags.labelPriority !== undefined ? { labelPriority: flags.labelPriority } : {}),
      ...filterOption(flags),
      folders: folderOptions(flags),
      separatorSubstitute: flags.separatorSubstitute,
      connectTimeoutSeconds: flags.timeout,
      signal: controller.signal,
      ...(logger ? { logger } : {}),
      onFolder: (f) => {
        if (!flags.json && !process.stderr.isTTY) process.stderr.write(`verified "${terminalText(f.source)}": ${f.state}\n`);
      },
    });
  } finally {
    release();
  }
  if (flags.report) await writeReport(flags.report, report);
  if (!flags.json && report.error && report.folders.length === 0) {
    // Nothing was compared (connect, login, listing): the error alone, not an empty table.
    process.stderr.write(`mailmover: ${report.error.code}: ${terminalText(report.error.message)}\nhint: ${hintFor(report.error.code)}\n`);
  } else process.stdout.write(flags.json ? JSON.stringify(report, null, 2) + '\n' : formatVerifySummary(report));
  logger?.flush();
  // The verdict decides: perfect or good is 0, investigate 1, poor the failure's own class.
  return report.status === 'match' ? EXIT.OK : report.status === 'failed' ? exitForError(report.error?.code) : EXIT.FAILED;
}
