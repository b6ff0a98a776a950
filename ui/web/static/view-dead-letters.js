// @ts-check
// Dead letters: each with its reason, where it came from, its job (when it has one), the
// attempts, the last error and the raw message exactly as received (poison messages included),
// newest first with keyset paging in the URL. A job dead-lettered while the newest page is
// shown brings a refetch.

import { DeadLetterReasonValues } from './api.js';
import { h, replace } from './dom.js';
import { formatDateTime, shortId, throttle } from './format.js';
import { href } from './router.js';
import { Loader, Pager, StatusLine, definition, heading } from './view.js';

/** @typedef {import('./api.js').DeadLetter} DeadLetter */

const PAGE_SIZE = 25;

/** @param {DeadLetter} letter */
function card(letter) {
  const reason = /** @type {ReadonlyArray<string>} */ (DeadLetterReasonValues).includes(letter.reason) ? letter.reason : 'unknown';
  const bytes = new TextEncoder().encode(letter.rawBody).length;
  return h(
    'article',
    { class: 'dead-letter', 'data-reason': reason, 'data-job-id': letter.jobId ?? '' },
    h(
      'h2',
      {},
      h('span', { class: `badge reason-${reason}` }, letter.reason),
      ' ',
      letter.jobId ? h('a', { href: href('job', {}, letter.jobId), class: 'mono', title: letter.jobId }, `job ${shortId(letter.jobId)}`) : h('span', {}, 'message without a job'),
    ),
    h(
      'dl',
      { class: 'fields' },
      ...definition('Received', formatDateTime(letter.receivedAt)),
      ...definition('From', `${letter.source}${letter.queue ? ` (queue ${letter.queue})` : ''}`),
      ...(letter.attempts !== undefined ? definition('Attempts', String(letter.attempts)) : []),
      ...definition('Last error', letter.message ?? '—'),
    ),
    h('details', {}, h('summary', {}, `Raw message (${bytes} byte${bytes === 1 ? '' : 's'})`), h('pre', { class: 'json raw', tabindex: '0' }, letter.rawBody)),
  );
}

/**
 * @param {import('./view.js').Context} ctx
 * @param {import('./view.js').Route} route
 * @returns {import('./view.js').View}
 */
export function deadLettersView(ctx, route) {
  let params = route.params;
  const status = new StatusLine();
  const list = h('div', { class: 'dead-letters' });
  const pager = new Pager('dead-letters');
  const element = h('section', { class: 'view view-dead-letters' }, heading('Dead letters'), status.element, list, pager.element);

  const loader = new Loader();
  const load = () => {
    status.loading();
    loader.run(
      ctx.readModel.listDeadLetters({ limit: PAGE_SIZE, cursor: params.get('cursor') || undefined }),
      (page) => {
        replace(list, ...(page.items.length ? page.items.map(card) : [h('p', { class: 'empty' }, 'No dead letters.')]));
        pager.update(params, page.nextCursor);
        status.ok(`${page.items.length} shown`);
        ctx.shown('dead-letters');
      },
      (error) => status.failed(error),
    );
  };
  const reconcile = throttle(load, 1000);

  load();
  return {
    element,
    title: 'Dead letters',
    refresh: load,
    update(next) {
      params = next.params;
      loader.reset();
      load();
      return true;
    },
    onEvent(event) {
      if (event.eventType === 'job.dead-lettered' && !params.get('cursor')) reconcile();
    },
    destroy() {
      reconcile.cancel();
      loader.stop();
    },
  };
}
