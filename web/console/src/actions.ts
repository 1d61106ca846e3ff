/**
 * A batch's actions in the page: the buttons that apply to it (retry the failed and partial
 * mailboxes; pause, resume, cancel a queued batch), each asking for confirmation in a dialog
 * before its POST, the answer (for a local batch, the command to run), and the batch's action
 * history with who and when.
 */
import { get, post, type ActionResult, type ActionsInfo, type Batch } from './api.js';
import { el, fmt, put, when } from './dom.js';

type Name = 'retry' | 'pause' | 'resume' | 'cancel';

const WHAT: Record<Name, (b: Batch, n: number, local: boolean) => string> = {
  retry: (b, n, local) =>
    local
      ? `Retry the ${fmt(n)} failed and partial mailboxes of "${b.name}"? This batch ran on one machine: the console runs nothing, it gives the command that reruns the batch.`
      : `Retry the ${fmt(n)} failed and partial mailboxes of "${b.name}"? They go back to the queue and the workers resume them from the ledger.`,
  pause: (b) => `Pause "${b.name}"? Workers finish the mailboxes in flight and take no new mailbox of it until it is resumed.`,
  resume: (b) => `Resume "${b.name}"? Its paused mailboxes go back to the queue.`,
  cancel: (b) => `Cancel "${b.name}"? Its queued and paused mailboxes are taken out of the queue; running ones finish.`,
};

const LABEL: Record<Name, string> = { retry: 'Retry failed', pause: 'Pause', resume: 'Resume', cancel: 'Cancel batch' };

export class ActionsPanel {
  readonly root = el('section', { class: 'panel', id: 'actions' });
  private readonly buttons = el('div', { class: 'controls', id: 'action-buttons' });
  private readonly answer = el('div', { id: 'action-answer' });
  private readonly history = el('div', { id: 'action-history' });
  private readonly dialog = el('dialog', { id: 'confirm' });
  private info: ActionsInfo | undefined;
  private batch: Batch | undefined;

  constructor(readonly name: string) {
    put(this.root, el('h3', {}, 'Actions'), this.buttons, this.answer, this.history, this.dialog);
  }

  async refresh(b: Batch): Promise<void> {
    this.batch = b;
    this.info = await get<ActionsInfo>(`/api/batches/${encodeURIComponent(this.name)}/actions`);
    this.showButtons();
    this.showHistory();
  }

  private showButtons(): void {
    const b = this.batch!;
    const i = this.info!;
    const failed = (b.statuses.failed ?? 0) + (b.statuses.partial ?? 0);
    const local = i.mode === 'local';
    const show: [Name, boolean][] = [
      ['retry', failed > 0 && i.state !== 'paused'],
      ...(local ? [] : ([['pause', i.state === 'active' && !b.finishedAt], ['resume', i.state === 'paused'], ['cancel', i.state !== 'cancelled' && !b.finishedAt]] as [Name, boolean][])),
    ];
    put(
      this.buttons,
      ...show.map(([name, enabled]) => {
        const button = el('button', { type: 'button', 'data-action': name }, LABEL[name]);
        button.disabled = !enabled;
        button.addEventListener('click', () => this.confirm(name, failed, local));
        return button;
      }),
      el('span', { class: 'muted', id: 'batch-state' }, `${local ? 'local batch' : 'queued batch'}, ${i.state}; acting as ${i.operator}`),
    );
  }

  private showHistory(): void {
    const actions = this.info!.actions;
    if (actions.length === 0) return put(this.history, el('p', { class: 'muted' }, 'No action taken on this batch yet.'));
    put(
      this.history,
      el(
        'table',
        { id: 'history' },
        el('thead', {}, el('tr', {}, el('th', {}, 'when'), el('th', {}, 'who'), el('th', {}, 'action'), el('th', { class: 'num' }, 'mailboxes'), el('th', {}, 'note'))),
        el(
          'tbody',
          {},
          ...[...actions].reverse().map((a) =>
            el('tr', { 'data-action': a.action }, el('td', {}, when(a.at)), el('td', { class: 'who wrap' }, a.operator), el('td', {}, a.action), el('td', { class: 'num' }, fmt(a.mailboxes)), el('td', { class: 'wrap' }, a.note ?? '')),
          ),
        ),
      ),
    );
  }

  /** The confirmation dialog; the POST only after "Yes". */
  private confirm(name: Name, failed: number, local: boolean): void {
    const yes = el('button', { type: 'button', id: 'confirm-yes' }, `Yes, ${LABEL[name].toLowerCase()}`);
    const no = el('button', { type: 'button', id: 'confirm-no' }, 'No');
    put(this.dialog, el('p', { id: 'confirm-text' }, WHAT[name](this.batch!, failed, local)), el('div', { class: 'controls' }, yes, no));
    no.addEventListener('click', () => this.dialog.close());
    yes.addEventListener('click', () => {
      yes.disabled = true;
      void this.take(name).finally(() => this.dialog.close());
    });
    this.dialog.showModal();
  }

  private async take(name: Name): Promise<void> {
    try {
      const { result } = await post<{ result: ActionResult }>(`/api/batches/${encodeURIComponent(this.name)}/actions/${name}`);
      put(
        this.answer,
        el('p', { class: 'done' }, `${name}: ${fmt(result.mailboxes)} mailbox${result.mailboxes === 1 ? '' : 'es'}.`),
        result.command ? el('p', {}, 'Run this on the machine that ran the batch:') : null,
        result.command ? el('pre', { class: 'text', id: 'retry-command' }, result.command) : null,
        result.note ? el('p', { class: 'muted' }, result.note) : null,
      );
    } catch (err) {
      put(this.answer, el('p', { class: 'problem', id: 'action-error' }, err instanceof Error ? err.message : String(err)));
    }
    if (this.batch) await this.refresh(this.batch).catch(() => undefined);
  }
}
