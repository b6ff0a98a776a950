// @ts-check
// What a lifecycle event changes in what a view shows: a job's row, the overview's counters
// and throughput. Views apply events as they arrive and refetch from the read model now and
// then; `progress` orders the two so that an older answer never undoes a newer event.

/** @typedef {import('./api.js').Job} Job */
/** @typedef {import('./api.js').JobStatus} JobStatus */
/** @typedef {import('./api.js').LifecycleEvent} LifecycleEvent */
/** @typedef {import('./api.js').Overview} Overview */
/** @typedef {import('./api.js').JobCounters} JobCounters */

/** @type {Record<JobStatus, number>} */
const PHASE = { PENDING: 0, RUNNING: 1, RETRYING: 2, COMPLETED: 3, FAILED: 3, DEAD_LETTERED: 3 };

/** Terminal statuses: nothing happens to such a job any more. */
export const TERMINAL = /** @type {ReadonlyArray<JobStatus>} */ (['COMPLETED', 'FAILED', 'DEAD_LETTERED']);

/** @param {JobStatus} status */
export function isTerminal(status) {
  return TERMINAL.includes(status);
}

/**
 * How far a job has come: attempts started, then the phase within the attempt. Grows with
 * every state change, so the larger of two snapshots is the newer one.
 * @param {number} attempts
 * @param {JobStatus} status
 */
export function progress(attempts, status) {
  return attempts * 4 + (PHASE[status] ?? 0);
}

/**
 * The job after `event`, or `job` itself when the event is about another job or older than
 * what `job` already says.
 * @param {Job} job
 * @param {LifecycleEvent} event
 * @returns {Job}
 */
export function applyEvent(job, event) {
  if (event.payload.jobId !== job.id) return job;
  const current = progress(job.attempts, job.status);
  /** @type {Job} */
  let next;
  switch (event.eventType) {
    case 'job.created':
      return job;
    case 'job.started':
      next = {
        ...job,
        status: 'RUNNING',
        attempts: event.payload.attempt,
        startedAt: job.startedAt ?? event.payload.startedAt,
        nextAttemptAt: undefined,
      };
      break;
    case 'job.completed':
      next = {
        ...job,
        status: 'COMPLETED',
        attempts: event.payload.attempt,
        finishedAt: event.payload.completedAt,
        result: event.payload.result ?? job.result,
      };
      break;
    case 'job.failed':
      next = {
        ...job,
        status: event.payload.jobStatus,
        attempts: event.payload.attempt,
        lastError: event.payload.error,
        nextAttemptAt: event.payload.nextAttemptAt,
        finishedAt: event.payload.willRetry ? undefined : event.payload.failedAt,
      };
      break;
    case 'job.dead-lettered':
      next = {
        ...job,
        status: 'DEAD_LETTERED',
        attempts: Math.max(job.attempts, event.payload.attempts),
        lastError: event.payload.lastError ?? job.lastError,
        finishedAt: job.finishedAt ?? event.payload.deadLetteredAt,
        nextAttemptAt: undefined,
      };
      break;
    default:
      return job;
  }
  if (progress(next.attempts, next.status) < current) return job;
  next.updatedAt = event.occurredAt;
  return next;
}

/**
 * The newer of a job as fetched and as the events made it.
 * @param {Job | undefined} local
 * @param {Job} fetched
 */
export function newer(local, fetched) {
  if (!local) return fetched;
  return progress(fetched.attempts, fetched.status) >= progress(local.attempts, local.status) ? fetched : local;
}

/**
 * The counters an event adds to (each event counted once, as the metrics engine does).
 * @param {LifecycleEvent} event
 * @returns {Partial<Record<keyof JobCounters, number>>}
 */
export function countersOf(event) {
  switch (event.eventType) {
    case 'job.created':
      return { submitted: 1 };
    case 'job.started':
      return { started: 1 };
    case 'job.completed':
      return { completed: 1 };
    case 'job.failed':
      return event.payload.willRetry ? { failed: 1, retried: 1 } : { failed: 1 };
    case 'job.dead-lettered':
      return { deadLettered: 1 };
    default:
      return {};
  }
}

/**
 * Adds `event` to the overview (totals, its type's counters, its throughput bucket). The
 * caller drops repeated events; a later refetch replaces all of this with the stored counts.
 * @param {Overview} overview
 * @param {LifecycleEvent} event
 */
