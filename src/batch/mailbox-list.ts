/**
 * The batch's mailbox list (CSV, one mailbox per row, with a header):
 *
 * ```
 * source_user,destination_user,source_password,destination_password
 * alice,alice@new.example.com,env:ALICE_OLD,file:/run/secrets/alice-new
 * bob,bob@new.example.com,,
 * ```
 *
 * Only `source_user` is required; `destination_user` defaults to it. Passwords are references
 * (`env:NAME`, `file:PATH`); empty means "use the server's master login from the config". A
 * literal password is accepted but reported as a warning. Problems are reported with the line.
 */
import { readFileSync } from 'node:fs';
import { parse } from 'csv-parse/sync';
import { ERROR_CODES, MigrateError } from '../core/errors.js';

/** One row of the list. */
export interface MailboxRow {
  /** 1-based line in the file (for messages). */
  line: number;
  sourceUser: string;
  destinationUser: string;
  /** References, as written (resolved when the mailbox runs, so one bad row costs that row only). */
  sourcePassword: string | undefined;
  destinationPassword: string | undefined;
}

/** The list, and warnings for the administrator. */
export interface MailboxList {
  rows: MailboxRow[];
  warnings: string[];
}

const COLUMNS = ['source_user', 'destination_user', 'source_password', 'destination_password'];

/** Reads and checks the CSV file. Throws MM-BATCH-CSV with the line on a problem. */
export function loadMailboxList(file: string): MailboxList {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw fail(`${file}: cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  let records: { record: string[]; info: { lines: number } }[];
  try {
    records = parse(text, { info: true, relax_column_count: false, skip_empty_lines: true, trim: true, bom: true, comment: '#' }) as unknown as { record: string[]; info: { lines: number } }[];
  } catch (err) {
    const e = err as { lines?: number; message: string };
    throw fail(`${file}${e.lines ? `:${e.lines}` : ''}: not valid CSV: ${e.message}`);
  }
  if (records.length === 0) throw fail(`${file}: empty; the first line must name the columns (${COLUMNS.join(',')})`);
  const header = records[0]!.record.map((h) => h.toLowerCase());
  const unknown = header.filter((h) => !COLUMNS.includes(h));
  if (unknown.length > 0 || !header.includes('source_user')) {
    throw fail(`${file}:${records[0]!.info.lines}: the header must name the columns (source_user required; known: ${COLUMNS.join(', ')})${unknown.length ? `; unknown: ${unknown.join(', ')}` : ''}`);
  }
  const col = (r: string[], name: string) => {
    const i = header.indexOf(name);
    return i >= 0 && r[i] !== '' ? r[i] : undefined;
  };
  const rows: MailboxRow[] = [];
  const warnings: string[] = [];
  const seen = new Map<string, number>();
  for (const { record, info } of records.slice(1)) {
    const line = info.lines;
    const sourceUser = col(record, 'source_user');
    if (!sourceUser) throw fail(`${file}:${line}: source_user is empty`);
    if (/[\s\0]/.test(sourceUser)) throw fail(`${file}:${line}: source_user "${sourceUser}" contains whitespace`);
    const destinationUser = col(record, 'destination_user') ?? sourceUser;
    const key = `${sourceUser}\0${destinationUser}`;
    if (seen.has(key)) throw fail(`${file}:${line}: the mailbox ${sourceUser} -> ${destinationUser} is already on line ${seen.get(key)}`);
    seen.set(key, line);
    const sourcePassword = col(record, 'source_password');
    const destinationPassword = col(record, 'destination_password');
    for (const [name, ref] of [['source_password', sourcePassword], ['destination_password', destinationPassword]] as const) {
      if (ref !== undefined && !ref.startsWith('env:') && !ref.startsWith('file:')) {
        warnings.push(`${file}:${line}: ${name} is written in the file; use env:NAME or file:PATH so that passwords are not kept in the list`);
      }
    }
    rows.push({ line, sourceUser, destinationUser, sourcePassword, destinationPassword });
  }
  return { rows, warnings };
}

function fail(message: string): MigrateError {
  return new MigrateError(ERROR_CODES.BATCH_CSV, message, { scope: 'config' });
}
