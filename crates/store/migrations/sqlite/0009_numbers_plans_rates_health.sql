-- Numbers (SPEC.md "Numbers"): how a customer sends numbers, its country, a forced CLI;
-- its dialing plan and routing mode. How a carrier wants numbers and which codecs it takes.
CREATE TABLE dial_plans (
    id            INTEGER PRIMARY KEY,
    name          TEXT    NOT NULL UNIQUE,
    default_allow INTEGER NOT NULL DEFAULT 1 CHECK (default_allow IN (0, 1)),
    block_premium INTEGER NOT NULL DEFAULT 0 CHECK (block_premium IN (0, 1))
);
CREATE TABLE dial_plan_rules (
    id       INTEGER PRIMARY KEY,
    plan_id  INTEGER NOT NULL REFERENCES dial_plans (id) ON DELETE CASCADE,
    priority INTEGER NOT NULL,
    pattern  TEXT    NOT NULL,
    allow    INTEGER NOT NULL CHECK (allow IN (0, 1)),
    UNIQUE (plan_id, pattern)
);
ALTER TABLE customers ADD COLUMN number_format TEXT NOT NULL DEFAULT 'e164'
    CHECK (number_format IN ('e164', 'national', 'auto'));
ALTER TABLE customers ADD COLUMN country_code TEXT NULL;
ALTER TABLE customers ADD COLUMN forced_cli TEXT NULL;
ALTER TABLE customers ADD COLUMN dial_plan_id INTEGER NULL REFERENCES dial_plans (id) ON DELETE SET NULL;
ALTER TABLE customers ADD COLUMN routing TEXT NOT NULL DEFAULT 'priority'
    CHECK (routing IN ('priority', 'lcr'));
ALTER TABLE carriers ADD COLUMN strip_digits INTEGER NOT NULL DEFAULT 0 CHECK (strip_digits BETWEEN 0 AND 20);
ALTER TABLE carriers ADD COLUMN tech_prefix TEXT NOT NULL DEFAULT '';
ALTER TABLE carriers ADD COLUMN number_format TEXT NOT NULL DEFAULT 'international'
    CHECK (number_format IN ('international', 'plus', 'national'));
ALTER TABLE carriers ADD COLUMN cli_format TEXT NOT NULL DEFAULT 'international'
    CHECK (cli_format IN ('international', 'plus', 'national'));
ALTER TABLE carriers ADD COLUMN country_code TEXT NULL;
-- Comma-separated SDP encoding names; empty: every codec.
ALTER TABLE carriers ADD COLUMN codecs TEXT NOT NULL DEFAULT '';
-- Rates per destination prefix, money in millionths, in force from effective_ms.
CREATE TABLE carrier_rates (
    id             INTEGER PRIMARY KEY,
    carrier_id     INTEGER NOT NULL REFERENCES carriers (id) ON DELETE CASCADE,
    prefix         TEXT    NOT NULL,
    per_minute     INTEGER NOT NULL CHECK (per_minute >= 0),
    connection_fee INTEGER NOT NULL DEFAULT 0 CHECK (connection_fee >= 0),
    increment_s    INTEGER NOT NULL DEFAULT 1 CHECK (increment_s >= 1),
    minimum_s      INTEGER NOT NULL DEFAULT 0 CHECK (minimum_s >= 0),
    effective_ms   INTEGER NOT NULL DEFAULT 0,
    UNIQUE (carrier_id, prefix, effective_ms)
);
CREATE TABLE customer_rates (
    id             INTEGER PRIMARY KEY,
    customer_id    INTEGER NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    prefix         TEXT    NOT NULL,
    per_minute     INTEGER NOT NULL CHECK (per_minute >= 0),
    connection_fee INTEGER NOT NULL DEFAULT 0 CHECK (connection_fee >= 0),
    increment_s    INTEGER NOT NULL DEFAULT 1 CHECK (increment_s >= 1),
    minimum_s      INTEGER NOT NULL DEFAULT 0 CHECK (minimum_s >= 0),
    effective_ms   INTEGER NOT NULL DEFAULT 0,
    UNIQUE (customer_id, prefix, effective_ms)
);
-- Carrier health as the probes last left it (the running switch writes it; a restart starts
-- from it). Not part of the configuration: no version bump.
CREATE TABLE carrier_health (
    carrier_id INTEGER PRIMARY KEY REFERENCES carriers (id) ON DELETE CASCADE,
    state      TEXT    NOT NULL CHECK (state IN ('up', 'suspect', 'down')),
    changed_ms INTEGER NOT NULL
);
CREATE TRIGGER dial_plans_insert_version AFTER INSERT ON dial_plans
BEGIN UPDATE config_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER dial_plans_update_version AFTER UPDATE ON dial_plans
BEGIN UPDATE config_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER dial_plans_delete_version AFTER DELETE ON dial_plans
BEGIN UPDATE config_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER dial_plan_rules_insert_version AFTER INSERT ON dial_plan_rules
BEGIN UPDATE config_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER dial_plan_rules_update_version AFTER UPDATE ON dial_plan_rules
BEGIN UPDATE config_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER dial_plan_rules_delete_version AFTER DELETE ON dial_plan_rules
BEGIN UPDATE config_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER carrier_rates_insert_version AFTER INSERT ON carrier_rates
BEGIN UPDATE config_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER carrier_rates_update_version AFTER UPDATE ON carrier_rates
BEGIN UPDATE config_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER carrier_rates_delete_version AFTER DELETE ON carrier_rates
BEGIN UPDATE config_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER customer_rates_insert_version AFTER INSERT ON customer_rates
BEGIN UPDATE config_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER customer_rates_update_version AFTER UPDATE ON customer_rates
BEGIN UPDATE config_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER customer_rates_delete_version AFTER DELETE ON customer_rates
BEGIN UPDATE config_version SET version = version + 1 WHERE id = 1; END;
