// @ts-check
// Forms generated from a job type's payload schema (`JOB_TYPE_PAYLOAD_SCHEMAS` in the
// generated module): one control per property, labelled with its name and described with the
// schema's description, and a check of the value against the schema before anything is sent.
// The check covers the draft-07 keywords the contracts' payload schemas use (type, required,
// properties, additionalProperties: false, enum, minimum/maximum and their exclusive forms,
// minLength/maxLength, pattern); anything else is left to the server, whose errors are shown at
// the field their JSON pointer names.

import { h, uniqueId } from './dom.js';
import { markField } from './view.js';

/** @typedef {import('./api.js').JsonSchema} JsonSchema */
/** @typedef {{pointer: string, message: string}} Problem */

/**
 * @typedef {Object} Control
 * @property {HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement} input
 * @property {HTMLElement} error
 * @property {() => {value?: unknown, problem?: string}} read what it holds, parsed
 */

/**
 * Every way `value` breaks `schema`, each at its JSON pointer.
 * @param {JsonSchema} schema
 * @param {unknown} value
 * @param {string} [pointer]
 * @returns {Problem[]}
 */
export function validate(schema, value, pointer = '') {
  /** @type {Problem[]} */
  const problems = [];
  const fail = (/** @type {string} */ message) => problems.push({ pointer, message });
  const type = schema.type;
  if (typeof type === 'string' && !hasType(value, type)) {
    fail(`must be ${article(type)}`);
    return problems;
  }
  if (Array.isArray(schema.enum) && !schema.enum.some((v) => v === value)) fail(`must be one of ${schema.enum.map((v) => JSON.stringify(v)).join(', ')}`);
  if (typeof value === 'number') {
    if (typeof schema.minimum === 'number' && value < schema.minimum) fail(`must be at least ${schema.minimum}`);
    if (typeof schema.maximum === 'number' && value > schema.maximum) fail(`must be at most ${schema.maximum}`);
    if (typeof schema.exclusiveMinimum === 'number' && value <= schema.exclusiveMinimum) fail(`must be more than ${schema.exclusiveMinimum}`);
    if (typeof schema.exclusiveMaximum === 'number' && value >= schema.exclusiveMaximum) fail(`must be less than ${schema.exclusiveMaximum}`);
  }
  if (typeof value === 'string') {
    const length = [...value].length;
    if (typeof schema.minLength === 'number' && length < schema.minLength) fail(`must be at least ${schema.minLength} characters`);
    if (typeof schema.maxLength === 'number' && length > schema.maxLength) fail(`must be at most ${schema.maxLength} characters`);
    if (typeof schema.pattern === 'string' && !new RegExp(schema.pattern, 'u').test(value)) fail(`must match ${schema.pattern}`);
  }
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    const object = /** @type {Record<string, unknown>} */ (value);
    const properties = /** @type {Record<string, JsonSchema>} */ (schema.properties ?? {});
    for (const name of Array.isArray(schema.required) ? schema.required : []) {
      if (!(name in object)) problems.push({ pointer: `${pointer}/${escapePointer(name)}`, message: 'is required' });
    }
    for (const [name, item] of Object.entries(object)) {
      const sub = properties[name];
      if (sub) problems.push(...validate(sub, item, `${pointer}/${escapePointer(name)}`));
      else if (schema.additionalProperties === false) problems.push({ pointer: `${pointer}/${escapePointer(name)}`, message: 'is not allowed here' });
    }
  }
  return problems;
}

/**
 * @param {unknown} value
 * @param {string} type
 */
function hasType(value, type) {
  switch (type) {
    case 'integer':
      return typeof value === 'number' && Number.isInteger(value);
    case 'number':
      return typeof value === 'number' && Number.isFinite(value);
    case 'object':
      return value !== null && typeof value === 'object' && !Array.isArray(value);
    case 'array':
      return Array.isArray(value);
    case 'null':
      return value === null;
    default:
      return typeof value === type;
  }
}

/** @param {string} type */
function article(type) {
  return { integer: 'a whole number', number: 'a number', object: 'a JSON object', array: 'a JSON array', string: 'text', boolean: 'true or false', null: 'null' }[type] ?? type;
}

