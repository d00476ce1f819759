-- Per-carrier destination prefixes (digits; any number of rows): `deny` rows keep numbers off
-- the carrier; when a carrier has `allow` rows, only numbers matching one go to it.
CREATE TABLE carrier_prefixes (
    id         INTEGER PRIMARY KEY,
    carrier_id INTEGER NOT NULL REFERENCES carriers (id) ON DELETE CASCADE,
    kind       TEXT    NOT NULL CHECK (kind IN ('allow', 'deny')),
    prefix     TEXT    NOT NULL,
    UNIQUE (carrier_id, kind, prefix)
);
CREATE TRIGGER carrier_prefixes_insert_version AFTER INSERT ON carrier_prefixes
BEGIN UPDATE config_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER carrier_prefixes_update_version AFTER UPDATE ON carrier_prefixes
BEGIN UPDATE config_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER carrier_prefixes_delete_version AFTER DELETE ON carrier_prefixes
BEGIN UPDATE config_version SET version = version + 1 WHERE id = 1; END;
