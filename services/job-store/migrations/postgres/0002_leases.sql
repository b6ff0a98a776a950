-- Attempts as leases, and an outbox that several relays share.
--
-- jobs.attempts counts the attempts that use up maxAttempts; jobs.runs counts every attempt
-- row, including those interrupted by a shutdown, a crash or a lost connection (which give
-- their attempt back). The running attempt is attempt number `runs`.
ALTER TABLE jobs ADD COLUMN runs integer NOT NULL DEFAULT 0;
UPDATE jobs SET runs = attempts;
ALTER TABLE jobs ADD CONSTRAINT jobs_runs_check CHECK (runs >= attempts);

-- A RUNNING attempt belongs to its worker until lease_until (the database's clock), which the
-- worker renews; once it passes, any processor may interrupt the attempt and run it again.
ALTER TABLE job_attempts ADD COLUMN lease_until timestamptz;
CREATE INDEX job_attempts_lease_idx ON job_attempts (lease_until) WHERE outcome = 'RUNNING';

-- A relay claims outbox rows until claimed_until, so that each event is published by one
-- relay; a claim that runs out (its relay died) is taken over.
ALTER TABLE outbox ADD COLUMN claimed_until timestamptz;

-- Jobs left PENDING (their message lost) are found by age.
CREATE INDEX jobs_pending_idx ON jobs (created_at) WHERE status = 'PENDING';
