// @ts-check
// One job: its fields, payload and result, every attempt with its error, and its timeline on a
// time axis. The page follows the job live (each of its events brings a refetch) until the job
// is terminal; while an attempt runs, its bar grows.

import { ApiRequestError } from './api.js';
import { actionBar, jobActions } from './actions.js';
import { h, s, replace, setText } from './dom.js';
import { formatDateTime, formatDuration, formatTime, prettyJson, shortId, statusClass, throttle } from './format.js';
import { asLifecycleEvent, attemptOf, describeEvent, isTerminal } from './model.js';
import { href } from './router.js';
import { TIMELINE_KEY, drawTimeline } from './timeline.js';
import { Loader, StatusLine, definition, heading, scrollRegion, tableHead } from './view.js';

/** @typedef {import('./api.js').JobDetail} JobDetail */

/**
 * @param {import('./view.js').Context} ctx
 * @param {import('./view.js').Route} route
 * @returns {import('./view.js').View}
 */
export function jobView(ctx, route) {
  const id = route.id;
  const status = new StatusLine();
  const badge = h('span', { class: 'badge' });
  const following = h('p', { class: 'following', role: 'status' });
  const actions = h('div', { class: 'action-slot' });
  const fields = h('dl', { class: 'fields' });
  const svg = s('svg', { class: 'timeline', role: 'img' });
  const timelineWrap = h('div', { class: 'timeline-wrap' }, svg);
  const key = h('ul', { class: 'legend', 'aria-label': 'Key' }, ...TIMELINE_KEY.map(([kind, text]) => h('li', {}, h('span', { class: `swatch swatch-${kind}`, 'aria-hidden': 'true' }), text)));
  const eventsBody = h('tbody');
  const attemptsList = h('ol', { class: 'attempts' });
  const payload = h('pre', { class: 'json', tabindex: '0' });
  const result = h('pre', { class: 'json', tabindex: '0' });
  const body = h(
    'div',
    { class: 'job-body', hidden: true },
    actions,
    fields,
    h(
      'section',
      { class: 'panel', 'aria-labelledby': 'timeline-title' },
      h('h2', { id: 'timeline-title' }, 'Timeline'),
      timelineWrap,
      key,
      scrollRegion(
        'Events of this job',
        h('table', { class: 'events-table' }, h('caption', { class: 'visually-hidden' }, 'Events of this job, oldest first'), tableHead(['Time', 'Event', 'Attempt', 'Detail'], ['Attempt']), eventsBody),
      ),
    ),
    h('section', { class: 'panel', 'aria-labelledby': 'attempts-title' }, h('h2', { id: 'attempts-title' }, 'Attempts'), attemptsList),
    h(
      'div',
      { class: 'split' },
      h('section', { class: 'panel', 'aria-labelledby': 'payload-title' }, h('h2', { id: 'payload-title' }, 'Payload'), payload),
      h('section', { class: 'panel', 'aria-labelledby': 'result-title' }, h('h2', { id: 'result-title' }, 'Result'), result),
    ),
  );
  const element = h(
    'section',
    { class: 'view view-job' },
    h('nav', { class: 'breadcrumb', 'aria-label': 'Breadcrumb' }, h('a', { href: '#/jobs' }, 'Jobs'), ' › ', h('span', { class: 'mono' }, shortId(id))),
    heading('Job ', h('span', { class: 'mono' }, shortId(id)), ' ', badge),
    status.element,
    following,
    body,
  );

  /** @type {JobDetail | null} */
  let detail = null;
  let width = 0;

  const terminal = () => detail !== null && isTerminal(detail.job.status);
  const drawTimelineNow = () => {
    if (!detail) return;
    width = Math.floor(timelineWrap.getBoundingClientRect().width) || width || 600;
    drawTimeline(svg, detail, ctx.now(), width, terminal());
  };

  /** @param {JobDetail} d */
  const draw = (d) => {
    const { job } = d;
    body.hidden = false;
    setText(badge, job.status);
    badge.className = statusClass(job.status);
    const done = isTerminal(job.status);
    setText(following, done ? `Final: ${job.status}. The page no longer follows this job.` : 'Following live: the page changes as the job does.');
    following.dataset.state = done ? 'final' : 'following';
    replace(actions, actionBar(jobActions(job)));
    const end = job.finishedAt ? Date.parse(job.finishedAt) : NaN;
    replace(
      fields,
      ...definition('Id', h('span', { class: 'mono' }, job.id)),
      ...definition('Type', h('a', { href: href('jobs', { type: job.type }) }, job.type)),
      ...definition('Status', job.status),
      ...definition('Attempts', `${job.attempts} of at most ${job.maxAttempts}`),
      ...definition('Created', formatDateTime(job.createdAt)),
      ...definition('Started', formatDateTime(job.startedAt)),
      ...definition('Finished', job.finishedAt ? `${formatDateTime(job.finishedAt)} (${formatDuration(end - Date.parse(job.createdAt))} after creation)` : '—'),
      ...(job.nextAttemptAt ? definition('Next attempt', formatDateTime(job.nextAttemptAt)) : []),
      ...definition('Last error', job.lastError ? `${job.lastError.code}: ${job.lastError.message}` : '—'),
      ...definition('Correlation id', h('span', { class: 'mono' }, job.correlationId)),
    );
    replace(
      eventsBody,
      ...d.events.map((envelope) => {
        const event = asLifecycleEvent(envelope);
        return h(
          'tr',
          { 'data-event-type': event.eventType },
          h('td', { class: 'nowrap mono' }, formatTime(event.occurredAt)),
          h('td', {}, event.eventType),
          h('td', { class: 'num' }, attemptOf(event) ?? ''),
          h('td', {}, describeEvent(event, formatDuration)),
        );
      }),
    );
    replace(
      attemptsList,
      ...(d.attempts.length === 0
        ? [h('li', { class: 'empty' }, 'No attempt has started yet.')]
        : d.attempts.map((a) =>
            h(
              'li',
              { class: 'attempt', 'data-outcome': a.outcome },
              h('strong', {}, `Attempt ${a.attempt}`),
              ' ',
              h('span', { class: `outcome outcome-${a.outcome.toLowerCase()}` }, a.outcome),
              h('span', { class: 'muted' }, ` · started ${formatTime(a.startedAt)}`, a.finishedAt ? ` · took ${formatDuration(a.durationMs ?? Date.parse(a.finishedAt) - Date.parse(a.startedAt))}` : '', a.worker ? ` · on ${a.worker}` : ''),
              a.error ? h('p', { class: 'error-text' }, `${a.error.code}: ${a.error.message}`) : null,
            ),
          )),
    );
    setText(payload, prettyJson(job.payload));
    setText(result, job.result === undefined ? (done ? 'No result.' : 'No result yet.') : prettyJson(job.result));
    drawTimelineNow();
  };

  const loader = new Loader();
  const load = () => {
    status.loading();
    loader.run(
      ctx.readModel.getJob(id),
      (answer) => {
        detail = answer;
        status.ok();
        draw(answer);
        ctx.shown('job');
      },
      (error) => {
        if (error instanceof ApiRequestError && error.status === 404) {
          // A job just accepted may not be stored yet: its first event brings it.
          status.ok();
          setText(following, 'No job with this id (yet). The page shows it as soon as it exists.');
          following.dataset.state = 'waiting';
        } else {
          status.failed(error);
        }
      },
    );
  };
  const reload = throttle(load, 150);
  const tick = setInterval(() => {
    if (detail && !terminal() && !document.hidden) drawTimelineNow();
  }, 1000);
  const resize = new ResizeObserver(() => {
    const now = Math.floor(timelineWrap.getBoundingClientRect().width);
    if (detail && now > 0 && now !== width) drawTimelineNow();
  });
  resize.observe(timelineWrap);

  load();
  return {
    element,
    title: `Job ${shortId(id)}`,
    refresh: load,
    onEvent(event) {
      if (event.payload.jobId === id && !terminal()) reload();
    },
    destroy() {
      loader.stop();
      reload.cancel();
      clearInterval(tick);
      resize.disconnect();
    },
  };
}
