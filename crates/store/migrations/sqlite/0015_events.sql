-- The durable event stream (issue 14): an append-only outbox, written in the same
-- transaction as what each event reports where there is one (a CDR, a block, a status).
-- Consumers read from their own checkpoint. SQLite has one writer at a time, so the order
-- of seq is the order of commits.
CREATE TABLE events (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms       INTEGER NOT NULL,
    kind        TEXT NOT NULL,
    customer_id INTEGER,
    carrier_id  INTEGER,
    body        TEXT NOT NULL
);
CREATE INDEX events_at ON events (at_ms);
CREATE INDEX events_kind_seq ON events (kind, seq);

CREATE TABLE event_checkpoints (
    consumer   TEXT PRIMARY KEY,
    seq        INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL
);
