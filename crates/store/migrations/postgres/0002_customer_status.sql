-- Customer status (SPEC.md "Call admission", stage "status"): active, suspended (an
-- operator's or billing's decision) or blocked (fraud), with the reason shown to operators.
-- The customers trigger of 0001 bumps the configuration version on these updates too.
ALTER TABLE customers ADD COLUMN status TEXT NOT NULL DEFAULT 'active'
    CHECK (status IN ('active', 'suspended', 'blocked'));
ALTER TABLE customers ADD COLUMN status_reason TEXT NULL;
