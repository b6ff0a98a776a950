-- The job store: authoritative job state, attempts, dead letters and the transactional outbox.
-- Every timestamp is timestamptz. Enumerated text columns hold the contract's strings.

CREATE TABLE jobs (
    id              uuid PRIMARY KEY,
    type            text NOT NULL,
    status          text NOT NULL CHECK (status IN
                        ('PENDING', 'RUNNING', 'RETRYING', 'COMPLETED', 'FAILED', 'DEAD_LETTERED')),
    payload         jsonb NOT NULL CHECK (jsonb_typeof(payload) = 'object'),
    attempts        integer NOT NULL CHECK (attempts >= 0),
    max_attempts    integer NOT NULL CHECK (max_attempts >= 1),
    correlation_id  text NOT NULL,
    -- The job.created event's idempotencyKey: a second event announcing the same creation is
    -- recognised even when it names the job differently.
    idempotency_key text UNIQUE,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    started_at      timestamptz,
    finished_at     timestamptz,
    next_attempt_at timestamptz,
    last_error      jsonb,
    result          jsonb CHECK (result IS NULL OR jsonb_typeof(result) = 'object'),
    CHECK (attempts <= max_attempts),
    -- Only a RETRYING job has a next attempt scheduled.
    CHECK ((status = 'RETRYING') = (next_attempt_at IS NOT NULL))
);

-- The read model's keyset pages: newest first, optionally filtered by status or type.
CREATE INDEX jobs_created_idx ON jobs (created_at DESC, id DESC);
CREATE INDEX jobs_status_created_idx ON jobs (status, created_at DESC, id DESC);
CREATE INDEX jobs_type_created_idx ON jobs (type, created_at DESC, id DESC);
-- The retry scheduler's poll: small, since it holds only RETRYING jobs.
CREATE INDEX jobs_due_retries_idx ON jobs (next_attempt_at) WHERE status = 'RETRYING';

CREATE TABLE job_attempts (
    job_id      uuid NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    attempt     integer NOT NULL CHECK (attempt >= 1),
    outcome     text NOT NULL CHECK (outcome IN ('RUNNING', 'SUCCEEDED', 'FAILED')),
    started_at  timestamptz NOT NULL,
    finished_at timestamptz,
    duration_ms double precision CHECK (duration_ms >= 0),
    error       jsonb,
    worker      text,
    PRIMARY KEY (job_id, attempt)
);

-- Finding attempts abandoned by a crashed worker.
CREATE INDEX job_attempts_running_idx ON job_attempts (started_at) WHERE outcome = 'RUNNING';

-- Events written in the same transaction as the state change they announce; the relay
-- publishes them (with confirms) in id order and then deletes them.
CREATE TABLE outbox (
    id          bigserial PRIMARY KEY,
    event_id    uuid NOT NULL UNIQUE,
    routing_key text NOT NULL,
    body        jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE dead_letters (
    id             uuid PRIMARY KEY,
    source         text NOT NULL,
    queue          text,
    reason         text NOT NULL,
    message        text,
    -- No foreign key: a poison message may name a job that was never stored.
    job_id         uuid,
    event_id       uuid,
    attempts       integer CHECK (attempts >= 0),
    received_at    timestamptz NOT NULL,
    -- bytea, not text: a raw body may contain NUL characters, which text cannot hold.
    raw_body       bytea NOT NULL,
    correlation_id text
);

CREATE INDEX dead_letters_received_idx ON dead_letters (received_at DESC, id DESC);
