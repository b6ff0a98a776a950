// @ts-check
// What every view shares: the context it gets from the app (the generated clients, the live
// feed, navigation, the server's clock), the shape a view returns, and the pieces each one
// uses (its heading, its status line, keyset paging links).

import { h, setText, uniqueId } from './dom.js';
import { describeError, formatClock } from './format.js';
import { href, paramsObject } from './router.js';

/** @typedef {import('./api.js').LifecycleEvent} LifecycleEvent */
/** @typedef {import('./router.js').Route} Route */
/** @typedef {import('./router.js').ViewName} ViewName */
/** @typedef {ReturnType<typeof import('./api.js').createReadModelClient>} ReadModelClient */
/** @typedef {ReturnType<typeof import('./api.js').createGatewayClient>} GatewayClient */

/**
 * @typedef {Object} Context
 * @property {ReadModelClient} readModel
 * @property {GatewayClient | null} gateway null: the dashboard is read-only
 * @property {import('./live.js').LiveFeed} live
 * @property {(fragment: string) => void} navigate goes to a fragment (a history entry)
 * @property {() => number} now the server's clock, in ms since epoch
 * @property {(iso: string) => void} syncClock records a server timestamp just received
 * @property {(view: string) => void} shown the view shows data (a performance mark, once)
 */

/**
 * @typedef {Object} View
 * @property {HTMLElement} element
 * @property {string} title for the document's title
 * @property {() => void} refresh refetch what is shown (after a reconnection)
 * @property {(route: Route) => boolean} [update] takes a new route of the same view in place
 * @property {(event: LifecycleEvent) => void} [onEvent]
 * @property {(key: string) => boolean} [onKey] a key pressed outside a field; true if used
 * @property {() => void} [destroy]
 */

/**
 * A table's head row; the `numeric` columns are aligned right, like their cells.
 * @param {string[]} columns
 * @param {string[]} [numeric]
 */
export function tableHead(columns, numeric = []) {
  return h('thead', {}, h('tr', {}, ...columns.map((c) => h('th', { scope: 'col', class: numeric.includes(c) ? 'num' : undefined }, c))));
}

/**
 * A table in a region that scrolls sideways on a narrow screen (focusable, so that the
 * keyboard scrolls it too).
 * @param {string} label what the region holds
 * @param {...import('./dom.js').Child} children
 */
export function scrollRegion(label, ...children) {
  return h('div', { class: 'table-wrap', tabindex: '0', role: 'region', 'aria-label': label }, ...children);
}

/**
 * The view's heading; the app moves the focus to it when the view changes, so that a screen
 * reader starts there.
 * @param {string} text
 * @param {...import('./dom.js').Child} more
 */
export function heading(text, ...more) {
  return h('h1', { tabindex: '-1', class: 'view-title' }, text, ...more);
}

/**
 * The line under a view's heading: loading, up to date as of when, or what failed. Not a live
 * region: it changes with every refetch, which a screen reader would read out each time (the
 * connection indicator and the stale-data notice are the ones that speak up).
 */
export class StatusLine {
  constructor() {
    this.element = h('p', { class: 'status-line' }, 'Loading…');
    /** @type {number | null} */
    this.updatedAt = null;
  }

  loading() {
    this.element.dataset.state = 'loading';
    setText(this.element, this.updatedAt === null ? 'Loading…' : `Refreshing… (updated ${formatClock(new Date(this.updatedAt))})`);
  }

  /** @param {string} [note] */
  ok(note) {
    this.updatedAt = Date.now();
    this.element.dataset.state = 'ok';
    setText(this.element, `Updated ${formatClock(new Date(this.updatedAt))}${note ? ` · ${note}` : ''}`);
  }

  /** @param {unknown} error */
  failed(error) {
    this.element.dataset.state = 'error';
    const since = this.updatedAt === null ? '' : ` Showing what was loaded at ${formatClock(new Date(this.updatedAt))}.`;
    setText(this.element, `Could not load: ${describeError(error)}.${since}`);
  }
}

/**
 * Runs a view's requests so that the newest answer wins: an answer older than one already
 * shown is dropped, and so is every answer to parameters the view has since left (`reset`)
 * or to a view that is gone (`stop`). Refetching the same parameters keeps what is shown
 * until the newer answer comes.
 */
export class Loader {
  constructor() {
    this.params = 0;
    this.sent = 0;
    this.applied = 0;
  }

  /** The view's parameters changed: answers to earlier requests no longer apply. */
  reset() {
    this.params += 1;
  }

