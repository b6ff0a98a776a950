// @ts-check
// The view and its state live in the URL fragment (`/#/jobs?status=FAILED&type=fail`), so a
// link, a reload or the back button restores what was shown. Paths such as `/jobs` belong to
// the read model's API; the fragment never reaches the server.

/** @typedef {'overview' | 'jobs' | 'job' | 'events' | 'dead-letters' | 'submit'} ViewName */

/**
 * @typedef {Object} Route
 * @property {ViewName} view
 * @property {string} id the job id of the job view, else ''
 * @property {URLSearchParams} params
 * @property {boolean} known false when the fragment names no view (the overview is shown)
 */

/** The views reachable from the navigation, in order (keys 1–6 select them). */
export const NAV = /** @type {const} */ ([
  ['overview', 'Overview'],
  ['jobs', 'Jobs'],
  ['events', 'Events'],
  ['dead-letters', 'Dead letters'],
  ['submit', 'Submit'],
]);

/**
 * @param {string} hash `location.hash`
 * @returns {Route}
 */
export function parseRoute(hash) {
  const text = hash.replace(/^#/, '');
  const question = text.indexOf('?');
  const path = question < 0 ? text : text.slice(0, question);
  const params = new URLSearchParams(question < 0 ? '' : text.slice(question + 1));
  const parts = path.split('/').filter(Boolean).map(decodeSegment);
  const [first = '', second = ''] = parts;
  if (first === 'jobs' && second) return { view: 'job', id: second, params, known: true };
  for (const [view] of NAV) {
    if (first === view) return { view, id: '', params, known: true };
  }
  return { view: 'overview', id: '', params, known: false };
}

/** @param {string} segment */
function decodeSegment(segment) {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

/**
 * The fragment of a view with `params` (empty values left out).
 * @param {ViewName} view
 * @param {Record<string, string | number | undefined | null>} [params]
 * @param {string} [id] the job, for the job view
 */
export function href(view, params = {}, id = '') {
  const path = view === 'job' ? `#/jobs/${encodeURIComponent(id)}` : `#/${view}`;
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== '') search.set(key, String(value));
  }
  const query = search.toString();
  return query ? `${path}?${query}` : path;
}

/**
 * The params of a route as a plain object, to change one and build a new link.
 * @param {URLSearchParams} params
 * @returns {Record<string, string>}
 */
export function paramsObject(params) {
  return Object.fromEntries(params.entries());
}
