// @ts-check
// Events: a live tail of lifecycle events, newest first, with a type filter (in the URL) and
// a pause. While paused, new events wait in a buffer (counted on screen) and come in on resume.

import { EventTypeValues } from './api.js';
import { h, setText, uniqueId } from './dom.js';
import { formatDuration, formatTime, shortId } from './format.js';
import { asLifecycleEvent, attemptOf, describeEvent } from './model.js';
import { href } from './router.js';
import { Loader, StatusLine, heading, scrollRegion, tableHead } from './view.js';

/** @typedef {import('./api.js').LifecycleEvent} LifecycleEvent */
/** @typedef {import('./api.js').EventType} EventType */

/** Rows kept on screen; older ones drop off the end. */
const MAX_ROWS = 300;
/** Events fetched when the view opens (or catches up). */
const INITIAL = 100;

/**
 * @param {LifecycleEvent} event
 */
function row(event) {
  const attempt = attemptOf(event);
  return h(
    'tr',
    { 'data-event-id': event.eventId, 'data-event-type': event.eventType },
    h('td', { class: 'nowrap mono' }, formatTime(event.occurredAt)),
    h('td', {}, h('span', { class: `event-type event-${event.eventType.replace('job.', '')}` }, event.eventType)),
    h('td', {}, h('a', { href: href('job', {}, event.payload.jobId), class: 'mono', title: event.payload.jobId }, shortId(event.payload.jobId))),
    h('td', {}, event.payload.type),
    h('td', { class: 'num' }, attempt ?? ''),
    h('td', {}, describeEvent(event, formatDuration)),
  );
}

/**
 * @param {import('./view.js').Context} ctx
 * @param {import('./view.js').Route} route
 * @returns {import('./view.js').View}
 */
export function eventsView(ctx, route) {
  let params = route.params;
  const status = new StatusLine();
  const typeId = uniqueId('event-type');
  const typeSelect = h('select', { id: typeId, name: 'type' }, h('option', { value: '' }, 'any'), ...EventTypeValues.map((t) => h('option', { value: t }, t)));
  const pauseButton = h('button', { type: 'button', 'aria-pressed': 'false', class: 'pause' }, 'Pause');
  const buffered = h('span', { class: 'buffered' });
  const tbody = h('tbody');
  const empty = h('p', { class: 'empty', hidden: true }, 'No events yet.');
  const element = h(
    'section',
    { class: 'view view-events' },
    heading('Events'),
    h(
      'form',
      { class: 'filters', role: 'search', 'aria-label': 'Filter events' },
      h('div', { class: 'field' }, h('label', { for: typeId }, 'Type'), typeSelect),
      h('div', { class: 'filter-actions' }, pauseButton, buffered),
    ),
    status.element,
    scrollRegion(
      'Events',
      h('table', { class: 'events-table' }, h('caption', { class: 'visually-hidden' }, 'Lifecycle events, newest first'), tableHead(['Time', 'Event', 'Job', 'Type', 'Attempt', 'Detail'], ['Attempt']), tbody),
      empty,
    ),
  );

  let paused = false;
  /** @type {LifecycleEvent[]} */
  let buffer = [];
  /** @type {Set<string>} */
  const shown = new Set();

  const filterType = () => {
    const t = params.get('type') ?? '';
    return /** @type {ReadonlyArray<string>} */ (EventTypeValues).includes(t) ? /** @type {EventType} */ (t) : undefined;
  };

  /**
   * Puts events (newest first) on top of the table, dropping what is already there.
   * @param {LifecycleEvent[]} events
   */
  const prepend = (events) => {
    const fragment = document.createDocumentFragment();
    for (const event of events) {
      if (shown.has(event.eventId)) continue;
      shown.add(event.eventId);
      fragment.appendChild(row(event));
    }
    tbody.insertBefore(fragment, tbody.firstChild);
    while (tbody.rows.length > MAX_ROWS) {
      const last = tbody.rows[tbody.rows.length - 1];
      shown.delete(last.dataset.eventId ?? '');
      last.remove();
    }
    empty.hidden = tbody.rows.length > 0;
  };

  /** Events that came since the last frame, oldest first: drawn together, once a frame. */
  /** @type {LifecycleEvent[]} */
  let incoming = [];
  const flush = () => {
    const events = incoming;
    incoming = [];
    prepend(events.reverse());
  };

  const showBuffered = () => {
    setText(buffered, paused ? `Paused: ${buffer.length} new event${buffer.length === 1 ? '' : 's'} waiting.` : '');
  };

  const setPaused = (/** @type {boolean} */ value) => {
    paused = value;
    pauseButton.setAttribute('aria-pressed', String(paused));
    setText(pauseButton, paused ? 'Resume' : 'Pause');
    if (!paused && buffer.length) {
      prepend(buffer.reverse());
      buffer = [];
    }
    showBuffered();
  };
  pauseButton.addEventListener('click', () => setPaused(!paused));
  typeSelect.addEventListener('change', () => ctx.navigate(href('events', { type: typeSelect.value })));

  const loader = new Loader();
  const load = () => {
    status.loading();
    loader.run(
      ctx.readModel.listEvents({ eventType: filterType(), limit: INITIAL }),
      (page) => {
        // The newest stored events, merged with what is shown (the ids say which are new).
        const fresh = page.items.map(asLifecycleEvent).filter((e) => !shown.has(e.eventId));
        if (paused) buffer.push(...fresh.reverse());
        else prepend(fresh);
        showBuffered();
        empty.hidden = tbody.rows.length > 0;
        status.ok(paused ? 'paused' : 'live tail');
        ctx.shown('events');
      },
      (error) => status.failed(error),
    );
  };

  const reset = () => {
    loader.reset();
    typeSelect.value = filterType() ?? '';
    tbody.replaceChildren();
    shown.clear();
    buffer = [];
    incoming = [];
    showBuffered();
    load();
  };

  reset();
  return {
    element,
    title: 'Events',
    refresh: load,
    update(next) {
      params = next.params;
      reset();
      return true;
    },
    onEvent(event) {
      const type = filterType();
      if (type && event.eventType !== type) return;
      if (paused) {
        buffer.push(event);
        showBuffered();
      } else {
        if (incoming.length === 0) requestAnimationFrame(flush);
        incoming.push(event);
      }
    },
    destroy() {
      loader.stop();
    },
    onKey(key) {
      if (key === 'p') {
        setPaused(!paused);
        return true;
      }
      if (key === '/') {
        typeSelect.focus();
        return true;
      }
      return false;
    },
  };
}
