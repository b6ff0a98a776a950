// @ts-check
// Overview: the totals as cards, the throughput chart, counters per type, queue depths and the
// active alerts. Events from the live feed are added as they come (the chart moves), and the
// stored counts are refetched after a burst of events settles.

import { h, replace, setText, safeExternalUrl } from './dom.js';
import { describeError, formatCount, formatDateTime, throttle } from './format.js';
import { addToOverview, advanceThroughput } from './model.js';
import { href } from './router.js';
import { ThroughputChart } from './chart.js';
import { Loader, StatusLine, heading, scrollRegion, tableHead } from './view.js';

/** @typedef {import('./api.js').Overview} Overview */
/** @typedef {import('./api.js').JobCounters} JobCounters */
/** @typedef {import('./api.js').QueueDepths} QueueDepths */
/** @typedef {import('./api.js').AlertList} AlertList */

/** The cards: counter, label, where a click leads. */
const CARDS = /** @type {const} */ ([
  ['submitted', 'Submitted', '#/jobs'],
  ['started', 'Attempts started', '#/events?type=job.started'],
  ['completed', 'Completed', '#/jobs?status=COMPLETED'],
  ['failed', 'Failed attempts', '#/events?type=job.failed'],
  ['retried', 'Retried', '#/jobs?status=RETRYING'],
  ['deadLettered', 'Dead-lettered', '#/dead-letters'],
]);

/** The per-type table's numeric columns. */
const NUMBERS = ['Submitted', 'Completed', 'Failed attempts', 'Dead-lettered'];

/** Alerts have no stream of their own: how often they are asked for while the view is open. */
const ALERTS_EVERY_MS = 30_000;

/**
 * @param {import('./view.js').Context} ctx
 * @returns {import('./view.js').View}
 */
