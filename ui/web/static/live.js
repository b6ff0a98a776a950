// @ts-check
// The live feed: the read model's `/stream` (server-sent events) as one connection shared by
// every view. It reconnects by itself with a growing delay, tells its state (live /
// reconnecting / offline, or paused while the tab is hidden), drops events it has already
// seen (by eventId), and announces every (re)opening so that the views refetch what they show:
// the stream does not replay what was missed while it was closed.

import { EventTypeValues } from './api.js';

/** @typedef {import('./api.js').LifecycleEvent} LifecycleEvent */
/** @typedef {'connecting' | 'live' | 'reconnecting' | 'offline' | 'paused'} LiveState */

/**
 * @typedef {Object} LiveListener
 * @property {(event: LifecycleEvent) => void} [event] a new event
 * @property {(state: LiveState) => void} [state] the connection's state changed
 * @property {() => void} [opened] the stream (re)opened: refetch, events may have been missed
 */

/** First reconnection delay; it doubles per failure up to MAX_DELAY_MS. */
const FIRST_DELAY_MS = 500;
const MAX_DELAY_MS = 5000;
/** Reconnecting for longer than this is "offline". */
const OFFLINE_AFTER_MS = 3000;
/** How many event ids are remembered to drop repeats. */
const SEEN_CAPACITY = 5000;
/** How many recent events are kept for a view that starts watching a job late. */
const RECENT_CAPACITY = 500;

export class LiveFeed {
  /**
   * @param {() => EventSource} open opens the stream (the generated client's streamEvents)
   */
  constructor(open) {
    this.open = open;
    /** @type {EventSource | null} */
    this.source = null;
    /** @type {LiveState} */
    this.state = 'connecting';
    /** When the feed was last live (ms since epoch), or null: since then data may be stale. */
    /** @type {number | null} */
    this.lastLive = null;
    /** @type {number | null} */
    this.lostAt = null;
    this.failures = 0;
    /** @type {ReturnType<typeof setTimeout> | null} */
    this.timer = null;
    /** @type {Set<LiveListener>} */
    this.listeners = new Set();
    /** @type {Set<string>} */
    this.seen = new Set();
    /** Ring of the remembered ids, oldest at `seenNext` once full. */
    /** @type {Array<string | undefined>} */
    this.seenRing = new Array(SEEN_CAPACITY);
    this.seenNext = 0;
    /** @type {LifecycleEvent[]} */
    this.recent = [];
  }

  /** Connects now, and follows the tab's visibility and the network from then on. */
  start() {
    document.addEventListener('visibilitychange', () => {
      if (document.hidden) this.pause();
      else this.resume();
    });
    window.addEventListener('online', () => this.resume());
    if (document.hidden) this.pause();
    else this.connect();
  }

  /**
   * @param {LiveListener} listener
   * @returns {() => void} unsubscribes
   */
  subscribe(listener) {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * The recent events about `jobId`, oldest first.
   * @param {string} jobId
   */
  recentFor(jobId) {
    return this.recent.filter((event) => event.payload.jobId === jobId);
  }

  connect() {
    this.clearTimer();
    this.close();
    let source;
    try {
      source = this.open();
    } catch {
      this.retry();
      return;
    }
    this.source = source;
    source.addEventListener('open', () => {
      if (this.source !== source) return;
      this.failures = 0;
      this.lostAt = null;
      this.setState('live');
      for (const listener of [...this.listeners]) listener.opened?.();
    });
    /** @param {MessageEvent} message */
    const onMessage = (message) => {
      if (this.source === source) this.receive(message.data);
    };
    for (const type of EventTypeValues) source.addEventListener(type, onMessage);
    source.addEventListener('error', () => {
      if (this.source !== source) return;
      // EventSource would reconnect by itself at its own pace; this feed decides instead.
      this.close();
      this.retry();
    });
  }

  retry() {
    const now = Date.now();
    if (this.state === 'live' || this.lostAt === null) this.lostAt = now;
    if (this.state === 'live') this.lastLive = now;
    this.failures += 1;
    const delay = Math.min(MAX_DELAY_MS, FIRST_DELAY_MS * 2 ** (this.failures - 1));
    const jitter = delay * (0.8 + Math.random() * 0.4);
    this.setState(now - this.lostAt >= OFFLINE_AFTER_MS ? 'offline' : 'reconnecting');
    this.clearTimer();
    this.timer = setTimeout(() => this.connect(), jitter);
  }

  /** The tab is hidden: nobody looks, so nothing streams. */
  pause() {
    if (this.state === 'live') this.lastLive = Date.now();
    this.clearTimer();
    this.close();
    this.setState('paused');
  }

  /** The tab is shown again (or the network is back): connect at once and catch up. */
  resume() {
    if (document.hidden || this.state === 'live') return;
    this.failures = 0;
    this.connect();
  }

  close() {
    if (this.source) {
      this.source.close();
      this.source = null;
    }
  }

  clearTimer() {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }

  /** @param {LiveState} state */
  setState(state) {
    if (state === this.state) return;
    this.state = state;
    for (const listener of [...this.listeners]) listener.state?.(state);
  }

  /** @param {unknown} data */
  receive(data) {
    if (typeof data !== 'string') return;
    /** @type {LifecycleEvent} */
    let event;
    try {
      event = JSON.parse(data);
    } catch {
      return;
    }
    if (!event || typeof event.eventId !== 'string' || !event.payload || typeof event.payload !== 'object') {
      return;
    }
    if (this.seen.has(event.eventId)) return;
    this.seen.add(event.eventId);
    const oldest = this.seenRing[this.seenNext];
    if (oldest !== undefined) this.seen.delete(oldest);
    this.seenRing[this.seenNext] = event.eventId;
    this.seenNext = (this.seenNext + 1) % SEEN_CAPACITY;
    this.recent.push(event);
    if (this.recent.length > RECENT_CAPACITY) this.recent.shift();
    for (const listener of [...this.listeners]) listener.event?.(event);
  }
}
