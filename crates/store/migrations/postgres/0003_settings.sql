-- Global settings, one row per known key (the keys and their types are checked in
-- domain::Setting: an unknown key cannot be stored by vts). Changes bump the configuration
-- version like every other configuration table.
CREATE TABLE settings (
    key        TEXT   NOT NULL PRIMARY KEY,
    value      TEXT   NOT NULL,
    updated_ms BIGINT NOT NULL
);
CREATE TRIGGER settings_version AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON settings
    FOR EACH STATEMENT EXECUTE FUNCTION bump_config_version();
