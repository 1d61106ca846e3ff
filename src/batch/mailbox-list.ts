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
 * literal password is accepted but reported as a warning (and refused by `batch run --queue`,
 * whose jobs are stored in PostgreSQL). Problems are reported with the line, every bad row at once.
 * A line starting with `#` is a comment; `"#alice"` (quoted) is a user.
 */
import { readFileSync } from 'node:fs';
import { parse } from 'csv-parse/sync';
import { ERROR_CODES, MigrateError } from '../core/errors.js';
import { isReference } from './secrets.js';

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
  /** The file it was read from (for messages). */
  file?: string;
}

const COLUMNS = ['source_user', 'destination_user', 'source_password', 'destination_password'];

/** At most this many bad rows are listed in one error; the rest are counted. */
const MAX_LISTED = 50;

/**
 * Reads and checks the CSV file in full. Throws MM-BATCH-CSV listing every bad row (up to 50,
 * then "and N more"), each with its line.
 *
 * Comments: a line is a comment when it starts with `#` (after blanks); a `#` anywhere else is
 * data, and a quoted `"#alice"` at the start of a line is a user, not a comment.
 */
export function loadMailboxList(file: string): MailboxList {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw fail(`${file}: cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  let records: { record: string[]; info: { lines: number } }[];
  try {
    // comment_no_infix: only a whole line is a comment; a "#" inside a field (a user "al#ice", a
    // literal password) is data. Column counts are checked below, so every bad row is reported.
    records = parse(text, { info: true, relax_column_count: true, skip_empty_lines: true, trim: true, bom: true, comment: '#', comment_no_infix: true }) as unknown as { record: string[]; info: { lines: number } }[];
  } catch (err) {
    const e = err as { lines?: number; message: string };
    throw fail(`${file}${e.lines ? `:${e.lines}` : ''}: not valid CSV: ${e.message}`);
  }
  if (records.length === 0) throw fail(`${file}: empty; the first line must name the columns (${COLUMNS.join(',')})`);
  const headerLine = records[0]!.info.lines;
  const header = records[0]!.record.map((h) => h.toLowerCase());
  const unknown = header.filter((h) => !COLUMNS.includes(h));
  if (unknown.length > 0 || !header.includes('source_user')) {
    throw fail(`${file}:${headerLine}: the header must name the columns (source_user required; known: ${COLUMNS.join(', ')})${unknown.length ? `; unknown: ${unknown.join(', ')}` : ''}`);
  }
  const twice = header.find((h, i) => header.indexOf(h) !== i);
  if (twice) throw fail(`${file}:${headerLine}: the column ${twice} is named twice in the header`);
  const col = (r: string[], name: string) => {
    const i = header.indexOf(name);
    return i >= 0 && r[i] !== '' ? r[i] : undefined;
  };
  const rows: MailboxRow[] = [];
  const warnings: string[] = [];
  const problems: string[] = [];
  const seen = new Map<string, number>();
  for (const { record, info } of records.slice(1)) {
    const line = info.lines;
    const bad = (why: string) => problems.push(`${file}:${line}: ${why}`);
    if (record.length !== header.length) {
      bad(`${record.length} field(s), the header names ${header.length}`);
      continue;
    }
    const sourceUser = col(record, 'source_user');
    if (!sourceUser) {
      bad('source_user is empty');
      continue;
    }
    if (/[\s\0]/.test(sourceUser)) {
      bad(`source_user "${sourceUser}" contains whitespace`);
      continue;
    }
    const destinationUser = col(record, 'destination_user') ?? sourceUser;
    if (/[\s\0]/.test(destinationUser)) {
      bad(`destination_user "${destinationUser}" contains whitespace`);
      continue;
    }
    const key = `${sourceUser}\0${destinationUser}`;
    if (seen.has(key)) {
      bad(`the mailbox ${sourceUser} -> ${destinationUser} is already on line ${seen.get(key)}`);
      continue;
    }
    seen.set(key, line);
    const sourcePassword = col(record, 'source_password');
    const destinationPassword = col(record, 'destination_password');
    for (const [name, ref] of [['source_password', sourcePassword], ['destination_password', destinationPassword]] as const) {
      if (ref !== undefined && !isReference(ref)) {
        warnings.push(`${file}:${line}: ${name} is written in the file; use env:NAME or file:PATH so that passwords are not kept in the list`);
      }
    }
    rows.push({ line, sourceUser, destinationUser, sourcePassword, destinationPassword });
  }
  if (problems.length === 1) throw fail(problems[0]!);
  if (problems.length > 1) {
    const more = problems.length > MAX_LISTED ? [`... and ${problems.length - MAX_LISTED} more`] : [];
    throw fail(`${problems.length} bad row(s) in ${file}:\n  ${[...problems.slice(0, MAX_LISTED), ...more].join('\n  ')}`);
  }
  return { rows, warnings, file };
}

/** Where the list holds literal passwords: `FILE:LINE: COLUMN` for each. */
export function literalPasswords(list: MailboxList): string[] {
  const out: string[] = [];
  for (const r of list.rows) {
    for (const [name, ref] of [['source_password', r.sourcePassword], ['destination_password', r.destinationPassword]] as const) {
      if (ref !== undefined && !isReference(ref)) out.push(`${list.file ?? 'the list'}:${r.line}: ${name}`);
    }
  }
  return out;
}

function fail(message: string): MigrateError {
  return new MigrateError(ERROR_CODES.BATCH_CSV, message, { scope: 'config' });
}
