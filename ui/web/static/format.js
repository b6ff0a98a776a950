// @ts-check
// How values are written on screen (times, durations, ids, errors), in one place so that
// every view says the same thing the same way.

import { ApiRequestError, JobStatusValues } from './api.js';

/** @param {number} n */
const pad2 = (n) => String(n).padStart(2, '0');

/**
 * `2026-12-01 20:11:43` in the browser's time zone; `—` for nothing.
 * @param {string | undefined} iso
 */
export function formatDateTime(iso) {
  if (!iso) return '—';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return `${d.getFullYear()}-${pad2(d.getMonth() + 1)}-${pad2(d.getDate())} ${formatClock(d)}`;
}

/**
 * `20:11:43` (with milliseconds when `precise`).
 * @param {Date} d
 * @param {boolean} [precise]
 */
export function formatClock(d, precise = false) {
  const base = `${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())}`;
  return precise ? `${base}.${String(d.getMilliseconds()).padStart(3, '0')}` : base;
}

/**
 * `20:11:43.688` for an ISO instant.
 * @param {string | undefined} iso
 */
export function formatTime(iso) {
  if (!iso) return '—';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : formatClock(d, true);
}

/**
 * A duration for people: `0.15 ms`, `42 ms`, `1.3 s`, `2 min 5 s`, `3 h 4 min`.
 * @param {number} ms
 */
export function formatDuration(ms) {
  if (!Number.isFinite(ms)) return '—';
  const sign = ms < 0 ? '−' : '';
  const a = Math.abs(ms);
  if (a < 1) return `${sign}${a.toFixed(2)} ms`;
  if (a < 1000) return `${sign}${Math.round(a)} ms`;
  if (a < 60_000) return `${sign}${(a / 1000).toFixed(a < 10_000 ? 1 : 0)} s`;
  if (a < 3_600_000) return `${sign}${Math.floor(a / 60_000)} min ${Math.round((a % 60_000) / 1000)} s`;
  return `${sign}${Math.floor(a / 3_600_000)} h ${Math.round((a % 3_600_000) / 60_000)} min`;
}

/**
 * The first 8 hex digits of a job id: what people read and type; the id search takes it.
 * @param {string} id
 */
export function shortId(id) {
  return id.slice(0, 8);
}

/**
 * The smallest of 1, 2, 5 × 10^k that is at least `n` (> 0): a round step or top for an axis.
 * @param {number} n
 */
export function roundUp125(n) {
  const magnitude = 10 ** Math.floor(Math.log10(n));
  for (const step of [1, 2, 5]) {
    if (step * magnitude >= n) return step * magnitude;
  }
  return 10 * magnitude;
}

/** @param {number} n */
export function formatCount(n) {
  return Number.isFinite(n) ? n.toLocaleString('en-US') : '—';
}

/**
 * The class of a status badge; only contract values become class names.
 * @param {string} status
 */
export function statusClass(status) {
  return /** @type {ReadonlyArray<string>} */ (JobStatusValues).includes(status)
    ? `badge status-${status.toLowerCase().replace('_', '-')}`
    : 'badge status-unknown';
}

/**
 * One sentence for a failed request: the contract's error message, or why nothing answered.
 * @param {unknown} error
 */
export function describeError(error) {
  if (error instanceof ApiRequestError) {
    return error.body ? `${error.body.message} (${error.body.code})` : `the server answered HTTP ${error.status}`;
  }
  if (error instanceof TypeError) return 'cannot reach the server';
  return error instanceof Error ? error.message : String(error);
}

/**
 * JSON, indented, for payloads, results and raw bodies.
 * @param {unknown} value
 */
export function prettyJson(value) {
  return JSON.stringify(value, null, 2) ?? '';
}

/**
 * Calls `fn` at most once every `ms`, and once more after the last call of a burst, so that a
 * burst of events costs one refetch. `cancel` drops a pending call.
 * @param {() => void} fn
 * @param {number} ms
 */
export function throttle(fn, ms) {
  /** @type {ReturnType<typeof setTimeout> | null} */
  let timer = null;
  let last = -Infinity;
  const call = () => {
    timer = null;
    last = performance.now();
    fn();
  };
  const throttled = () => {
    if (timer !== null) return;
    const wait = Math.max(0, last + ms - performance.now());
    timer = setTimeout(call, wait);
  };
  throttled.cancel = () => {
    if (timer !== null) clearTimeout(timer);
    timer = null;
  };
  return throttled;
}
