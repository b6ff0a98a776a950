-- Attempts as leases, and an outbox that relays claim (see the PostgreSQL migration; the
-- columns mean the same, in SQLite's representations: INTEGER microseconds).
ALTER TABLE jobs ADD COLUMN runs INTEGER NOT NULL DEFAULT 0;
UPDATE jobs SET runs = attempts;

ALTER TABLE job_attempts ADD COLUMN lease_until INTEGER;
CREATE INDEX job_attempts_lease_idx ON job_attempts (lease_until) WHERE outcome = 'RUNNING';

ALTER TABLE outbox ADD COLUMN claimed_until INTEGER;

CREATE INDEX jobs_pending_idx ON jobs (created_at) WHERE status = 'PENDING';
