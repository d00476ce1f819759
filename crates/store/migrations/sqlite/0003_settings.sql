-- Global settings, one row per known key (the keys and their types are checked in
-- domain::Setting: an unknown key cannot be stored by vts). Changes bump the configuration
-- version like every other configuration table.
CREATE TABLE settings (
    key        TEXT    NOT NULL PRIMARY KEY,
    value      TEXT    NOT NULL,
    updated_ms INTEGER NOT NULL
);
CREATE TRIGGER settings_insert_version AFTER INSERT ON settings
BEGIN UPDATE config_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER settings_update_version AFTER UPDATE ON settings
BEGIN UPDATE config_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER settings_delete_version AFTER DELETE ON settings
BEGIN UPDATE config_version SET version = version + 1 WHERE id = 1; END;