export function addToOverview(overview, event) {
  const delta = countersOf(event);
  /** @param {JobCounters} counters */
  const add = (counters) => {
    for (const [key, value] of Object.entries(delta)) {
      const name = /** @type {keyof JobCounters} */ (key);
      counters[name] = (counters[name] ?? 0) + (value ?? 0);
    }
  };
  add(overview.totals);
  let row = overview.byType.find((r) => r.type === event.payload.type);
  if (!row) {
    row = {
      type: event.payload.type,
      counters: { submitted: 0, started: 0, completed: 0, failed: 0, retried: 0, deadLettered: 0 },
    };
    overview.byType.push(row);
  }
  add(row.counters);
  const at = Date.parse(event.occurredAt);
  if (Number.isNaN(at)) return;
  advanceThroughput(overview, at);
  const bucket = overview.throughput.find((b) => {
    const start = Date.parse(b.start);
    return at >= start && at < start + b.seconds * 1000;
  });
  if (!bucket) return;
  if (event.eventType === 'job.created') bucket.submitted += 1;
  else if (event.eventType === 'job.completed') bucket.completed += 1;
  else if (event.eventType === 'job.failed') bucket.failed += 1;
}

/**
 * Moves the throughput window on so that its last bucket holds `now` (empty buckets come in
 * at the end, the oldest go), keeping its length: the chart moves even when nothing happens.
 * @param {Overview} overview
 * @param {number} now ms since epoch, on the server's clock
 * @returns {boolean} whether the window moved
 */
export function advanceThroughput(overview, now) {
  const buckets = overview.throughput;
  const length = buckets.length;
  const last = buckets[length - 1];
  if (!last) return false;
  const width = last.seconds * 1000;
  let end = Date.parse(last.start) + width;
  if (!(width > 0) || Number.isNaN(end) || now < end) return false;
  // Far behind (the tab slept): start the window afresh instead of walking through the gap.
  if (now - end > width * length) end = now - (now % width) - width * (length - 1);
  while (now >= end) {
    buckets.push({ start: new Date(end).toISOString(), seconds: last.seconds, submitted: 0, completed: 0, failed: 0 });
    end += width;
  }
  buckets.splice(0, buckets.length - length);
  return true;
}

/**
 * One line on what an event says beyond its type: the error of a failure, the duration of a
 * completion, where a retry is due.
 * @param {LifecycleEvent} event
 * @param {(ms: number) => string} duration formats a duration
 */
export function describeEvent(event, duration) {
  switch (event.eventType) {
    case 'job.created':
      return `${event.payload.type}, at most ${event.payload.maxAttempts} attempt${event.payload.maxAttempts === 1 ? '' : 's'}`;
    case 'job.started':
      return event.payload.worker ? `on ${event.payload.worker}` : '';
    case 'job.completed':
      return `after ${duration(event.payload.durationMs)}`;
    case 'job.failed': {
      const retry = event.payload.willRetry ? ', will retry' : `, ${event.payload.jobStatus}`;
      return `${event.payload.error.code}: ${event.payload.error.message}${retry}`;
    }
    case 'job.dead-lettered':
      return `${event.payload.reason} after ${event.payload.attempts} attempt${event.payload.attempts === 1 ? '' : 's'}`;
    default:
      return '';
  }
}

/**
 * The attempt an event is about, if any.
 * @param {LifecycleEvent} event
 * @returns {number | undefined}
 */
export function attemptOf(event) {
  return 'attempt' in event.payload ? event.payload.attempt : undefined;
}

/**
 * A stored event (the read model answers them as envelopes) as the typed event its eventType
 * names: the contract's envelope and typed events have the same fields.
 * @param {import('./api.js').EventEnvelope} envelope
 * @returns {LifecycleEvent}
 */
export function asLifecycleEvent(envelope) {
  return /** @type {LifecycleEvent} */ (/** @type {unknown} */ (envelope));
}

/**
 * The job a job.created event announces, as the read model will store it.
 * @param {import('./api.js').JobCreated} event
 * @returns {Job}
 */
export function jobFromCreated(event) {
  return {
    id: event.payload.jobId,
    type: event.payload.type,
    status: 'PENDING',
    payload: event.payload.payload,
    attempts: 0,
    maxAttempts: event.payload.maxAttempts,
    createdAt: event.payload.submittedAt,
    updatedAt: event.occurredAt,
    correlationId: event.correlationId,
  };
}
