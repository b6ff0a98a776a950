// @ts-check
// Jobs: the table with its filters (status, type, created after/before, id or prefix, page
// size) and keyset paging, all in the URL. Rows follow the live feed; on the newest page a new
// job brings a refetch (throttled), elsewhere only the rows shown change.

import { ApiRequestError, JOB_TYPE_PAYLOAD_SCHEMAS, JobStatusValues } from './api.js';
import { h, uniqueId } from './dom.js';
import { throttle } from './format.js';
import { JobsTable } from './jobs-table.js';
import { href, paramsObject } from './router.js';
import { Loader, Pager, StatusLine, heading, labelledField as field, markField } from './view.js';

/** @typedef {import('./api.js').JobStatus} JobStatus */

/** Page sizes offered; the contract allows 1 to 500. */
const PAGE_SIZES = [50, 100, 500];
const DEFAULT_LIMIT = 50;

/**
 * `2026-12-01T21:11:43` (local time, as a datetime-local input takes it) for an ISO instant.
 * @param {string | null} iso
 */
function toLocalInput(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '';
  const local = new Date(d.getTime() - d.getTimezoneOffset() * 60_000);
  return local.toISOString().slice(0, 19);
}

/**
 * The instant of a datetime-local value, as the API takes it.
 * @param {string} value
 */
function fromLocalInput(value) {
  if (!value) return undefined;
  const d = new Date(value);
  return Number.isNaN(d.getTime()) ? undefined : d.toISOString();
}

/**
 * The page size in the URL, within the contract's bounds.
 * @param {URLSearchParams} params
 */
function limitOf(params) {
  const n = Number(params.get('limit'));
  return Number.isInteger(n) && n >= 1 && n <= 500 ? n : DEFAULT_LIMIT;
}

/**
 * @param {import('./view.js').Context} ctx
 * @param {import('./view.js').Route} route
 * @returns {import('./view.js').View}
 */
