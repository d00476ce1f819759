-- The block list gets a version of its own (issue 12): automatic blocks change it several
-- times a second under attack, and each change of config_version makes the switch reload
-- customers, carriers, plans and rates. From here a block-list change bumps
-- blocklist_version only, and the switch reloads the block list alone.
CREATE TABLE blocklist_version (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    version INTEGER NOT NULL
);
INSERT INTO blocklist_version (id, version) VALUES (1, 1);

DROP TRIGGER blocklist_insert_version;
DROP TRIGGER blocklist_update_version;
DROP TRIGGER blocklist_delete_version;
CREATE TRIGGER blocklist_insert_version AFTER INSERT ON blocklist
BEGIN UPDATE blocklist_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER blocklist_update_version AFTER UPDATE ON blocklist
BEGIN UPDATE blocklist_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER blocklist_delete_version AFTER DELETE ON blocklist
BEGIN UPDATE blocklist_version SET version = version + 1 WHERE id = 1; END;
