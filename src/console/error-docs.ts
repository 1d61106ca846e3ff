/**
 * The error-code explanations of docs/errors.md, parsed for the console: per `## MM-CODE`
 * section its **Symptom:**, **Cause:** and **Resolution:** texts, and the scope and exit code
 * from the table at the top. The package ships docs/, so the console explains every code in the
 * words of the documentation it came with.
 */
import { readFileSync } from 'node:fs';

/** One code's explanation. Texts are Markdown as written (inline code in backticks). */
export interface ErrorDoc {
  code: string;
  scope: string | undefined;
  exitCode: string | undefined;
  symptom: string;
  cause: string;
  resolution: string;
}

const PARTS = { '**Symptom:**': 'symptom', '**Cause:**': 'cause', '**Resolution:**': 'resolution' } as const;

/** Parses the text of docs/errors.md. Sections without any of the three parts are left out. */
export function parseErrorDocs(markdown: string): ErrorDoc[] {
  const lines = markdown.replace(/\r\n?/g, '\n').split('\n');
  const table = new Map<string, { scope: string; exitCode: string }>();
  for (const line of lines) {
    const row = /^\|\s*\[(MM-[A-Z0-9-]+)\]\([^)]*\)\s*\|([^|]*)\|([^|]*)\|\s*$/.exec(line);
    if (row) table.set(row[1]!, { scope: row[2]!.trim(), exitCode: row[3]!.trim() });
  }
  const docs: ErrorDoc[] = [];
  let current: { code: string; parts: Record<string, string[]>; at: string | undefined } | undefined;
  const finish = () => {
    if (!current) return;
    // Lines of a paragraph joined with spaces; paragraphs kept apart by a blank line.
    const text = (k: string) =>
      (current!.parts[k] ?? [])
        .join('\n')
        .split(/\n\s*\n/)
        .map((p) => p.split('\n').map((l) => l.trim()).join(' ').trim())
        .filter(Boolean)
        .join('\n\n');
    if (Object.keys(current.parts).length > 0) {
      docs.push({ code: current.code, scope: table.get(current.code)?.scope, exitCode: table.get(current.code)?.exitCode, symptom: text('symptom'), cause: text('cause'), resolution: text('resolution') });
    }
  };
  for (const line of lines) {
    const heading = /^##\s+(MM-[A-Z0-9-]+)\s*$/.exec(line);
    if (heading || /^#{1,2}\s/.test(line)) {
      finish();
      current = heading ? { code: heading[1]!, parts: {}, at: undefined } : undefined;
      continue;
    }
    if (!current) continue;
    const marker = (Object.keys(PARTS) as (keyof typeof PARTS)[]).find((m) => line.startsWith(m));
    if (marker) {
      current.at = PARTS[marker];
      current.parts[current.at] = [line.slice(marker.length).trim()];
    } else if (current.at) {
      current.parts[current.at]!.push(line);
    }
  }
  finish();
  return docs;
}

let cached: Map<string, ErrorDoc> | undefined;

/** The explanations of the docs/errors.md this package ships, by code (read once). */
export function errorDocs(file: URL = new URL('../../docs/errors.md', import.meta.url)): Map<string, ErrorDoc> {
  if (!cached) {
    let text = '';
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      // A package installed without docs/: the console shows codes without explanations.
    }
    cached = new Map(parseErrorDocs(text).map((d) => [d.code, d]));
  }
  return cached;
}
