// @ts-check
// A job's life on a time axis, as SVG: how long it was queued, each attempt from start to end
// (coloured by outcome), the waits before retries, the next attempt when one is due, and
// every lifecycle event as a mark. A running job's bar reaches "now" and grows while the page
// follows it.

import { s, replace } from './dom.js';
import { formatDuration, formatTime, roundUp125 } from './format.js';

/** @typedef {import('./api.js').JobDetail} JobDetail */

const LANE = 26;
const BAR = 14;
const TOP = 6;
const AXIS = 26;
const RIGHT = 12;

/** @param {string | undefined} iso */
const time = (iso) => (iso ? Date.parse(iso) : NaN);

/**
 * @typedef {Object} Segment
 * @property {number} from ms since epoch
 * @property {number} to
 * @property {string} kind queued | wait | succeeded | failed | running
 * @property {string} text what it was, for the tooltip
 */

/**
 * The lanes of a job's timeline.
 * @param {JobDetail} detail
 * @param {number} now
 * @returns {{label: string, segments: Segment[]}[]}
 */
export function lanes(detail, now) {
  const { job, attempts } = detail;
  const created = time(job.createdAt);
  const firstStart = attempts.length ? time(attempts[0].startedAt) : NaN;
  const queuedUntil = !Number.isNaN(firstStart) ? firstStart : time(job.finishedAt) || now;
  const result = [{ label: 'Queued', segments: [{ from: created, to: queuedUntil, kind: 'queued', text: `queued ${formatDuration(queuedUntil - created)}` }] }];
  let previousEnd = NaN;
  for (const attempt of attempts) {
    const start = time(attempt.startedAt);
    const running = attempt.outcome === 'RUNNING';
    const end = running ? now : time(attempt.finishedAt) || start;
    /** @type {Segment[]} */
    const segments = [];
    if (!Number.isNaN(previousEnd)) {
      segments.push({ from: previousEnd, to: start, kind: 'wait', text: `waited ${formatDuration(start - previousEnd)} before retrying` });
    }
    const outcome = running ? 'running' : attempt.outcome === 'SUCCEEDED' ? 'succeeded' : 'failed';
    const error = attempt.error ? `: ${attempt.error.code}: ${attempt.error.message}` : '';
    segments.push({ from: start, to: end, kind: outcome, text: `attempt ${attempt.attempt} ${outcome} after ${formatDuration(end - start)}${error}` });
    result.push({ label: `Attempt ${attempt.attempt}`, segments });
    previousEnd = end;
  }
  const due = time(job.nextAttemptAt);
  if (job.status === 'RETRYING' && !Number.isNaN(due)) {
    const from = Number.isNaN(previousEnd) ? created : previousEnd;
    result.push({
      label: `Attempt ${job.attempts + 1}`,
      segments: [{ from, to: Math.max(due, from), kind: 'wait', text: `retry due at ${formatTime(job.nextAttemptAt)}` }],
    });
  }
  return result;
}

/**
 * Draws `detail` into `svg` at `width` pixels.
 * @param {SVGSVGElement} svg
 * @param {JobDetail} detail
 * @param {number} now the server's clock, ms since epoch
 * @param {number} width
 * @param {boolean} terminal the job is done (the axis ends at its end, not at now)
 */
export function drawTimeline(svg, detail, now, width, terminal) {
  const rows = lanes(detail, now);
  const labelWidth = width < 480 ? 74 : 96;
  const start = time(detail.job.createdAt);
  let end = terminal ? start : now;
  for (const row of rows) for (const segment of row.segments) end = Math.max(end, segment.to);
  for (const event of detail.events) end = Math.max(end, time(event.occurredAt));
  const span = Math.max(end - start, 1);
  const plot = Math.max(20, width - labelWidth - RIGHT);
  /** @param {number} t */
  const x = (t) => labelWidth + ((t - start) / span) * plot;
  const eventsLane = rows.length;
  const height = TOP + (rows.length + 1) * LANE + AXIS;

  const drawn = [];
  rows.forEach((row, i) => {
    const y = TOP + i * LANE;
    drawn.push(s('text', { class: 'lane-label', x: 0, y: y + BAR - 2 }, row.label));
    for (const segment of row.segments) {
      const left = x(segment.from);
      const w = Math.max(2, x(segment.to) - left);
      if (segment.kind === 'wait') {
        // A wait is a dashed line ending in a tick where the next attempt starts (or is due).
        const mid = y + BAR / 2;
        drawn.push(
          s('g', {}, s('title', {}, segment.text),
            s('line', { class: 'seg seg-wait', x1: left.toFixed(1), x2: (left + w).toFixed(1), y1: mid, y2: mid }),
            s('line', { class: 'seg-wait-end', x1: (left + w).toFixed(1), x2: (left + w).toFixed(1), y1: y + 2, y2: y + BAR - 2 })),
        );
        continue;
      }
      drawn.push(
        s(
          'rect',
          { class: `seg seg-${segment.kind}`, x: left.toFixed(1), y, width: w.toFixed(1), height: BAR, rx: 2 },
          s('title', {}, segment.text),
        ),
      );
    }
  });
  const eventsY = TOP + eventsLane * LANE;
  drawn.push(s('text', { class: 'lane-label', x: 0, y: eventsY + BAR - 2 }, 'Events'));
  for (const event of detail.events) {
    const kind = event.eventType.replace('job.', '');
    drawn.push(
      s(
        'circle',
        { class: `mark mark-${kind}`, cx: x(time(event.occurredAt)).toFixed(1), cy: eventsY + BAR / 2, r: 5 },
        s('title', {}, `${event.eventType} at ${formatTime(event.occurredAt)}`),
      ),
    );
  }
  const axisY = height - AXIS + 4;
  drawn.push(s('line', { class: 'axis-line', x1: labelWidth, x2: labelWidth + plot, y1: axisY, y2: axisY }));
  const step = roundUp125(span / Math.max(2, Math.floor(plot / 90)));
  for (let t = 0; t <= span + 1e-9; t += step) {
    const tx = x(start + t);
    drawn.push(s('line', { class: 'axis-tick', x1: tx, x2: tx, y1: axisY, y2: axisY + 4 }));
    const anchor = t === 0 ? 'start' : tx > labelWidth + plot - 40 ? 'end' : 'middle';
    drawn.push(s('text', { class: 'axis-label', x: tx, y: axisY + 16, 'text-anchor': anchor }, t === 0 ? 'created' : `+${formatDuration(t)}`));
  }
  svg.setAttribute('width', String(width));
  svg.setAttribute('height', String(height));
  svg.setAttribute('viewBox', `0 0 ${width} ${height}`);
  const summary = `Timeline over ${formatDuration(span)}: ${rows
    .slice(1)
    .map((r) => r.segments.map((seg) => seg.text).join(', '))
    .join('; ') || 'no attempt yet'}`;
  svg.setAttribute('aria-label', summary);
  replace(svg, s('title', {}, summary), ...drawn);
}

/** The key to the timeline's colours and lines. */
export const TIMELINE_KEY = /** @type {const} */ ([
  ['queued', 'queued'],
  ['running', 'running'],
  ['succeeded', 'succeeded'],
  ['failed', 'failed'],
  ['wait', 'wait before a retry'],
]);
