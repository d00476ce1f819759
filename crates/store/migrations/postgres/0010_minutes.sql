-- Minute caps per customer (SPEC.md "minutes"): a day and a month (UTC), calls in progress
-- counted; NULL is unlimited.
ALTER TABLE customers ADD COLUMN daily_minutes INTEGER NULL CHECK (daily_minutes > 0);
ALTER TABLE customers ADD COLUMN monthly_minutes INTEGER NULL CHECK (monthly_minutes > 0);
