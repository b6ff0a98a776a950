// @ts-check
// A table of jobs that stays cheap at 500 rows: rows are keyed by job id and kept between
// updates; a refetch or an event rewrites only the cells whose text changed, and a first
// fill builds every row in a DocumentFragment before it touches the page.

import { h, setText } from './dom.js';
import { formatDateTime, shortId, statusClass } from './format.js';
import { applyEvent, newer } from './model.js';
import { href } from './router.js';
import { scrollRegion, tableHead } from './view.js';

/** @typedef {import('./api.js').Job} Job */
/** @typedef {import('./api.js').LifecycleEvent} LifecycleEvent */

const COLUMNS = ['Job', 'Type', 'Status', 'Attempts', 'Created', 'Finished', 'Last error'];

/**
 * @typedef {Object} Row
 * @property {Job} job
 * @property {HTMLTableRowElement} tr
 * @property {HTMLElement[]} cells the elements whose text each column shows
 * @property {string[]} texts what they show now
 */

/**
 * The text of each column for `job`.
 * @param {Job} job
 */
function texts(job) {
  return [
    shortId(job.id),
    job.type,
    job.status,
    `${job.attempts} / ${job.maxAttempts}`,
    formatDateTime(job.createdAt),
    formatDateTime(job.finishedAt),
    job.lastError ? `${job.lastError.code}: ${job.lastError.message}` : '',
  ];
}

export class JobsTable {
  /** @param {string} label what the table lists, for assistive technology */
  constructor(label) {
    this.tbody = h('tbody');
    /** @type {Map<string, Row>} */
    this.rows = new Map();
    this.empty = h('p', { class: 'empty', hidden: true }, 'No jobs match.');
    this.element = scrollRegion(
      label,
      h('table', { class: 'jobs-table' }, h('caption', { class: 'visually-hidden' }, `${label}, newest first`), tableHead(COLUMNS, ['Attempts']), this.tbody),
      this.empty,
    );
  }

  /** @param {string} text what to say when there are no rows */
  setEmptyText(text) {
    setText(this.empty, text);
  }

  /**
   * Shows exactly `jobs`, in this order, keeping the rows that were there.
   * @param {Job[]} jobs
   */
  set(jobs) {
    performance.mark('observatory:jobs-render-start');
    const wanted = new Set(jobs.map((j) => j.id));
    for (const [id, row] of this.rows) {
      if (!wanted.has(id)) {
        row.tr.remove();
        this.rows.delete(id);
      }
    }
    if (this.rows.size === 0) {
      const fragment = document.createDocumentFragment();
      for (const job of jobs) fragment.appendChild(this.row(job).tr);
      this.tbody.appendChild(fragment);
    } else {
      /** @type {ChildNode | null} */
      let next = this.tbody.firstChild;
      for (const job of jobs) {
        const existing = this.rows.get(job.id);
        const row = existing ?? this.row(job);
        if (existing) this.show(existing, newer(existing.job, job));
        if (row.tr === next) next = next.nextSibling;
        else this.tbody.insertBefore(row.tr, next);
      }
    }
    this.empty.hidden = jobs.length > 0;
    performance.clearMeasures('observatory:jobs-render');
    performance.measure('observatory:jobs-render', 'observatory:jobs-render-start');
  }

  /**
   * Applies a lifecycle event to its job's row; false when the job is not shown.
   * @param {LifecycleEvent} event
   */
  apply(event) {
    const row = this.rows.get(event.payload.jobId);
    if (!row) return false;
    this.show(row, applyEvent(row.job, event));
    return true;
  }

  /** @param {string} id */
  has(id) {
    return this.rows.has(id);
  }

  /**
   * A new row for `job`, registered.
   * @param {Job} job
   * @returns {Row}
   */
  row(job) {
    const link = h('a', { href: href('job', {}, job.id), class: 'mono', title: job.id });
    const badge = h('span', {});
    const error = h('span', { class: 'error-text' });
    const cells = [link, h('td', {}), badge, h('td', { class: 'num' }), h('td', { class: 'nowrap' }), h('td', { class: 'nowrap' }), error];
    const tr = h(
      'tr',
      { 'data-job-id': job.id },
      h('th', { scope: 'row' }, link),
      cells[1],
      h('td', {}, badge),
      cells[3],
      cells[4],
      cells[5],
      h('td', { class: 'last-error' }, error),
    );
    /** @type {Row} */
    const row = { job, tr, cells, texts: COLUMNS.map(() => '') };
    this.rows.set(job.id, row);
    this.show(row, job);
    return row;
  }

  /**
   * Writes the cells of `row` that differ for `job`.
   * @param {Row} row
   * @param {Job} job
   */
  show(row, job) {
    const before = row.job;
    row.job = job;
    const now = texts(job);
    for (let i = 0; i < now.length; i++) {
      if (now[i] === row.texts[i]) continue;
      row.texts[i] = now[i];
      setText(row.cells[i], now[i]);
    }
    if (before.status !== job.status || !row.cells[2].className) {
      row.cells[2].className = statusClass(job.status);
      row.tr.dataset.status = job.status;
    }
  }
}
