-- The block list gets a version of its own (issue 12): automatic blocks change it several
-- times a second under attack, and each change of config_version makes every node reload
-- customers, carriers, plans and rates. From here a block-list change bumps
-- blocklist_version only, and the switch reloads the block list alone.
CREATE TABLE blocklist_version (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    version BIGINT  NOT NULL
);
INSERT INTO blocklist_version (id, version) VALUES (1, 1);

CREATE FUNCTION bump_blocklist_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE blocklist_version SET version = version + 1 WHERE id = 1;
    RETURN NULL;
END;
$$;

DROP TRIGGER blocklist_version ON blocklist;
CREATE TRIGGER blocklist_version AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON blocklist
    FOR EACH STATEMENT EXECUTE FUNCTION bump_blocklist_version();
