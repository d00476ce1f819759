-- Usage counters (docs/CDR.md "Usage"): a customer's time zone (its days and months), and
-- per-day counters kept in the transaction that stores each new CDR.
ALTER TABLE customers ADD COLUMN timezone TEXT NOT NULL DEFAULT 'UTC';

-- Per customer and local day (YYYY-MM-DD in the customer's zone when the CDR was stored):
-- calls, answered calls, billed seconds (billable time rounded up to whole seconds), price.
CREATE TABLE usage_customer_daily (
    customer_id BIGINT NOT NULL,
    day TEXT NOT NULL,
    calls BIGINT NOT NULL,
    answered BIGINT NOT NULL,
    seconds BIGINT NOT NULL,
    price BIGINT NOT NULL,
    PRIMARY KEY (customer_id, day)
);

-- Per carrier and UTC day, from every attempt of every call: INVITEs sent, answered,
-- failed (a final code of 400 or more other than 487), billed seconds of answered calls,
-- cost.
CREATE TABLE usage_carrier_daily (
    carrier_id BIGINT NOT NULL,
    day TEXT NOT NULL,
    attempts BIGINT NOT NULL,
    answered BIGINT NOT NULL,
    failures BIGINT NOT NULL,
    seconds BIGINT NOT NULL,
    cost BIGINT NOT NULL,
    PRIMARY KEY (carrier_id, day)
);
