// @ts-check
// Submit: a form per built-in job type, generated from its payload schema, or a JSON editor for
// any other type. The payload is checked against the schema before anything is sent; what the
// gateway refuses comes back as the contract's ApiError, whose details are shown at the fields
// their JSON pointers name. Jobs submitted here are listed below the form and follow the live
// feed, so a job is seen reaching its end without a reload.

import { ApiRequestError, JOB_TYPE_PAYLOAD_SCHEMAS } from './api.js';
import { h, replace, setText } from './dom.js';
import { describeError, shortId } from './format.js';
import { JobsTable } from './jobs-table.js';
import { applyEvent, jobFromCreated, newer } from './model.js';
import { href } from './router.js';
import { PayloadForm } from './schema-form.js';
import { heading, labelledField as field, markField } from './view.js';

/** @typedef {import('./api.js').Job} Job */
/** @typedef {import('./api.js').JobSubmission} JobSubmission */
/** @typedef {import('./api.js').LifecycleEvent} LifecycleEvent */
/** @typedef {import('./schema-form.js').Problem} Problem */

/** The type select's value for a type that is not built in. */
const OTHER = 'other';
/** How many submissions the list below the form keeps. */
const KEEP = 10;

/**
 * Jobs submitted from this page (newest first), kept while the page is open so that leaving
 * the view and coming back shows them still.
 * @type {{id: string, job: Job | null}[]}
 */
const submitted = [];

/**
 * @param {import('./view.js').Context} ctx
 * @param {import('./view.js').Route} route
 * @returns {import('./view.js').View}
 */
