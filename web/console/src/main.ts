/**
 * The console page: a hash router over the views, the batch navigation, the empty and error
 * states, and the live channel. Server-sent events say when the ledger changed; the view on
 * screen then fetches its data again (no reload, the search and filter stay as they are).
 */
import { ApiError, get, type Batch, type LedgerState } from './api.js';
import { detailView, errorView } from './detail.js';
import { el, put, route } from './dom.js';
import { OverviewView } from './overview.js';
import { workersView } from './workers.js';

const main = document.getElementById('main')!;
const nav = document.getElementById('batches')!;
const live = document.getElementById('live')!;
let overview: OverviewView | undefined;
let rendering = Promise.resolve();

type Route = { view: 'latest' } | { view: 'workers' } | { view: 'batch'; name: string } | { view: 'mailbox'; name: string; line: number } | { view: 'error'; code: string };

function parseRoute(): Route {
  const parts = location.hash.replace(/^#\/?/, '').split('/').filter(Boolean).map(decodeURIComponent);
  if (parts[0] === 'batch' && parts[1] !== undefined && parts[2] === 'mailbox' && /^\d+$/.test(parts[3] ?? '')) return { view: 'mailbox', name: parts[1], line: Number(parts[3]) };
  if (parts[0] === 'batch' && parts[1] !== undefined) return { view: 'batch', name: parts[1] };
  if (parts[0] === 'error' && parts[1]) return { view: 'error', code: parts[1] };
  if (parts[0] === 'workers') return { view: 'workers' };
  return { view: 'latest' };
}

function ledgerProblem(l: LedgerState): HTMLElement {
  if (l.state === 'missing') return emptyState(l.location, `There is no ledger at ${l.location} yet.`);
  return el('section', { class: 'panel problem', id: 'ledger-problem' }, el('h2', {}, 'The ledger cannot be read'), el('p', {}, el('b', {}, l.code ?? ''), ' ', l.message ?? ''), el('p', { class: 'muted' }, `Ledger: ${l.location}. The console tries again every few seconds.`));
}

function emptyState(location: string, first: string): HTMLElement {
  return el(
    'section',
    { class: 'panel', id: 'empty' },
    el('h2', {}, 'No batch yet'),
    el('p', {}, first, ' Start one and it appears here as it runs:'),
    el('pre', { class: 'text' }, `mailmover batch run users.csv --config servers.yaml --state ${location}`),
    el('p', { class: 'muted' }, 'users.csv has one mailbox per row (source_user[,destination_user,...]); servers.yaml names the two servers. See the README, "Batches".'),
  );
}

function showNav(batches: Batch[], current: string | undefined): void {
  put(nav, ...batches.map((b) => el('a', { href: route('batch', b.name), class: b.name === current ? 'current' : undefined }, b.name)), el('a', { href: route('workers'), id: 'workers-link', class: location.hash.startsWith('#/workers') ? 'current' : undefined }, 'workers'));
}

async function render(refreshOnly: boolean): Promise<void> {
  const r = parseRoute();
  const list = await get<{ ledger: LedgerState; batches: Batch[] }>('/api/batches');
  const name = r.view === 'latest' ? list.batches[0]?.name : r.view === 'error' || r.view === 'workers' ? undefined : r.name;
  showNav(list.batches, name);
  if (list.ledger.state !== 'ok') return put(main, ledgerProblem(list.ledger));
  if (r.view === 'error') return refreshOnly ? undefined : put(main, await errorView(r.code));
  if (r.view === 'workers') return put(main, await workersView());
  if (r.view === 'mailbox') return put(main, await detailView(r.name, r.line));
  if (!name) return put(main, emptyState(list.ledger.location, `The ledger ${list.ledger.location} records no batch.`));
  if (!list.batches.some((b) => b.name === name)) return put(main, el('section', { class: 'panel problem' }, el('h2', {}, 'No such batch'), el('p', {}, `The ledger records no batch "${name}".`)));
  if (!overview || overview.name !== name || !main.contains(overview.root)) {
    overview = new OverviewView(name);
    put(main, overview.root);
  }
  await overview.refresh();
}

/** Renders, one at a time; a failure is shown in the page, not lost in the console. */
function update(refreshOnly: boolean): void {
  rendering = rendering
    .then(() => render(refreshOnly))
    .catch((err: unknown) => {
      if (err instanceof ApiError && err.ledger && err.ledger.state !== 'ok') return put(main, ledgerProblem(err.ledger));
      put(main, el('section', { class: 'panel problem', id: 'page-error' }, el('h2', {}, 'Could not load'), el('p', {}, err instanceof Error ? err.message : String(err))));
    });
}

window.addEventListener('hashchange', () => update(false));
update(false);

const events = new EventSource('/api/events');
events.addEventListener('open', () => {
  live.textContent = 'live';
  live.classList.add('on');
});
events.addEventListener('error', () => {
  live.textContent = 'reconnecting…';
  live.classList.remove('on');
});
events.addEventListener('change', () => update(true));
// Heartbeats are not status changes: the workers' page looks again every few seconds.
setInterval(() => {
  if (parseRoute().view === 'workers') update(true);
}, 5000);
