-- Per-carrier limits, re-checked for every attempt: calls in progress and new attempts per
-- second (NULL: unlimited).
ALTER TABLE carriers ADD COLUMN max_channels INTEGER NULL CHECK (max_channels >= 1);
ALTER TABLE carriers ADD COLUMN max_cps INTEGER NULL CHECK (max_cps >= 1);
