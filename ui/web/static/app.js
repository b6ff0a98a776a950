// @ts-check
// The dashboard's entry point: makes the generated clients (the read model at this page's
// origin, the gateway named by the page), opens the live feed, and shows the view the URL
// fragment names, handing it the feed's events and reconnections. It also keeps the
// connection indicator, the stale-data notice, the document title and the keyboard shortcuts.

import { createGatewayClient, createReadModelClient } from './api.js';
import { setText } from './dom.js';
import { formatClock } from './format.js';
import { LiveFeed } from './live.js';
import { NAV, href, parseRoute } from './router.js';
import { deadLettersView } from './view-dead-letters.js';
import { eventsView } from './view-events.js';
import { jobView } from './view-job.js';
import { jobsView } from './view-jobs.js';
import { overviewView } from './view-overview.js';
import { submitView } from './view-submit.js';

/** @typedef {import('./view.js').View} View */
/** @typedef {import('./view.js').Context} Context */
/** @typedef {import('./router.js').Route} Route */
/** @typedef {import('./live.js').LiveState} LiveState */

/** @type {Record<import('./router.js').ViewName, (ctx: Context, route: Route) => View>} */
const VIEWS = {
  overview: overviewView,
  jobs: jobsView,
  job: jobView,
  events: eventsView,
  'dead-letters': deadLettersView,
  submit: submitView,
};

/** What the indicator says in each state. */
const LIVE_LABELS = /** @type {Record<LiveState, string>} */ ({
  connecting: 'Connecting…',
  live: 'Live',
  reconnecting: 'Reconnecting…',
  offline: 'Offline',
  paused: 'Paused (tab hidden)',
});

/**
 * @template {HTMLElement} T
 * @param {string} id
 * @returns {T}
 */
function byId(id) {
  const element = document.getElementById(id);
  if (!element) throw new Error(`the page has no #${id}`);
  return /** @type {T} */ (element);
}

const main = byId('view');
const indicator = byId('connection');
const indicatorLabel = byId('connection-label');
const stale = byId('stale');
const help = /** @type {HTMLDialogElement} */ (byId('keys'));

const gatewayUrl = document.querySelector('meta[name="observatory-gateway"]')?.getAttribute('content')?.trim() ?? '';
const readModel = createReadModelClient(location.origin);
const live = new LiveFeed(() => readModel.streamEvents());
let clockOffset = 0;
let firstShown = false;

/** @type {Context} */
const ctx = {
  readModel,
  gateway: gatewayUrl ? createGatewayClient(gatewayUrl) : null,
  live,
  navigate(fragment) {
    if (location.hash !== fragment) location.hash = fragment;
  },
  now: () => Date.now() + clockOffset,
  syncClock(iso) {
    const at = Date.parse(iso);
    if (!Number.isNaN(at)) clockOffset = at - Date.now();
  },
  shown(view) {
    if (firstShown) return;
    firstShown = true;
    // Navigation start → the first view's data in the page, then painted (the second mark is
    // set in the task after the frame that draws it): what `cargo xtask bench --dashboard`
    // reports as the time to the first interactive view.
    performance.mark('observatory:first-data', { detail: view });
    requestAnimationFrame(() => setTimeout(() => performance.mark('observatory:first-view', { detail: view })));
  },
};

if (!ctx.gateway) {
  document.documentElement.dataset.readOnly = 'true';
  for (const link of document.querySelectorAll('a[href="#/submit"]')) link.closest('li')?.remove();
}

/** @type {{view: View, route: Route} | null} */
let current = null;

/** @param {boolean} initial */
function show(initial) {
  let route = parseRoute(location.hash);
  if (!route.known) {
    // No fragment, or one that names no view: the overview, under its own URL.
    history.replaceState(null, '', href('overview'));
    route = parseRoute(location.hash);
  }
  const same = current && current.route.view === route.view && current.route.id === route.id;
  if (same && current?.view.update?.(route)) {
    current.route = route;
    return;
  }
  current?.view.destroy?.();
  const view = VIEWS[route.view](ctx, route);
  current = { view, route };
  main.replaceChildren(view.element);
  document.title = `${view.title} · Observatory`;
  for (const link of document.querySelectorAll('nav.views a')) {
    const target = /** @type {HTMLAnchorElement} */ (link).getAttribute('href') ?? '';
    const here = target === `#/${route.view === 'job' ? 'jobs' : route.view}`;
    if (here) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  if (!initial) view.element.querySelector('h1')?.focus({ preventScroll: false });
}

/** @param {LiveState} state */
function showLiveState(state) {
  indicator.dataset.state = state;
  setText(indicatorLabel, LIVE_LABELS[state]);
  const behind = state === 'reconnecting' || state === 'offline';
  main.classList.toggle('stale', behind);
  stale.hidden = !behind;
  if (behind) {
    const since = live.lastLive === null ? '' : ` since ${formatClock(new Date(live.lastLive))}`;
    setText(stale, `Not live${since}: what is shown may be out of date. Reconnecting by itself…`);
  }
}

live.subscribe({
  event: (event) => current?.view.onEvent?.(event),
  state: showLiveState,
  opened: () => current?.view.refresh(),
});

window.addEventListener('hashchange', () => show(false));

document.addEventListener('keydown', (event) => {
  if (event.ctrlKey || event.metaKey || event.altKey || event.defaultPrevented) return;
  const target = /** @type {HTMLElement} */ (event.target);
  if (target.closest('input, select, textarea, [contenteditable], dialog')) return;
  const index = Number(event.key) - 1;
  if (Number.isInteger(index) && index >= 0 && index < NAV.length) {
    const [view] = NAV[index];
    if (view !== 'submit' || ctx.gateway) ctx.navigate(href(view));
  } else if (event.key === '?') {
    help.showModal();
  } else if (!current?.view.onKey?.(event.key)) {
    return;
  }
  event.preventDefault();
});

byId('keys-button').addEventListener('click', () => help.showModal());
byId('keys-close').addEventListener('click', () => help.close());
byId('skip').addEventListener('click', (event) => {
  // The fragment holds the route: move the focus without touching it.
  event.preventDefault();
  main.focus();
});

showLiveState(live.state);
show(true);
live.start();
