/**
 * A mailbox's report file (the JSON a batch writes per mailbox, named in its batch_job row) for
 * the console: read with a size cap, passwords in URLs masked, and rendered as Markdown and CSV
 * for people and spreadsheets. Everything in it came from a mail server or a mailbox: the
 * Markdown escapes HTML and table syntax, the CSV quotes every cell and defuses formulas.
 */
import { readFile, stat } from 'node:fs/promises';
import type { MigrationReport } from '../job/report.js';
import { shown } from './ledger-view.js';

/** The largest report file the console serves. */
const MAX_BYTES = 64 * 1024 * 1024;

/** A report read, or why not. */
export type ReportFile = { ok: true; text: string; report: MigrationReport } | { ok: false; reason: string };

/** Reads a report file named by a batch row. */
export async function readReport(file: string | undefined): Promise<ReportFile> {
  if (!file) return { ok: false, reason: 'the ledger names no report file for this mailbox' };
  try {
    const size = (await stat(file)).size;
    if (size > MAX_BYTES) return { ok: false, reason: `the report file "${file}" is larger than ${MAX_BYTES >> 20} MiB` };
    const text = shown(await readFile(file, 'utf8'));
    return { ok: true, text, report: JSON.parse(text) as MigrationReport };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return { ok: false, reason: code === 'ENOENT' ? `the report file "${file}" is not on this machine` : `the report file "${file}" cannot be read (${code ?? (err as Error).message})` };
  }
}

/** A table cell: no line breaks, HTML and pipes escaped. */
function cell(v: unknown): string {
  return String(v ?? '')
    .replace(/[\r\n]+/g, ' ')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/\\/g, '\\\\')
    .replace(/\|/g, '\\|')
    .replace(/`/g, '\\`');
}

/** The report for people: status, totals, folders and skipped items. */
export function reportMarkdown(r: MigrationReport): string {
  const out = [
    `# Mailbox report: ${cell(r.source?.url)}`,
    '',
    `- destination: ${cell(r.destination?.url)}`,
    `- status: ${cell(r.status)}`,
    `- started: ${cell(r.startedAt)}, finished: ${cell(r.finishedAt)}`,
    `- copied: ${cell(r.totals?.copied)}, skipped: ${cell(r.totals?.skipped)}`,
  ];
  if (r.error) out.push(`- error: ${cell(r.error.code)}: ${cell(r.error.message)}`);
  out.push('', '## Folders', '', '| source | destination | copied | already there | skipped | state | error |', '| --- | --- | --- | --- | --- | --- | --- |');
  for (const f of r.folders ?? []) out.push(`| ${cell(f.source)} | ${cell(f.destination)} | ${cell(f.copied)} | ${cell(f.alreadyPresent)} | ${cell(f.skipped)} | ${cell(f.state)} | ${cell(f.error ? `${f.error.code}: ${f.error.message}` : '')} |`);
  out.push('', '## Skipped items', '');
  if ((r.items ?? []).length === 0) out.push('None.');
  else {
    out.push('| folder | UID | Message-ID | size | code | reason |', '| --- | --- | --- | --- | --- | --- |');
    for (const i of r.items) out.push(`| ${cell(i.folder)} | ${cell(i.uid)} | ${cell(i.messageId)} | ${cell(i.size)} | ${cell(i.code)} | ${cell(i.reason)} |`);
  }
  return out.join('\n') + '\n';
}

/** A CSV field: always quoted; a leading = + - @ (a formula to a spreadsheet) is prefixed with '. */
function field(v: unknown): string {
  let s = String(v ?? '');
  if (/^[=+\-@\t\r]/.test(s)) s = `'${s}`;
  return `"${s.replace(/"/g, '""')}"`;
}

/** The skipped items as CSV (one row per item), for a spreadsheet. */
export function reportCsv(r: MigrationReport): string {
  const rows = [['folder', 'uid', 'message_id', 'size', 'code', 'reason', 'attempts']];
  for (const i of r.items ?? []) rows.push([i.folder, String(i.uid), i.messageId ?? '', String(i.size), i.code, i.reason, i.attempts === undefined ? '' : String(i.attempts)]);
  return rows.map((row) => row.map(field).join(',')).join('\r\n') + '\r\n';
}