/** @param {string} name */
export function escapePointer(name) {
  return name.replace(/~/g, '~0').replace(/\//g, '~1');
}

/**
 * A control for one property of a payload schema.
 * @param {string} name
 * @param {JsonSchema} schema
 * @param {boolean} required
 * @returns {Control & {element: HTMLElement}}
 */
function propertyControl(name, schema, required) {
  const id = uniqueId(`payload-${name}`);
  const error = h('span', { class: 'field-error', id: `${id}-error`, hidden: true });
  const hint = schema.description ? h('span', { class: 'hint', id: `${id}-hint` }, schema.description) : null;
  const describedBy = [hint ? `${id}-hint` : '', `${id}-error`].filter(Boolean).join(' ');
  const bounds = [typeof schema.minimum === 'number' ? `≥ ${schema.minimum}` : '', typeof schema.maximum === 'number' ? `≤ ${schema.maximum}` : ''].filter(Boolean).join(', ');
  const label = h('label', { for: id }, name, required ? h('span', { class: 'required' }, ' (required)') : null, bounds ? h('span', { class: 'muted' }, ` ${bounds}`) : null);
  /** @type {HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement} */
  let input;
  /** @type {Control['read']} */
  let read;
  if (Array.isArray(schema.enum)) {
    const values = /** @type {unknown[]} */ (schema.enum);
    const select = h('select', { id, name, 'aria-describedby': describedBy }, required ? null : h('option', { value: '' }, '(not set)'), ...values.map((v, i) => h('option', { value: String(i) }, JSON.stringify(v))));
    input = select;
    read = () => (select.value === '' ? {} : { value: values[Number(select.value)] });
  } else if (schema.type === 'boolean') {
    const box = h('input', { id, name, type: 'checkbox', 'aria-describedby': describedBy });
    input = box;
    read = () => ({ value: box.checked });
  } else if (schema.type === 'integer' || schema.type === 'number') {
    const field = h('input', {
      id,
      name,
      type: 'number',
      inputmode: schema.type === 'integer' ? 'numeric' : 'decimal',
      step: schema.type === 'integer' ? '1' : 'any',
      'aria-describedby': describedBy,
      'aria-required': required ? 'true' : undefined,
    });
    input = field;
    read = () => {
      const text = field.value.trim();
      if (text === '') return field.validity.badInput ? { problem: `must be ${article(String(schema.type))}` } : {};
      const n = Number(text);
      return Number.isFinite(n) ? { value: n } : { problem: `must be ${article(String(schema.type))}` };
    };
  } else if (schema.type === 'string') {
    const field = h('input', { id, name, type: 'text', autocomplete: 'off', 'aria-describedby': describedBy, 'aria-required': required ? 'true' : undefined });
    input = field;
    read = () => (field.value === '' ? {} : { value: field.value });
  } else {
    const area = h('textarea', { id, name, rows: '3', spellcheck: 'false', 'aria-describedby': describedBy, placeholder: 'JSON' });
    input = area;
    read = () => {
      if (area.value.trim() === '') return {};
      try {
        return { value: JSON.parse(area.value) };
      } catch (e) {
        return { problem: `is not valid JSON (${e instanceof Error ? e.message : e})` };
      }
    };
  }
  const element = h('div', { class: `field${schema.type === 'boolean' ? ' field-checkbox' : ''}` }, label, input, hint, error);
  return { element, input, error, read };
}

/** A fieldset for an object schema's properties, with its value and its problems. */
export class PayloadForm {
  /**
   * @param {JsonSchema} schema an object schema
   * @param {string} legend
   */
  constructor(schema, legend) {
    this.schema = schema;
    const properties = /** @type {Record<string, JsonSchema>} */ (schema.properties ?? {});
    const required = Array.isArray(schema.required) ? schema.required : [];
    /** @type {Map<string, Control>} pointer → control */
    this.controls = new Map();
    const items = Object.entries(properties).map(([name, sub]) => {
      const control = propertyControl(name, sub, required.includes(name));
      this.controls.set(`/${escapePointer(name)}`, control);
      return control.element;
    });
    this.element = h(
      'fieldset',
      { class: 'payload' },
      h('legend', {}, legend),
      schema.description ? h('p', { class: 'hint' }, schema.description) : null,
      ...items,
      items.length === 0 ? h('p', { class: 'hint' }, 'This type takes no input.') : null,
    );
  }

  /**
   * The payload the controls hold, and every problem with it (pointers relative to the
   * payload).
   * @returns {{value: Record<string, unknown>, problems: Problem[]}}
   */
  read() {
    /** @type {Record<string, unknown>} */
    const value = {};
    /** @type {Problem[]} */
    const problems = [];
    for (const [pointer, control] of this.controls) {
      const name = pointer.slice(1).replace(/~1/g, '/').replace(/~0/g, '~');
      const { value: v, problem } = control.read();
      if (problem) problems.push({ pointer, message: problem });
      else if (v !== undefined) value[name] = v;
    }
    const reported = new Set(problems.map((p) => p.pointer));
    problems.push(...validate(this.schema, value).filter((p) => !reported.has(p.pointer)));
    return { value, problems };
  }

  /**
   * Shows `message` at the control for `pointer` (relative to the payload); false when no
   * control is there.
   * @param {string} pointer
   * @param {string} message
   */
  show(pointer, message) {
    const control = this.controls.get(pointer);
    if (!control) return false;
    const current = control.error.hidden ? '' : `${control.error.textContent}; `;
    markField(control.input, control.error, `${current}${message}`);
    return true;
  }

  /** The first control shown as wrong, to move the focus to. */
  firstInvalid() {
    for (const control of this.controls.values()) if (control.input.getAttribute('aria-invalid') === 'true') return control.input;
    return null;
  }

  clear() {
    for (const control of this.controls.values()) markField(control.input, control.error, null);
  }
}
