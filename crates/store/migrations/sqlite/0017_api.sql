-- The REST API (issue 15): scoped tokens (only their SHA-256 is kept), the audit record of
-- every change, idempotency keys of requests that move money, webhook subscriptions and
-- their deliveries (the delivery log and the retry queue in one), and a customer's
-- low-balance threshold (the `balance.low` event).
CREATE TABLE api_tokens (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    name         TEXT NOT NULL,
    token_hash   TEXT NOT NULL UNIQUE,
    scope        TEXT NOT NULL CHECK (scope IN ('admin', 'read', 'customer')),
    customer_id  INTEGER REFERENCES customers (id) ON DELETE CASCADE,
    created_ms   INTEGER NOT NULL,
    created_by   TEXT NOT NULL,
    expires_ms   INTEGER,
    revoked_ms   INTEGER,
    last_used_ms INTEGER,
    CHECK ((scope = 'customer') = (customer_id IS NOT NULL))
);

CREATE TABLE audit_log (
    id     INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms  INTEGER NOT NULL,
    actor  TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    before TEXT,
    after  TEXT
);
CREATE INDEX audit_log_at ON audit_log (at_ms);
CREATE INDEX audit_log_target ON audit_log (target, id);

CREATE TABLE idempotency_keys (
    token_id   INTEGER NOT NULL REFERENCES api_tokens (id) ON DELETE CASCADE,
    key        TEXT NOT NULL,
    request    TEXT NOT NULL,
    status     INTEGER NOT NULL,
    response   TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    PRIMARY KEY (token_id, key)
);

CREATE TABLE webhooks (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    url             TEXT NOT NULL,
    events          TEXT NOT NULL,
    secret          TEXT NOT NULL,
    customer_id     INTEGER REFERENCES customers (id) ON DELETE CASCADE,
    active          INTEGER NOT NULL DEFAULT 1,
    failures        INTEGER NOT NULL DEFAULT 0,
    disabled_reason TEXT,
    created_ms      INTEGER NOT NULL,
    created_by      TEXT NOT NULL
);

CREATE TABLE webhook_deliveries (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    webhook_id      INTEGER NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    delivery        TEXT NOT NULL UNIQUE,
    event_seq       INTEGER NOT NULL,
    kind            TEXT NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    created_ms      INTEGER NOT NULL,
    next_ms         INTEGER NOT NULL,
    last_ms         INTEGER,
    last_code       INTEGER,
    last_error      TEXT,
    last_latency_ms INTEGER,
    UNIQUE (webhook_id, event_seq)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (state, next_ms);
CREATE INDEX webhook_deliveries_of ON webhook_deliveries (webhook_id, id);

-- The API's CDR pages by customer or carrier and time (keyset: invite_ms, id).
CREATE INDEX cdrs_customer_invite ON cdrs (customer_id, invite_ms, id);
CREATE INDEX cdrs_carrier_invite ON cdrs (carrier_id, invite_ms, id);

ALTER TABLE customers ADD COLUMN low_balance INTEGER;
