-- Whether the counters are intact: 'intact', or the token of the rebuild under way with the
-- end of its lease (Unix seconds). No row (or a lapsed lease) means the counters must be
-- rebuilt from the event log.
CREATE TABLE counters_state (
    prefix      TEXT NOT NULL PRIMARY KEY,
    state       TEXT NOT NULL,
    lease_until INTEGER
) WITHOUT ROWID;
