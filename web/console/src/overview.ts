/**
 * A batch's overview: mailboxes per status, messages copied of to copy, rate and ETA (only when
 * known), the throughput chart, and the mailbox table (filter by status, search by user, sort by
 * column, pages of 100) with a progress bar per row and the last error code linked to its
 * explanation.
 */
import { get, type Batch, type Job, type TablePage, type Throughput } from './api.js';
import { ActionsPanel } from './actions.js';
import { throughputChart } from './chart.js';
import { duration, el, fmt, put, route, when } from './dom.js';

const ORDER = ['running', 'queued', 'waiting', 'paused', 'not started', 'failed', 'partial', 'interrupted', 'cancelled', 'complete'];
const COLUMNS: [key: string | undefined, label: string, num?: boolean][] = [
  ['line', 'line', true],
  ['user', 'mailbox'],
  ['status', 'status'],
  ['progress', 'progress'],
  ['copied', 'copied / to copy', true],
  ['skipped', 'skipped', true],
  ['code', 'last error'],
  ['seconds', 'duration', true],
];

/** Statuses in the console's order, then any others as written. */
export function orderedStatuses(statuses: Record<string, number>): string[] {
  return [...ORDER.filter((s) => s in statuses), ...Object.keys(statuses).filter((s) => !ORDER.includes(s)).sort()];
}

export class OverviewView {
  readonly root = el('section', { id: 'overview' });
  private readonly counts = el('dl', { class: 'cards', id: 'counts' });
  private readonly facts = el('div', { class: 'facts' });
  private readonly chart = el('div', { class: 'panel', id: 'chart' });
  private readonly actions: ActionsPanel;
  private readonly statusFilter = el('select', { id: 'status-filter', 'aria-label': 'status' });
  private readonly search = el('input', { id: 'search', type: 'search', placeholder: 'search user…', 'aria-label': 'search user' });
  private readonly table = el('tbody');
  private readonly pager = el('div', { class: 'pager' });
  private readonly heads = el('tr');
  private query = { status: '', q: '', sort: 'line', dir: 'asc', offset: 0 };

  constructor(readonly name: string) {
    this.actions = new ActionsPanel(name);
    this.statusFilter.addEventListener('change', () => this.requery());
    let timer: number | undefined;
    this.search.addEventListener('input', () => {
      clearTimeout(timer);
      timer = window.setTimeout(() => this.requery(), 200);
    });
    for (const [key, label, num] of COLUMNS) {
      const button = el('button', { type: 'button', 'data-sort': key }, label);
      button.addEventListener('click', () => {
        this.query.dir = this.query.sort === key && this.query.dir === 'asc' ? 'desc' : 'asc';
        this.query.sort = key!;
        this.query.offset = 0;
        void this.refreshTable();
      });
      this.heads.append(el('th', { class: num ? 'num' : undefined, scope: 'col' }, button));
    }
    put(
      this.root,
      el('h2', { id: 'batch-name' }, name),
      this.counts,
      this.facts,
      this.actions.root,
      this.chart,
      el('div', { class: 'controls' }, this.statusFilter, this.search),
      el('table', { id: 'mailboxes' }, el('thead', {}, this.heads), this.table),
      this.pager,
    );
  }

  private requery(): void {
    this.query.status = this.statusFilter.value;
    this.query.q = this.search.value;
    this.query.offset = 0;
    void this.refreshTable();
  }

  /** Fetches the batch and the current page of its table again. */
  async refresh(): Promise<void> {
    const { batch, throughput } = await get<{ batch: Batch; throughput: Throughput | null }>(`/api/batches/${encodeURIComponent(this.name)}`);
    this.showBatch(batch, throughput);
    await Promise.all([this.refreshTable(), this.actions.refresh(batch)]);
  }

