// @ts-check
// The throughput chart: jobs submitted, completed and failed per bucket, as three lines in a
// small hand-drawn SVG (no charting library: a few dozen lines do it, and stay within the
// page's Content-Security-Policy). Drawn at the container's real width, so text keeps its
// size on a phone.

import { h, s, replace } from './dom.js';
import { formatCount, roundUp125 } from './format.js';

/** @typedef {import('./api.js').ThroughputBucket} ThroughputBucket */

/** The three series, with the class that colours them in the style sheet. */
const SERIES = /** @type {const} */ ([
  ['submitted', 'Submitted'],
  ['completed', 'Completed'],
  ['failed', 'Failed attempts'],
]);

const HEIGHT = 180;
const PAD = { left: 40, right: 8, top: 10, bottom: 22 };

export class ThroughputChart {
  constructor() {
    this.svg = s('svg', { class: 'chart', role: 'img', height: HEIGHT });
    this.label = s('title');
    /** @type {ThroughputBucket[]} */
    this.buckets = [];
    this.width = 0;
    /** @type {Record<string, HTMLElement>} */
    this.legendValues = {};
    const legend = h(
      'ul',
      { class: 'legend' },
      ...SERIES.map(([key, name]) => {
        const value = h('span', { class: 'legend-value' }, '0');
        this.legendValues[key] = value;
        return h('li', { class: `series-${key}` }, h('span', { class: 'swatch', 'aria-hidden': 'true' }), `${name} `, value);
      }),
    );
    this.element = h('figure', { class: 'chart-figure' }, this.svg, h('figcaption', {}, legend));
    this.resize = new ResizeObserver(() => {
      const width = Math.floor(this.svg.getBoundingClientRect().width);
      if (width > 0 && width !== this.width) {
        this.width = width;
        this.draw();
      }
    });
    this.resize.observe(this.element);
  }

  /** @param {ThroughputBucket[]} buckets oldest first */
  update(buckets) {
    this.buckets = buckets;
    if (this.width === 0) this.width = Math.floor(this.svg.getBoundingClientRect().width) || 600;
    this.draw();
  }

  draw() {
    const { buckets, width } = this;
    const seconds = buckets.reduce((sum, b) => sum + b.seconds, 0);
    const sums = { submitted: 0, completed: 0, failed: 0 };
    let max = 0;
    for (const bucket of buckets) {
      for (const [key] of SERIES) {
        sums[key] += bucket[key];
        max = Math.max(max, bucket[key]);
      }
    }
    const top = max <= 1 ? 1 : roundUp125(max);
    const plotWidth = Math.max(10, width - PAD.left - PAD.right);
    const plotHeight = HEIGHT - PAD.top - PAD.bottom;
    /** @param {number} i */
    const x = (i) => PAD.left + (buckets.length <= 1 ? 0 : (i / (buckets.length - 1)) * plotWidth);
    /** @param {number} v */
    const y = (v) => PAD.top + plotHeight - (v / top) * plotHeight;
    const grid = [0, top / 2, top].map((v) =>
      s(
        'g',
        { class: 'grid' },
        s('line', { x1: PAD.left, x2: PAD.left + plotWidth, y1: y(v), y2: y(v) }),
        s('text', { x: PAD.left - 6, y: y(v) + 4, 'text-anchor': 'end' }, formatCount(v)),
      ),
    );
    const span = Math.round(seconds);
    const axis = s(
      'g',
      { class: 'axis' },
      s('text', { x: PAD.left, y: HEIGHT - 6, 'text-anchor': 'start' }, `−${span} s`),
      s('text', { x: PAD.left + plotWidth / 2, y: HEIGHT - 6, 'text-anchor': 'middle' }, `−${Math.round(span / 2)} s`),
      s('text', { x: PAD.left + plotWidth, y: HEIGHT - 6, 'text-anchor': 'end' }, 'now'),
    );
    const lines = SERIES.map(([key]) =>
      s('polyline', {
        class: `line series-${key}`,
        points: buckets.map((b, i) => `${x(i).toFixed(1)},${y(b[key]).toFixed(1)}`).join(' '),
      }),
    );
    this.svg.setAttribute('width', String(width));
    this.svg.setAttribute('viewBox', `0 0 ${width} ${HEIGHT}`);
    const summary = `Throughput over the last ${span} seconds: ${sums.submitted} submitted, ${sums.completed} completed, ${sums.failed} failed attempts`;
    this.label.textContent = summary;
    this.svg.setAttribute('aria-label', summary);
    replace(this.svg, this.label, ...grid, axis, ...lines);
    for (const [key] of SERIES) {
      const text = formatCount(sums[key]);
      if (this.legendValues[key].textContent !== text) this.legendValues[key].textContent = text;
    }
  }

  destroy() {
    this.resize.disconnect();
  }
}
