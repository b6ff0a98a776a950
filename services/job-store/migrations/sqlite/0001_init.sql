-- The job store in SQLite: the same tables, constraints and indexes as in PostgreSQL, in the
-- representations SQLite compares correctly:
-- - uuids are 16-byte BLOBs (compared bytewise, which is PostgreSQL's uuid order, so keyset
--   pages tie-break on id identically);
-- - timestamps are INTEGER microseconds since the Unix epoch, UTC (PostgreSQL's precision;
--   integers order correctly for keyset pages, due retries and abandoned attempts);
-- - JSON is TEXT.
-- STRICT tables reject a value of the wrong type instead of silently storing it.

CREATE TABLE jobs (
    id              BLOB NOT NULL PRIMARY KEY CHECK (length(id) = 16),
    type            TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN
                        ('PENDING', 'RUNNING', 'RETRYING', 'COMPLETED', 'FAILED', 'DEAD_LETTERED')),
    payload         TEXT NOT NULL CHECK (json_type(payload) = 'object'),
    attempts        INTEGER NOT NULL CHECK (attempts >= 0),
    max_attempts    INTEGER NOT NULL CHECK (max_attempts >= 1),
    correlation_id  TEXT NOT NULL,
    -- The job.created event's idempotencyKey (see the PostgreSQL schema).
    idempotency_key TEXT UNIQUE,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    started_at      INTEGER,
    finished_at     INTEGER,
    next_attempt_at INTEGER,
    last_error      TEXT,
    result          TEXT CHECK (result IS NULL OR json_type(result) = 'object'),
    CHECK (attempts <= max_attempts),
    -- Only a RETRYING job has a next attempt scheduled.
    CHECK ((status = 'RETRYING') = (next_attempt_at IS NOT NULL))
) STRICT;

-- The read model's keyset pages: newest first, optionally filtered by status or type.
CREATE INDEX jobs_created_idx ON jobs (created_at DESC, id DESC);
CREATE INDEX jobs_status_created_idx ON jobs (status, created_at DESC, id DESC);
CREATE INDEX jobs_type_created_idx ON jobs (type, created_at DESC, id DESC);
-- The retry scheduler's poll: small, since it holds only RETRYING jobs.
CREATE INDEX jobs_due_retries_idx ON jobs (next_attempt_at) WHERE status = 'RETRYING';

CREATE TABLE job_attempts (
    job_id      BLOB NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    attempt     INTEGER NOT NULL CHECK (attempt >= 1),
    outcome     TEXT NOT NULL CHECK (outcome IN ('RUNNING', 'SUCCEEDED', 'FAILED')),
    started_at  INTEGER NOT NULL,
    finished_at INTEGER,
    duration_ms REAL CHECK (duration_ms >= 0),
    error       TEXT,
    worker      TEXT,
    PRIMARY KEY (job_id, attempt)
) STRICT;

-- Finding attempts abandoned by a crashed worker.
CREATE INDEX job_attempts_running_idx ON job_attempts (started_at) WHERE outcome = 'RUNNING';

-- Events written in the same transaction as the state change they announce. AUTOINCREMENT,
-- like PostgreSQL's bigserial, never reuses the id of a deleted (published) event.
CREATE TABLE outbox (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id    BLOB NOT NULL UNIQUE,
    routing_key TEXT NOT NULL,
    body        TEXT NOT NULL,
    created_at  INTEGER NOT NULL
) STRICT;

CREATE TABLE dead_letters (
    id             BLOB NOT NULL PRIMARY KEY CHECK (length(id) = 16),
    source         TEXT NOT NULL,
    queue          TEXT,
    reason         TEXT NOT NULL,
    message        TEXT,
    -- No foreign key: a poison message may name a job that was never stored.
    job_id         BLOB,
    event_id       BLOB,
    attempts       INTEGER CHECK (attempts >= 0),
    received_at    INTEGER NOT NULL,
    -- The raw body exactly as received (it may contain NUL characters).
    raw_body       BLOB NOT NULL,
    correlation_id TEXT
) STRICT;

CREATE INDEX dead_letters_received_idx ON dead_letters (received_at DESC, id DESC);