  private showBatch(b: Batch, t: Throughput | null): void {
    const statuses = orderedStatuses(b.statuses);
    put(
      this.counts,
      el('div', { class: 'count', 'data-status': 'all' }, el('dt', {}, 'mailboxes'), el('dd', {}, fmt(b.mailboxes))),
      ...statuses.map((s) => el('div', { class: `count status-${s.replace(/\W+/g, '-')}`, 'data-status': s }, el('dt', {}, s), el('dd', {}, fmt(b.statuses[s]!)))),
    );
    const selected = this.statusFilter.value;
    put(this.statusFilter, el('option', { value: '' }, 'every status'), ...statuses.map((s) => el('option', { value: s }, `${s} (${fmt(b.statuses[s]!)})`)));
    this.statusFilter.value = statuses.includes(selected) ? selected : '';
    put(
      this.facts,
      el('span', {}, 'messages copied: ', el('b', { id: 'copied' }, fmt(b.copied)), ' of ', el('b', { id: 'to-copy' }, b.toCopy === null ? 'not known yet' : fmt(b.toCopy))),
      el('span', {}, 'skipped: ', el('b', { id: 'skipped' }, fmt(b.skipped))),
      el('span', {}, 'rate: ', el('b', { id: 'rate' }, b.finishedAt ? 'finished' : b.rate === null ? 'measuring…' : `${b.rate.toFixed(1)} messages/s`)),
      el('span', {}, 'ETA: ', el('b', { id: 'eta' }, b.finishedAt ? '—' : b.etaSeconds === null ? 'not known' : duration(b.etaSeconds))),
      el('span', {}, 'started: ', el('b', {}, when(b.startedAt))),
      el('span', {}, b.finishedAt ? 'finished: ' : 'last update: ', el('b', {}, when(b.finishedAt ?? b.lastUpdateAt))),
    );
    put(
      this.chart,
      el('h3', {}, 'Throughput'),
      t ? throughputChart(t, Math.max(320, Math.min(1100, this.root.clientWidth || window.innerWidth - 80))) : el('p', { class: 'muted' }, 'Nothing copied yet.'),
      el('p', { class: 'muted' }, 'Messages copied per interval, from the progress the running mailboxes record every few seconds.'),
    );
  }

  private async refreshTable(): Promise<void> {
    const p = new URLSearchParams({ sort: this.query.sort, dir: this.query.dir, offset: String(this.query.offset), limit: '100' });
    if (this.query.status) p.set('status', this.query.status);
    if (this.query.q) p.set('q', this.query.q);
    const page = await get<TablePage>(`/api/batches/${encodeURIComponent(this.name)}/mailboxes?${p}`);
    for (const th of this.heads.querySelectorAll('button')) th.setAttribute('aria-sort', th.dataset.sort === this.query.sort ? (this.query.dir === 'asc' ? 'ascending' : 'descending') : 'none');
    put(this.table, ...page.rows.map((j) => this.row(j)));
    if (page.rows.length === 0) put(this.table, el('tr', {}, el('td', { colspan: String(COLUMNS.length), class: 'muted' }, 'No mailbox matches.')));
    this.showPager(page);
  }

  private row(j: Job): HTMLTableRowElement {
    const bar = el('progress', { max: '1', 'aria-label': `progress of line ${j.line}` });
    if (j.status === 'complete') bar.value = 1;
    else if (j.toCopy !== undefined && j.toCopy > 0) bar.value = Math.min(1, j.copied / j.toCopy);
    else if (j.status !== 'running') bar.value = 0;
    const statusText = j.verdict ? `${j.status} (${j.verdict})` : j.resumeAt ? `${j.status} (until ${when(j.resumeAt)})` : j.status;
    return el(
      'tr',
      { 'data-line': String(j.line) },
      el('td', { class: 'num' }, j.line),
      el('td', { class: 'user wrap' }, el('a', { href: route('batch', this.name, 'mailbox', j.line), title: `${j.source} -> ${j.destination}` }, j.user)),
      el('td', { class: `status status-${j.status.replace(/\W+/g, '-')}` }, statusText),
      el('td', {}, bar),
      el('td', { class: 'num copied' }, j.toCopy !== undefined && j.status !== 'complete' ? `${fmt(j.copied)} / ${fmt(j.toCopy)}` : fmt(j.copied)),
      el('td', { class: 'num skipped' }, fmt(j.skipped)),
      el('td', { class: 'code' }, j.code ? el('a', { href: route('error', j.code), title: j.message }, j.code) : ''),
      el('td', { class: 'num duration' }, j.seconds === undefined ? '—' : duration(j.seconds)),
    );
  }

  private showPager(page: TablePage): void {
    const prev = el('button', { type: 'button' }, '← previous');
    const next = el('button', { type: 'button' }, 'next →');
    prev.disabled = page.offset === 0;
    next.disabled = page.offset + page.limit >= page.matched;
    prev.addEventListener('click', () => ((this.query.offset = Math.max(0, page.offset - page.limit)), void this.refreshTable()));
    next.addEventListener('click', () => ((this.query.offset = page.offset + page.limit), void this.refreshTable()));
    const shown = page.matched === 0 ? '0' : `${fmt(page.offset + 1)}–${fmt(Math.min(page.matched, page.offset + page.limit))}`;
    put(this.pager, prev, el('span', { id: 'page-info' }, `${shown} of ${fmt(page.matched)}${page.matched !== page.total ? ` (of ${fmt(page.total)} in the batch)` : ''}`), next);
  }
}
