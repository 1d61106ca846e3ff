/**
 * A mailbox's detail (its row, the explanation of its error code, its folders and skipped items
 * from the ledger, its report downloads) and an error code's explanation page.
 */
import { explanations, get, type Detail, type ErrorDoc } from './api.js';
import { docText, duration, el, fmt, route, when } from './dom.js';

/** An error code's symptom, cause and resolution as docs/errors.md gives them. */
export function explanation(doc: ErrorDoc | undefined, code: string): HTMLElement {
  if (!doc) return el('p', { class: 'muted' }, `${code} is not in this console's docs/errors.md.`);
  return el(
    'dl',
    { class: 'explanation', 'data-code': code },
    el('dt', {}, 'Symptom'),
    el('dd', { class: 'symptom' }, ...docText(doc.symptom)),
    el('dt', {}, 'Cause'),
    el('dd', { class: 'cause' }, ...docText(doc.cause)),
    el('dt', {}, 'Resolution'),
    el('dd', { class: 'resolution' }, ...docText(doc.resolution)),
  );
}

export async function errorView(code: string): Promise<HTMLElement> {
  const doc = (await explanations()).get(code);
  return el('section', { id: 'error-doc', class: 'panel' }, el('h2', {}, code), doc?.scope ? el('p', { class: 'muted' }, `scope: ${doc.scope}; exit code: ${doc.exitCode ?? '—'}`) : null, explanation(doc, code));
}

export async function detailView(batch: string, line: number): Promise<HTMLElement> {
  const base = `/api/batches/${encodeURIComponent(batch)}/mailboxes/${line}`;
  const [d, docs] = await Promise.all([get<Detail>(base), explanations()]);
  const j = d.job;
  const table = (id: string, heads: string[], rows: HTMLElement[], empty: string) =>
    rows.length === 0 ? el('p', { class: 'muted', id }, empty) : el('table', { id }, el('thead', {}, el('tr', {}, ...heads.map((h) => el('th', { scope: 'col' }, h)))), el('tbody', {}, ...rows));
  return el(
    'section',
    { id: 'mailbox-detail' },
    el('p', {}, el('a', { href: route('batch', batch) }, `← ${batch}`)),
    el('h2', { class: 'wrap' }, j.user),
    el(
      'div',
      { class: 'panel' },
      el('p', { class: 'wrap' }, el('b', {}, 'from '), j.source, el('b', {}, ' to '), j.destination),
      el('p', {}, 'status: ', el('b', { id: 'detail-status', class: `status-${j.status.replace(/\W+/g, '-')}` }, j.status), j.verdict ? ` (verdict: ${j.verdict})` : '', j.resumeAt ? ` (resumes ${when(j.resumeAt)})` : '', ` · line ${j.line} · copied ${fmt(j.copied)}${j.toCopy !== undefined ? ` of ${fmt(j.toCopy)}` : ''} · skipped ${fmt(j.skipped)}`, j.seconds !== undefined ? ` · ${duration(j.seconds)}` : '', ` · updated ${when(j.updatedAt)}`),
      j.code ? el('div', { id: 'detail-error' }, el('h3', {}, el('a', { href: route('error', j.code) }, j.code)), j.message ? el('pre', { class: 'text', id: 'detail-message' }, j.message) : null, explanation(docs.get(j.code), j.code)) : null,
    ),
    el('h3', {}, 'Report'),
    d.report.available
      ? el('p', { id: 'downloads' }, ...['json', 'md', 'csv'].flatMap((k, i) => [i ? ' · ' : '', el('a', { href: `${base}/report.${k}`, download: `mailbox-${j.line}-report.${k}` }, { json: 'JSON', md: 'Markdown', csv: 'CSV (skipped items)' }[k]!)]))
      : el('p', { class: 'muted', id: 'downloads' }, `No report to download: ${d.report.reason ?? 'none recorded'}.`),
    el('h3', {}, `Folders (${fmt(d.folders.length)})`),
    table(
      'folders',
      ['source', 'destination', 'copies', 'left half-done', 'skipped', 'last complete pass'],
      d.folders.map((f) =>
        el('tr', {}, el('td', { class: 'wrap' }, f.source), el('td', { class: 'wrap' }, f.destination), el('td', { class: 'num' }, fmt(f.copies)), el('td', { class: 'num' }, fmt(f.intents)), el('td', { class: 'num' }, fmt(f.skipped)), el('td', {}, f.syncedAt ? when(f.syncedAt) : 'none yet')),
      ),
      'The ledger records no folder of this mailbox (it failed before any folder was read, or ran without a ledger).',
    ),
    el('h3', {}, `Skipped items (${fmt(d.skipped.length)})`),
    table(
      'skipped',
      ['folder', 'UID', 'code', "the server's words", 'attempts', 'when'],
      d.skipped.map((s) =>
        el('tr', {}, el('td', { class: 'wrap' }, s.folder), el('td', { class: 'num' }, s.uid), el('td', {}, el('a', { href: route('error', s.code) }, s.code)), el('td', { class: 'wrap' }, s.reason), el('td', { class: 'num' }, s.attempts ?? '—'), el('td', {}, when(s.at))),
      ),
      'None.',
    ),
  );
}