  /** The view is gone. */
  stop() {
    this.params = NaN;
  }

  /**
   * @template T
   * @param {Promise<T>} request
   * @param {(value: T) => void} ok
   * @param {(error: unknown) => void} failed
   */
  run(request, ok, failed) {
    const seq = ++this.sent;
    const params = this.params;
    const current = () => params === this.params && seq > this.applied;
    request.then(
      (value) => {
        if (!current()) return;
        this.applied = seq;
        ok(value);
      },
      (error) => {
        if (current()) failed(error);
      },
    );
  }
}

/** Separator of the cursors of the pages before the current one, in the `trail` parameter. */
const TRAIL_SEPARATOR = '~';
/** Stands for the first page (no cursor) in the trail. */
const FIRST_PAGE = '-';

/**
 * Keyset paging in the URL: `cursor` is the current page's cursor (none: the newest page) and
 * `trail` the cursors of the pages before it, so "newer" goes back one page without asking
 * the server for a reverse cursor, and a link or reload keeps the page.
 */
export class Pager {
  /** @param {ViewName} view */
  constructor(view) {
    this.view = view;
    this.newer = h('a', { rel: 'prev', class: 'button' }, '← Newer');
    this.older = h('a', { rel: 'next', class: 'button' }, 'Older →');
    this.page = h('span', { class: 'page-number' });
    this.element = h('nav', { class: 'pager', 'aria-label': 'Pages' }, this.newer, this.page, this.older);
  }

  /**
   * @param {URLSearchParams} params the current route's
   * @param {string | undefined} nextCursor of the page just loaded
   */
  update(params, nextCursor) {
    const current = params.get('cursor') ?? '';
    const trail = (params.get('trail') ?? '').split(TRAIL_SEPARATOR).filter(Boolean);
    const base = paramsObject(params);
    if (current) {
      const previous = trail.slice(0, -1);
      const back = trail[trail.length - 1];
      link(this.newer, href(this.view, {
        ...base,
        cursor: back && back !== FIRST_PAGE ? back : undefined,
        trail: previous.length ? previous.join(TRAIL_SEPARATOR) : undefined,
      }));
    } else {
      link(this.newer, null);
    }
    link(this.older, nextCursor ? href(this.view, {
      ...base,
      cursor: nextCursor,
      trail: [...trail, current || FIRST_PAGE].join(TRAIL_SEPARATOR),
    }) : null);
    setText(this.page, current ? `Page ${trail.length + 1}` : 'Newest');
  }
}

/**
 * Enables a paging link, or disables it (no href: not focusable, announced as disabled).
 * @param {HTMLAnchorElement} anchor
 * @param {string | null} target
 */
function link(anchor, target) {
  if (target) {
    anchor.href = target;
    anchor.removeAttribute('aria-disabled');
  } else {
    anchor.removeAttribute('href');
    anchor.setAttribute('aria-disabled', 'true');
  }
}

/**
 * A `<dt>`/`<dd>` pair of a definition list.
 * @param {string} term
 * @param {import('./dom.js').Child} value
 */
export function definition(term, value) {
  return [h('dt', {}, term), h('dd', {}, value)];
}

/**
 * A labelled form control with an optional hint and the element its errors are shown in (both
 * read with the control, through aria-describedby).
 * @template {HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement} C
 * @param {string} label
 * @param {C} control
 * @param {string} [hint]
 */
export function labelledField(label, control, hint) {
  control.id = control.id || uniqueId('field');
  const error = h('span', { class: 'field-error', id: `${control.id}-error`, hidden: true });
  const hintElement = hint ? h('span', { class: 'hint', id: `${control.id}-hint` }, hint) : null;
  control.setAttribute('aria-describedby', [hintElement?.id, error.id].filter(Boolean).join(' '));
  return { control, error, element: h('div', { class: 'field' }, h('label', { for: control.id }, label), control, hintElement, error) };
}

/**
 * Marks `field` as wrong with `message` shown beside it (and read with it), or clears it.
 * @param {HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement | HTMLFieldSetElement} field
 * @param {HTMLElement} messageElement its error element (an id, referenced by aria-describedby)
 * @param {string | null} message
 */
export function markField(field, messageElement, message) {
  if (message) {
    field.setAttribute('aria-invalid', 'true');
    messageElement.textContent = message;
    messageElement.hidden = false;
  } else {
    field.removeAttribute('aria-invalid');
    messageElement.textContent = '';
    messageElement.hidden = true;
  }
}