export function overviewView(ctx) {
  const status = new StatusLine();
  const alerts = h('section', { class: 'alerts', 'aria-label': 'Active alerts' });
  /** @type {Record<string, HTMLElement>} */
  const cardValues = {};
  const cards = h(
    'ul',
    { class: 'cards' },
    ...CARDS.map(([key, label, target]) => {
      const value = h('span', { class: 'card-value' }, '—');
      cardValues[key] = value;
      return h('li', { class: `card card-${key}` }, h('a', { href: target }, h('span', { class: 'card-label' }, label), value));
    }),
  );
  const chart = new ThroughputChart();
  const byTypeBody = h('tbody');
  const queuesBody = h('tbody');
  const queuesNote = h('p', { class: 'note', hidden: true });
  const element = h(
    'section',
    { class: 'view view-overview' },
    heading('Overview'),
    status.element,
    alerts,
    cards,
    h('section', { class: 'panel', 'aria-labelledby': 'throughput-title' }, h('h2', { id: 'throughput-title' }, 'Throughput'), chart.element),
    h(
      'div',
      { class: 'split' },
      h(
        'section',
        { class: 'panel', 'aria-labelledby': 'by-type-title' },
        h('h2', { id: 'by-type-title' }, 'By type'),
        scrollRegion('Counters by type', h('table', {}, tableHead(['Type', ...NUMBERS], NUMBERS), byTypeBody)),
      ),
      h(
        'section',
        { class: 'panel', 'aria-labelledby': 'queues-title' },
        h('h2', { id: 'queues-title' }, 'Queues'),
        queuesNote,
        scrollRegion('Queue depths', h('table', {}, tableHead(['Queue', 'Ready', 'Consumers'], ['Ready', 'Consumers']), queuesBody)),
      ),
    ),
  );

  /** @type {Overview | null} */
  let overview = null;
  let drawPending = false;
  let destroyed = false;

  const draw = () => {
    drawPending = false;
    if (!overview || destroyed) return;
    for (const [key] of CARDS) setText(cardValues[key], formatCount(overview.totals[key]));
    chart.update(overview.throughput);
    const rows = [...overview.byType].sort((a, b) => b.counters.submitted - a.counters.submitted);
    replace(
      byTypeBody,
      ...rows.map((row) =>
        h(
          'tr',
          {},
          h('th', { scope: 'row' }, h('a', { href: href('jobs', { type: row.type }) }, row.type)),
          ...[row.counters.submitted, row.counters.completed, row.counters.failed, row.counters.deadLettered].map((n) => h('td', { class: 'num' }, formatCount(n))),
        ),
      ),
    );
    if (rows.length === 0) replace(byTypeBody, h('tr', {}, h('td', { colspan: '5', class: 'empty' }, 'No jobs yet.')));
  };
  /** Draws on the next frame: a burst of events costs one drawing. */
  const scheduleDraw = () => {
    if (drawPending) return;
    drawPending = true;
    requestAnimationFrame(draw);
  };

  /** @param {QueueDepths} depths */
  const drawQueues = (depths) => {
    queuesNote.hidden = true;
    replace(
      queuesBody,
      ...depths.queues.map((q) =>
        h('tr', {}, h('th', { scope: 'row', class: 'mono' }, q.name), h('td', { class: 'num' }, formatCount(q.messages)), h('td', { class: 'num' }, formatCount(q.consumers))),
      ),
    );
  };

  /** @param {AlertList} list */
  const drawAlerts = (list) => {
    const items = list.alerts.map((alert) => {
      const runbook = safeExternalUrl(alert.runbookUrl);
      return h(
        'li',
        { class: `alert alert-${['critical', 'warning'].includes(alert.severity) ? alert.severity : 'info'}` },
        h('strong', { class: 'alert-severity' }, alert.severity),
        ' ',
        h('span', { class: 'alert-name' }, alert.name),
        alert.summary ? h('span', { class: 'alert-summary' }, ` — ${alert.summary}`) : null,
        h('span', { class: 'alert-since' }, ` since ${formatDateTime(alert.startsAt)}`),
        runbook ? h('a', { href: runbook, rel: 'noreferrer', target: '_blank' }, ' runbook') : null,
      );
    });
    if (items.length > 0) {
      replace(alerts, h('h2', { class: 'visually-hidden' }, 'Active alerts'), h('ul', { class: 'alert-list' }, ...items));
    } else if (list.source === 'unavailable') {
      replace(alerts, h('p', { class: 'note warning' }, `Alerts unavailable: ${list.detail ?? 'Alertmanager does not answer'}.`));
    } else if (list.source === 'not-configured') {
      replace(alerts, h('p', { class: 'note' }, 'No active alerts (no Alertmanager is configured).'));
    } else {
      replace(alerts, h('p', { class: 'note' }, 'No active alerts.'));
    }
  };

  const loadAlerts = () => {
    ctx.readModel.listAlerts().then(drawAlerts, (error) => {
      replace(alerts, h('p', { class: 'note warning' }, `Alerts unavailable: ${describeError(error)}.`));
    });
  };

  const loadQueues = () => {
    ctx.readModel.getQueueDepths().then(drawQueues, (error) => {
      queuesNote.hidden = false;
      setText(queuesNote, `Queue depths unavailable: ${describeError(error)}.`);
    });
  };

  const loader = new Loader();
  /** The overview and the queue depths (what events move). */
  const loadCounts = () => {
    status.loading();
    loader.run(
      ctx.readModel.getOverview(),
      (answer) => {
        ctx.syncClock(answer.generatedAt);
        overview = answer;
        advanceThroughput(overview, ctx.now());
        status.ok();
        draw();
        ctx.shown('overview');
      },
      (error) => status.failed(error),
    );
    loadQueues();
  };
  const refresh = () => {
    loadCounts();
    loadAlerts();
  };
  /** After a burst of events, the stored counters and the queues are fetched again. */
  const reconcile = throttle(loadCounts, 2000);

  const tick = setInterval(() => {
    if (overview && advanceThroughput(overview, ctx.now())) scheduleDraw();
  }, 1000);
  const alertTimer = setInterval(() => {
    if (!document.hidden) loadAlerts();
  }, ALERTS_EVERY_MS);

  refresh();
  return {
    element,
    title: 'Overview',
    refresh,
    onEvent(event) {
      if (!overview) return;
      addToOverview(overview, event);
      scheduleDraw();
      reconcile();
    },
    destroy() {
      destroyed = true;
      loader.stop();
      clearInterval(tick);
      clearInterval(alertTimer);
      reconcile.cancel();
      chart.destroy();
    },
  };
}
