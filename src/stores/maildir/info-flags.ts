/**
 * Flags in Maildir file names, and keywords in `dovecot-keywords`.
 *
 * A delivered Maildir message is `cur/<unique>:2,<letters>` (the "info" suffix). The upper-case
 * letters are the Maildir spec's flags; lower-case letters a-z are Dovecot's keywords, indexes
 * into the folder's `dovecot-keywords` file (lines `<index> <keyword>`). `,S=<size>` and
 * `,W=<size>` in the unique part are Dovecot's physical and virtual (CRLF) sizes.
 *
 * Dovecot keeps `$Forwarded` as a keyword, while mutt and Courier mark a forwarded message with
 * `P` (passed): both are read as `$Forwarded`, and both are written, so each reader sees it.
 */
import { readFile } from 'node:fs/promises';

const LETTER_TO_FLAG: Record<string, string> = { D: '\\Draft', F: '\\Flagged', P: '$Forwarded', R: '\\Answered', S: '\\Seen', T: '\\Deleted' };
const FLAG_TO_LETTER: Record<string, string> = { '\\draft': 'D', '\\flagged': 'F', '$forwarded': 'P', '\\answered': 'R', '\\seen': 'S', '\\deleted': 'T' };

/** The parts of a Maildir file name. */
export interface MaildirName {
  /** The unique part, without the info suffix (what dovecot-uidlist lists). */
  base: string;
  /** Flag letters after `:2,`, as written. */
  letters: string;
  /** `,S=` (size on disk), when given. */
  physicalSize: number | undefined;
  /** `,W=` (size with CRLF line ends, as IMAP serves it), when given. */
  virtualSize: number | undefined;
}

/** Splits a file name of `cur/` or `new/`; Windows-style `;2,` (some copies) is read too. */
export function parseMaildirName(file: string): MaildirName {
  const m = /^(.*?)[:;]2,([A-Za-z]*)$/.exec(file);
  const base = m ? m[1]! : file;
  const letters = m ? m[2]! : '';
  const size = (key: string) => {
    const s = new RegExp(`,${key}=(\\d+)(?=[,:;]|$)`).exec(base);
    return s ? Number(s[1]) : undefined;
  };
  return { base, letters, physicalSize: size('S'), virtualSize: size('W') };
}

/** IMAP flags of a file, from its letters and the folder's keyword table. */
export function flagsOf(letters: string, keywords: readonly (string | undefined)[]): string[] {
  const out = new Set<string>();
  for (const ch of letters) {
    const flag = LETTER_TO_FLAG[ch];
    if (flag) out.add(flag);
    else if (ch >= 'a' && ch <= 'z') {
      const kw = keywords[ch.charCodeAt(0) - 97];
      if (kw) out.add(kw);
    }
  }
  return [...out];
}

/**
 * Letters for IMAP flags, adding keywords the table lacks (at most 26: Dovecot's letters).
 * Returns the letters, sorted as the Maildir spec asks, and the keywords that found no letter.
 */
export function lettersFor(flags: readonly string[], keywords: (string | undefined)[]): { letters: string; unplaced: string[] } {
  const letters = new Set<string>();
  const unplaced: string[] = [];
  for (const flag of flags) {
    const upper = FLAG_TO_LETTER[flag.toLowerCase()];
    if (upper) letters.add(upper);
    if (flag.startsWith('\\')) continue; // system flags other than the five have no letter (\Recent)
    if (flag.toLowerCase() === '$forwarded' || !upper) {
      let i = keywords.findIndex((k) => k !== undefined && k.toLowerCase() === flag.toLowerCase());
      if (i < 0) {
        i = keywords.findIndex((k) => k === undefined);
        if (i < 0 && keywords.length < 26) i = keywords.length;
        if (i < 0) {
          unplaced.push(flag);
          continue;
        }
        keywords[i] = flag;
      }
      letters.add(String.fromCharCode(97 + i));
    }
  }
  return { letters: [...letters].sort().join(''), unplaced };
}

/** Reads `dovecot-keywords` (missing file: no keywords). Index n holds letter a+n. */
export async function readKeywords(file: string): Promise<(string | undefined)[]> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const out: (string | undefined)[] = [];
  for (const line of text.split('\n')) {
    const m = /^(\d+) (\S+)$/.exec(line.trim());
    if (m && Number(m[1]) < 26) out[Number(m[1])] = m[2];
  }
  return out;
}

/** The text of a `dovecot-keywords` file. */
export function keywordsText(keywords: readonly (string | undefined)[]): string {
  return keywords.map((k, i) => (k ? `${i} ${k}\n` : '')).join('');
}
