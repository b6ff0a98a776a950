-- The embedded counters (see src/sqlite.rs). Every table is keyed by the key prefix first,
-- so configurations sharing one file stay apart, as Redis keys do. Times are Unix seconds.

-- The eventIds counted within the deduplication window; expired rows are pruned lazily.
CREATE TABLE counters_seen (
    prefix     TEXT    NOT NULL,
    event_id   TEXT    NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (prefix, event_id)
) WITHOUT ROWID;
CREATE INDEX counters_seen_expiry ON counters_seen (prefix, expires_at);

CREATE TABLE counters_totals (
    prefix  TEXT    NOT NULL,
    counter TEXT    NOT NULL,
    value   INTEGER NOT NULL,
    PRIMARY KEY (prefix, counter)
) WITHOUT ROWID;

CREATE TABLE counters_by_type (
    prefix   TEXT    NOT NULL,
    job_type TEXT    NOT NULL,
    counter  TEXT    NOT NULL,
    value    INTEGER NOT NULL,
    PRIMARY KEY (prefix, job_type, counter)
) WITHOUT ROWID;

-- The custom types admitted under the cap (max_custom_types).
CREATE TABLE counters_custom_types (
    prefix   TEXT NOT NULL,
    job_type TEXT NOT NULL,
    PRIMARY KEY (prefix, job_type)
) WITHOUT ROWID;

-- Throughput per recorded bucket; `width` is the recorded width, so a changed
-- bucket_seconds never mixes widths. Pruned lazily after expires_at (start + retention).
CREATE TABLE counters_throughput (
    prefix     TEXT    NOT NULL,
    width      INTEGER NOT NULL,
    start      INTEGER NOT NULL,
    submitted  INTEGER NOT NULL,
    completed  INTEGER NOT NULL,
    failed     INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (prefix, width, start)
) WITHOUT ROWID;
CREATE INDEX counters_throughput_expiry ON counters_throughput (prefix, expires_at);
