-- Whitelist (SPEC.md "Call admission", stage "block list"): addresses or networks never
-- blocked automatically (flood, auth failures). A manual block still applies. `network` is
-- canonical CIDR text. Changes bump the configuration version.
CREATE TABLE whitelist (
    id         INTEGER PRIMARY KEY,
    network    TEXT    NOT NULL UNIQUE,
    reason     TEXT    NOT NULL DEFAULT '',
    created_ms INTEGER NOT NULL
);
CREATE TRIGGER whitelist_insert_version AFTER INSERT ON whitelist
BEGIN UPDATE config_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER whitelist_update_version AFTER UPDATE ON whitelist
BEGIN UPDATE config_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER whitelist_delete_version AFTER DELETE ON whitelist
BEGIN UPDATE config_version SET version = version + 1 WHERE id = 1; END;
