-- Block list (SPEC.md "Call admission", stage "block list"): addresses or networks whose
-- requests get 403 Forbidden - Blacklisted. `network` is canonical CIDR text; `expires_ms`
-- NULL is permanent. Changes bump the configuration version.
CREATE TABLE blocklist (
    id         INTEGER PRIMARY KEY,
    network    TEXT    NOT NULL UNIQUE,
    reason     TEXT    NOT NULL DEFAULT '',
    source     TEXT    NOT NULL DEFAULT 'manual' CHECK (source IN ('manual', 'flood', 'auth_fail')),
    expires_ms INTEGER NULL,
    created_ms INTEGER NOT NULL
);
CREATE TRIGGER blocklist_insert_version AFTER INSERT ON blocklist
BEGIN UPDATE config_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER blocklist_update_version AFTER UPDATE ON blocklist
BEGIN UPDATE config_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER blocklist_delete_version AFTER DELETE ON blocklist
BEGIN UPDATE config_version SET version = version + 1 WHERE id = 1; END;
