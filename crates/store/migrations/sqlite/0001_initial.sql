-- vts store, first schema (SQLite). The PostgreSQL twin is ../postgres/0001_initial.sql:
-- same tables, columns and constraints; only identity columns, integer widths and the
-- triggers differ. Booleans are INTEGER 0/1 on both backends, times BIGINT epoch ms.

CREATE TABLE customers (
    id           INTEGER PRIMARY KEY,
    name         TEXT    NOT NULL UNIQUE,
    active       INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
    max_channels INTEGER NULL CHECK (max_channels >= 1),
    max_cps      INTEGER NULL CHECK (max_cps >= 1),
    created_ms   INTEGER NOT NULL,
    updated_ms   INTEGER NOT NULL
);

-- `network` is canonical CIDR text (`192.0.2.1/32`, `2001:db8::/32`): host bits cleared.
CREATE TABLE customer_ips (
    id          INTEGER PRIMARY KEY,
    customer_id INTEGER NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    network     TEXT    NOT NULL,
    active      INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1))
);
CREATE INDEX customer_ips_customer ON customer_ips (customer_id);
-- One active network belongs to one customer only.
CREATE UNIQUE INDEX customer_ips_active_network ON customer_ips (network) WHERE active = 1;

CREATE TABLE carriers (
    id         INTEGER PRIMARY KEY,
    name       TEXT    NOT NULL UNIQUE,
    host       TEXT    NOT NULL,
    port       INTEGER NOT NULL CHECK (port BETWEEN 1 AND 65535),
    transport  TEXT    NOT NULL DEFAULT 'udp' CHECK (transport IN ('udp', 'tcp')),
    priority   INTEGER NOT NULL DEFAULT 0,
    weight     INTEGER NOT NULL DEFAULT 1,
    active     INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
    created_ms INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL
);

-- Call records: every field of domain::Cdr. No foreign keys: a CDR outlives its customer
-- and carrier, and the write-ahead log may replay records whatever the configuration is.
CREATE TABLE cdrs (
    id            TEXT    PRIMARY KEY,
    call_id       TEXT    NOT NULL,
    customer_id   INTEGER NOT NULL,
    carrier_id    INTEGER NULL,
    carrier_addr  TEXT    NULL,
    source_addr   TEXT    NOT NULL,
    caller        TEXT    NOT NULL,
    callee        TEXT    NOT NULL,
    caller_out    TEXT    NULL,
    callee_out    TEXT    NULL,
    user_agent    TEXT    NULL,
    invite_ms     INTEGER NOT NULL,
    progress_ms   INTEGER NULL,
    answer_ms     INTEGER NULL,
    end_ms        INTEGER NOT NULL,
    pdd_ms        INTEGER NULL,
    billable_ms   INTEGER NOT NULL,
    billable_secs INTEGER NOT NULL,
    final_code    INTEGER NOT NULL,
    final_reason  TEXT    NOT NULL,
    hangup        TEXT    NOT NULL CHECK (hangup IN ('caller', 'callee', 'switch')),
    attempts      INTEGER NOT NULL
);
CREATE INDEX cdrs_invite_ms ON cdrs (invite_ms, id);

-- The configuration version the proxy polls. Triggers bump it on every change of
-- customers, customer_ips and carriers, whoever the writer is, inside the writer's
-- transaction (so a reader sees a version together with the data it describes).
CREATE TABLE config_version (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    version INTEGER NOT NULL
);
INSERT INTO config_version (id, version) VALUES (1, 1);

-- SQLite triggers are per row and per event: nine of them. (PostgreSQL uses one function
-- and one statement-level trigger per table.)
CREATE TRIGGER customers_insert_version AFTER INSERT ON customers
BEGIN UPDATE config_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER customers_update_version AFTER UPDATE ON customers
BEGIN UPDATE config_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER customers_delete_version AFTER DELETE ON customers
BEGIN UPDATE config_version SET version = version + 1 WHERE id = 1; END;

CREATE TRIGGER customer_ips_insert_version AFTER INSERT ON customer_ips
BEGIN UPDATE config_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER customer_ips_update_version AFTER UPDATE ON customer_ips
BEGIN UPDATE config_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER customer_ips_delete_version AFTER DELETE ON customer_ips
BEGIN UPDATE config_version SET version = version + 1 WHERE id = 1; END;

CREATE TRIGGER carriers_insert_version AFTER INSERT ON carriers
BEGIN UPDATE config_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER carriers_update_version AFTER UPDATE ON carriers
BEGIN UPDATE config_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER carriers_delete_version AFTER DELETE ON carriers
BEGIN UPDATE config_version SET version = version + 1 WHERE id = 1; END;