export function jobsView(ctx, route) {
  let params = route.params;
  const status = new StatusLine();
  const table = new JobsTable('Jobs');
  const pager = new Pager('jobs');
  const typesList = h('datalist', { id: uniqueId('types') }, ...Object.keys(JOB_TYPE_PAYLOAD_SCHEMAS).map((t) => h('option', { value: t })));

  const fields = {
    status: field('Status', h('select', { name: 'status' }, h('option', { value: '' }, 'any'), ...JobStatusValues.map((s) => h('option', { value: s }, s)))),
    type: field('Type', h('input', { name: 'type', list: typesList.id, autocomplete: 'off', spellcheck: 'false', placeholder: 'any' })),
    createdAfter: field('Created after', h('input', { name: 'createdAfter', type: 'datetime-local', step: '1' })),
    createdBefore: field('Created before', h('input', { name: 'createdBefore', type: 'datetime-local', step: '1' })),
    idPrefix: field('Job id or prefix', h('input', { name: 'idPrefix', type: 'search', autocomplete: 'off', spellcheck: 'false', placeholder: 'e.g. 0b4bd3a4' })),
    limit: field('Rows', h('select', { name: 'limit' }, ...PAGE_SIZES.map((n) => h('option', { value: String(n) }, String(n))))),
  };
  /** @typedef {keyof typeof fields} FieldName */
  const names = /** @type {FieldName[]} */ (Object.keys(fields));

  const form = h(
    'form',
    { class: 'filters', role: 'search', 'aria-label': 'Filter jobs', novalidate: true },
    ...names.map((name) => fields[name].element),
    typesList,
    h('div', { class: 'filter-actions' }, h('button', { type: 'submit' }, 'Apply'), h('a', { href: '#/jobs', class: 'button secondary' }, 'Clear')),
  );
  const element = h('section', { class: 'view view-jobs' }, heading('Jobs'), form, status.element, table.element, pager.element);

  /** The form's state as URL parameters: a new filter starts at the newest page. */
  const formParams = () => {
    const value = (/** @type {FieldName} */ name) => fields[name].control.value.trim();
    const limit = value('limit');
    return {
      status: value('status'),
      type: value('type'),
      createdAfter: fromLocalInput(value('createdAfter')),
      createdBefore: fromLocalInput(value('createdBefore')),
      idPrefix: value('idPrefix'),
      limit: limit === String(DEFAULT_LIMIT) ? undefined : limit,
    };
  };

  const syncForm = () => {
    fields.status.control.value = params.get('status') ?? '';
    fields.type.control.value = params.get('type') ?? '';
    fields.createdAfter.control.value = toLocalInput(params.get('createdAfter'));
    fields.createdBefore.control.value = toLocalInput(params.get('createdBefore'));
    fields.idPrefix.control.value = params.get('idPrefix') ?? '';
    const limit = String(limitOf(params));
    const select = /** @type {HTMLSelectElement} */ (fields.limit.control);
    if (![...select.options].some((o) => o.value === limit)) select.append(h('option', { value: limit }, limit));
    select.value = limit;
    for (const name of names) markField(fields[name].control, fields[name].error, null);
  };

  /** Checks what the server would refuse in a way a person can mend at the field. */
  const check = () => {
    const prefix = fields.idPrefix.control.value.trim();
    const bad = prefix !== '' && !/^[0-9a-fA-F-]{1,36}$/.test(prefix);
    markField(fields.idPrefix.control, fields.idPrefix.error, bad ? 'Use the hex digits of a job id (0–9, a–f), e.g. its first 8.' : null);
    return !bad;
  };

  form.addEventListener('submit', (event) => {
    event.preventDefault();
    if (!check()) {
      fields.idPrefix.control.focus();
      return;
    }
    ctx.navigate(href('jobs', formParams()));
  });
  for (const name of /** @type {FieldName[]} */ (['status', 'limit', 'createdAfter', 'createdBefore'])) {
    fields[name].control.addEventListener('change', () => form.requestSubmit());
  }

  const loader = new Loader();
  const load = () => {
    const statusParam = params.get('status');
    status.loading();
    loader.run(
      ctx.readModel.listJobs({
        status: /** @type {ReadonlyArray<string>} */ (JobStatusValues).includes(statusParam ?? '') ? /** @type {JobStatus} */ (statusParam) : undefined,
        type: params.get('type') || undefined,
        createdAfter: params.get('createdAfter') || undefined,
        createdBefore: params.get('createdBefore') || undefined,
        idPrefix: params.get('idPrefix') || undefined,
        limit: limitOf(params),
        cursor: params.get('cursor') || undefined,
      }),
        (page) => {
          table.setEmptyText(Object.keys(paramsObject(params)).some((k) => k !== 'limit') ? 'No jobs match these filters.' : 'No jobs yet: submit one.');
          table.set(page.items);
          // Events that came while the page was on its way (for rows it brought) still count;
          // an event older than what a row says changes nothing.
          for (const event of ctx.live.recent) table.apply(event);
          pager.update(params, page.nextCursor);
          status.ok(`${page.items.length} job${page.items.length === 1 ? '' : 's'}`);
          ctx.shown('jobs');
        },
        (error) => {
          status.failed(error);
          // The read model names the parameter it refused: show it at that field.
          if (error instanceof ApiRequestError && error.body?.details) {
            for (const detail of error.body.details) {
              const name = /** @type {FieldName} */ (detail.pointer?.replace(/^\//, '') ?? '');
              if (fields[name]) markField(fields[name].control, fields[name].error, detail.message);
            }
          }
        },
      );
  };
  const reconcile = throttle(load, 1000);

  syncForm();
  load();
  return {
    element,
    title: 'Jobs',
    refresh: load,
    update(next) {
      params = next.params;
      reconcile.cancel();
      loader.reset();
      syncForm();
      load();
      return true;
    },
    onEvent(event) {
      const shown = table.apply(event);
      // A new job belongs on the newest page (if the filters take it); the read model says.
      if (!shown && event.eventType === 'job.created' && !params.get('cursor')) reconcile();
    },
    onKey(key) {
      if (key !== '/') return false;
      fields.idPrefix.control.focus();
      return true;
    },
    destroy() {
      reconcile.cancel();
      loader.stop();
    },
  };
}
