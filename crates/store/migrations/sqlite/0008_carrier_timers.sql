-- Per-carrier timers (SPEC.md "Timers"; NULL: the switch-wide default of sip.*):
-- first-response timeout with failover, in ms, and ring timeout (408, no failover), in s.
ALTER TABLE carriers ADD COLUMN first_response_ms INTEGER NULL CHECK (first_response_ms BETWEEN 100 AND 60000);
ALTER TABLE carriers ADD COLUMN ring_timeout_s INTEGER NULL CHECK (ring_timeout_s BETWEEN 1 AND 3600);
