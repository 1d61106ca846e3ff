/** The workers of a queue: host, pid, started, last seen, what each runs, alive or gone. */
import { get, type Worker } from './api.js';
import { el, route, when } from './dom.js';

export async function workersView(): Promise<HTMLElement> {
  const { workers, goneAfterBeats } = await get<{ workers: Worker[]; goneAfterBeats: number }>('/api/workers');
  if (workers.length === 0) {
    return el('section', { class: 'panel', id: 'workers' }, el('h2', {}, 'Workers'), el('p', { class: 'muted' }, 'No worker has recorded a heartbeat in this ledger (workers run batches queued with --queue: mailmover worker --queue URL).'));
  }
  return el(
    'section',
    { class: 'panel', id: 'workers' },
    el('h2', {}, 'Workers'),
    el('p', { class: 'muted' }, `A worker is gone when it stopped or was not seen for ${goneAfterBeats} heartbeats.`),
    el(
      'table',
      { id: 'worker-table' },
      el('thead', {}, el('tr', {}, ...['state', 'host', 'pid', 'started', 'last seen', 'running'].map((h) => el('th', {}, h)))),
      el(
        'tbody',
        {},
        ...workers.map((w) =>
          el(
            'tr',
            { 'data-worker': w.id, class: w.alive ? 'alive' : 'gone' },
            el('td', { class: w.alive ? 'status-complete' : 'status-failed' }, w.alive ? 'alive' : w.stoppedAt ? 'gone (stopped)' : 'gone'),
            el('td', { class: 'wrap' }, w.host),
            el('td', { class: 'num' }, w.pid),
            el('td', {}, when(w.startedAt)),
            el('td', {}, when(w.lastSeen)),
            el('td', { class: 'wrap' }, ...(w.running.length ? w.running.map((m) => el('div', {}, el('a', { href: route('batch', m.batch, 'mailbox', m.line) }, `${m.batch} line ${m.line}`), ` ${m.source}`)) : ['—'])),
          ),
        ),
      ),
    ),
  );
}
