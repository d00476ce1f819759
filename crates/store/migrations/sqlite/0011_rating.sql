-- Rating (SPEC.md "Accounting and billing"): rate plans (sell rates shared by customers, a
-- markup on cost where the plan has no rate), and each CDR's numbers in E.164, cost and price
-- (integer millionths; NULL: not rated), Q.850 cause and codecs offered and answered.
CREATE TABLE rate_plans (
    id         INTEGER PRIMARY KEY,
    name       TEXT    NOT NULL UNIQUE,
    markup_ppm INTEGER NOT NULL DEFAULT 0 CHECK (markup_ppm BETWEEN 0 AND 100000000)
);
CREATE TABLE rate_plan_rates (
    id             INTEGER PRIMARY KEY,
    plan_id        INTEGER NOT NULL REFERENCES rate_plans (id) ON DELETE CASCADE,
    prefix         TEXT    NOT NULL,
    per_minute     INTEGER NOT NULL CHECK (per_minute >= 0),
    connection_fee INTEGER NOT NULL DEFAULT 0 CHECK (connection_fee >= 0),
    increment_s    INTEGER NOT NULL DEFAULT 1 CHECK (increment_s >= 1),
    minimum_s      INTEGER NOT NULL DEFAULT 0 CHECK (minimum_s >= 0),
    effective_ms   INTEGER NOT NULL DEFAULT 0,
    UNIQUE (plan_id, prefix, effective_ms)
);
-- Balances: how a customer pays (configuration), its balance (changed by every charge: no
-- version bump, the switch polls it) and the ledger of every change of it.
ALTER TABLE customers ADD COLUMN billing TEXT NOT NULL DEFAULT 'off' CHECK (billing IN ('off', 'prepaid', 'postpaid'));
-- Suspend the customer (reason 'balance exhausted') when a charge leaves nothing to spend.
ALTER TABLE customers ADD COLUMN suspend_at_zero INTEGER NOT NULL DEFAULT 0 CHECK (suspend_at_zero IN (0, 1));
ALTER TABLE customers ADD COLUMN credit_limit INTEGER NOT NULL DEFAULT 0 CHECK (credit_limit >= 0);
CREATE TABLE customer_balances (
    customer_id INTEGER PRIMARY KEY REFERENCES customers (id) ON DELETE CASCADE,
    balance     INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE ledger (
    id             INTEGER PRIMARY KEY,
    customer_id    INTEGER NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    kind           TEXT    NOT NULL CHECK (kind IN ('credit', 'charge', 'refund', 'adjustment')),
    amount         INTEGER NOT NULL,
    balance_before INTEGER NOT NULL,
    balance_after  INTEGER NOT NULL,
    cdr_id         TEXT    NULL UNIQUE,
    note           TEXT    NOT NULL DEFAULT '',
    at_ms          INTEGER NOT NULL
);
CREATE INDEX ledger_customer ON ledger (customer_id, id);
ALTER TABLE customers ADD COLUMN rate_plan_id INTEGER NULL REFERENCES rate_plans (id) ON DELETE SET NULL;
ALTER TABLE cdrs ADD COLUMN caller_e164 TEXT NULL;
ALTER TABLE cdrs ADD COLUMN q850_cause INTEGER NULL;
ALTER TABLE cdrs ADD COLUMN codecs_offered TEXT NULL;
ALTER TABLE cdrs ADD COLUMN codecs_answered TEXT NULL;
-- Every attempt (carrier, address, start, code, PDD) as a JSON array.
ALTER TABLE cdrs ADD COLUMN attempt_log TEXT NOT NULL DEFAULT '[]';
ALTER TABLE cdrs ADD COLUMN callee_e164 TEXT NULL;
ALTER TABLE cdrs ADD COLUMN cost INTEGER NULL;
ALTER TABLE cdrs ADD COLUMN price INTEGER NULL;
CREATE TRIGGER rate_plans_insert_version AFTER INSERT ON rate_plans
BEGIN UPDATE config_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER rate_plans_update_version AFTER UPDATE ON rate_plans
BEGIN UPDATE config_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER rate_plans_delete_version AFTER DELETE ON rate_plans
BEGIN UPDATE config_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER rate_plan_rates_insert_version AFTER INSERT ON rate_plan_rates
BEGIN UPDATE config_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER rate_plan_rates_update_version AFTER UPDATE ON rate_plan_rates
BEGIN UPDATE config_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER rate_plan_rates_delete_version AFTER DELETE ON rate_plan_rates
BEGIN UPDATE config_version SET version = version + 1 WHERE id = 1; END;