export function submitView(ctx, route) {
  const gateway = ctx.gateway;
  if (!gateway) {
    const element = h(
      'section',
      { class: 'view view-submit' },
      heading('Submit a job'),
      h('p', { class: 'note warning', 'data-read-only': 'true' }, 'This dashboard is read-only: the read model was started without a gateway URL, so it cannot submit jobs. Start it with --gateway-url (observatory up sets it by itself).'),
    );
    return { element, title: 'Submit', refresh() {} };
  }

  const builtIn = Object.keys(JOB_TYPE_PAYLOAD_SCHEMAS);
  const typeField = field('Type', h('select', { name: 'type' }, ...builtIn.map((t) => h('option', { value: t }, t)), h('option', { value: OTHER }, 'another type (JSON payload)')));
  const customType = field('Type name', h('input', { name: 'customType', autocomplete: 'off', spellcheck: 'false', placeholder: 'e.g. resize-image' }), 'Only sleep, compute and fail run here; another type fails at the processor, without retries.');
  const json = field('Payload (JSON object)', h('textarea', { name: 'payload', rows: '5', spellcheck: 'false' }));
  json.control.value = '{}';
  const maxAttempts = field('Max attempts', h('input', { name: 'maxAttempts', type: 'number', inputmode: 'numeric', step: '1', placeholder: '3' }), 'Attempts before the job is dead-lettered; empty: the gateway’s default.');
  const idempotencyKey = field('Idempotency key', h('input', { name: 'idempotencyKey', autocomplete: 'off', spellcheck: 'false' }), 'Optional: the same key submits the same job once.');
  const payloadSlot = h('div', { class: 'payload-slot' });
  const formErrors = h('div', { class: 'form-errors', role: 'alert', tabindex: '-1' });
  const sendButton = h('button', { type: 'submit' }, 'Submit');
  const outcome = h('p', { class: 'outcome', role: 'status' });
  const form = h(
    'form',
    { class: 'submit-form', novalidate: true, 'aria-label': 'Submit a job' },
    typeField.element,
    customType.element,
    payloadSlot,
    maxAttempts.element,
    idempotencyKey.element,
    formErrors,
    h('div', { class: 'filter-actions' }, sendButton),
    outcome,
  );
  const table = new JobsTable('Jobs submitted from this page');
  table.setEmptyText('Nothing submitted from this page yet.');
  const element = h(
    'section',
    { class: 'view view-submit' },
    heading('Submit a job'),
    form,
    h('section', { class: 'panel', 'aria-labelledby': 'submitted-title' }, h('h2', { id: 'submitted-title' }, 'Submitted from this page'), table.element),
  );

  /** @type {PayloadForm | null} */
  let payloadForm = null;
  /** The type chosen: a built-in type, or OTHER. */
  let chosen = '';

  /** @param {string} type */
  const choose = (type) => {
    chosen = builtIn.includes(type) ? type : type === OTHER ? OTHER : builtIn[0] ?? OTHER;
    typeField.control.value = chosen;
    customType.element.hidden = chosen !== OTHER;
    if (chosen === OTHER) {
      payloadForm = null;
      replace(payloadSlot, json.element);
    } else {
      payloadForm = new PayloadForm(JOB_TYPE_PAYLOAD_SCHEMAS[chosen], `Payload of ${chosen}`);
      replace(payloadSlot, payloadForm.element);
    }
    clearProblems();
  };

  const clearProblems = () => {
    for (const f of [typeField, customType, json, maxAttempts, idempotencyKey]) markField(f.control, f.error, null);
    payloadForm?.clear();
    replace(formErrors);
  };

  /**
   * Shows each problem at the field its pointer names (pointers into the submission body);
   * what no field takes is listed above the button.
   * @param {Problem[]} problems
   */
  const showProblems = (problems) => {
    /** @type {string[]} */
    const unplaced = [];
    for (const { pointer, message } of problems) {
      const place = pointer === '/type' ? (chosen === OTHER ? customType : typeField) : pointer === '/maxAttempts' ? maxAttempts : null;
      if (place) {
        markField(place.control, place.error, message);
      } else if (chosen === OTHER && (pointer === '/payload' || pointer.startsWith('/payload/'))) {
        markField(json.control, json.error, pointer === '/payload' ? message : `${pointer.slice('/payload'.length)}: ${message}`);
      } else if (pointer.startsWith('/payload/') && payloadForm?.show(pointer.slice('/payload'.length), message)) {
        // shown at its field
      } else {
        unplaced.push(pointer ? `${pointer}: ${message}` : message);
      }
    }
    if (unplaced.length) replace(formErrors, h('ul', {}, ...unplaced.map((text) => h('li', {}, text))));
    const first = form.querySelector('[aria-invalid="true"]');
    if (first instanceof HTMLElement) first.focus();
    else if (unplaced.length) formErrors.focus();
  };

  /**
   * The submission the form holds, and what is wrong with it as far as this page can tell.
   * @returns {{body: JobSubmission, problems: Problem[]}}
   */
  const read = () => {
    /** @type {Problem[]} */
    const problems = [];
    const type = chosen === OTHER ? customType.control.value.trim() : chosen;
    if (!type) problems.push({ pointer: '/type', message: 'is required' });
    /** @type {Record<string, any>} */
    let payload = {};
    if (payloadForm) {
      const checked = payloadForm.read();
      payload = checked.value;
      problems.push(...checked.problems.map((p) => ({ pointer: `/payload${p.pointer}`, message: p.message })));
    } else {
      try {
        const parsed = JSON.parse(json.control.value || '{}');
        if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) problems.push({ pointer: '/payload', message: 'must be a JSON object, e.g. {}' });
        else payload = parsed;
      } catch (e) {
        problems.push({ pointer: '/payload', message: `is not valid JSON (${e instanceof Error ? e.message : e})` });
      }
    }
    /** @type {JobSubmission} */
    const body = { type, payload };
    const attempts = maxAttempts.control.value.trim();
    if (attempts !== '' || /** @type {HTMLInputElement} */ (maxAttempts.control).validity.badInput) {
      const n = Number(attempts);
      if (attempts === '' || !Number.isInteger(n)) problems.push({ pointer: '/maxAttempts', message: 'must be a whole number' });
      else body.maxAttempts = n;
    }
    return { body, problems };
  };

  /** Shows what is known of the submitted jobs. */
  const drawSubmitted = () => {
    table.set(submitted.flatMap((s) => (s.job ? [s.job] : [])));
  };

  /**
   * Starts following a job just accepted: the events already seen, then the stored job.
   * @param {string} id
   */
  const follow = (id) => {
    // The same job again (an idempotency key used twice) moves to the top.
    const known = submitted.findIndex((s) => s.id === id);
    const entry = known >= 0 ? submitted.splice(known, 1)[0] : { id, job: /** @type {Job | null} */ (null) };
    submitted.unshift(entry);
    submitted.splice(KEEP);
    for (const event of ctx.live.recentFor(id)) take(event);
    drawSubmitted();
    ctx.readModel.getJob(id).then(
      (detail) => {
        entry.job = newer(entry.job ?? undefined, detail.job);
        drawSubmitted();
      },
      () => {
        // Not stored yet: its events will bring it.
      },
    );
  };

  /**
   * Applies an event to the submitted job it is about; false when it is about another job.
   * @param {LifecycleEvent} event
   */
  const take = (event) => {
    const entry = submitted.find((s) => s.id === event.payload.jobId);
    if (!entry) return false;
    if (event.eventType === 'job.created') entry.job = entry.job ?? jobFromCreated(event);
    else if (entry.job) entry.job = applyEvent(entry.job, event);
    return true;
  };

  form.addEventListener('submit', (event) => {
    event.preventDefault();
    clearProblems();
    setText(outcome, '');
    const { body, problems } = read();
    if (problems.length) {
      showProblems(problems);
      setText(outcome, 'Not sent: mend the fields marked above.');
      return;
    }
    const key = idempotencyKey.control.value.trim();
    sendButton.disabled = true;
    setText(outcome, 'Sending…');
    gateway.submitJob(body, { idempotencyKey: key || undefined }).then(
      (accepted) => {
        sendButton.disabled = false;
        replace(
          outcome,
          accepted.duplicate ? 'Already submitted: job ' : 'Accepted: job ',
          h('a', { href: href('job', {}, accepted.jobId), class: 'mono', 'data-job-id': accepted.jobId }, shortId(accepted.jobId)),
          ` (${accepted.status}). It is listed below and follows live.`,
        );
        follow(accepted.jobId);
      },
      (error) => {
        sendButton.disabled = false;
        if (error instanceof ApiRequestError && error.body?.details?.length) {
          showProblems(error.body.details.map((d) => ({ pointer: d.pointer ?? '', message: d.message })));
          setText(outcome, `Refused by the gateway: ${error.body.message}.`);
        } else {
          setText(outcome, `Not submitted: ${describeError(error)}.`);
        }
      },
    );
  });
  typeField.control.addEventListener('change', () => ctx.navigate(href('submit', { type: typeField.control.value })));

  choose(route.params.get('type') ?? '');
  drawSubmitted();
  ctx.shown('submit');
  return {
    element,
    title: 'Submit',
    refresh() {
      for (const entry of submitted) {
        ctx.readModel.getJob(entry.id).then(
          (detail) => {
            entry.job = newer(entry.job ?? undefined, detail.job);
            drawSubmitted();
          },
          () => {},
        );
      }
    },
    update(next) {
      const type = next.params.get('type') ?? '';
      if (type !== chosen) choose(type);
      return true;
    },
    onEvent(event) {
      if (take(event)) drawSubmitted();
    },
  };
}
