-- The tables Kamailio's acc module writes (schema of kamailio 5.6, PostgreSQL flavour: acc
-- version 5, missed_calls version 4) and the version rows its modules check.
CREATE TABLE version (table_name VARCHAR(32) NOT NULL PRIMARY KEY, table_version INTEGER DEFAULT 0 NOT NULL);
INSERT INTO version (table_name, table_version) VALUES ('acc', 5), ('missed_calls', 4);
CREATE TABLE acc (id SERIAL PRIMARY KEY NOT NULL, method VARCHAR(16) DEFAULT '' NOT NULL,
    from_tag VARCHAR(128) DEFAULT '' NOT NULL, to_tag VARCHAR(128) DEFAULT '' NOT NULL,
    callid VARCHAR(255) DEFAULT '' NOT NULL, sip_code VARCHAR(3) DEFAULT '' NOT NULL,
    sip_reason VARCHAR(128) DEFAULT '' NOT NULL, time TIMESTAMP WITHOUT TIME ZONE NOT NULL);
CREATE INDEX acc_callid_idx ON acc (callid);
CREATE TABLE missed_calls (id SERIAL PRIMARY KEY NOT NULL, method VARCHAR(16) DEFAULT '' NOT NULL,
    from_tag VARCHAR(128) DEFAULT '' NOT NULL, to_tag VARCHAR(128) DEFAULT '' NOT NULL,
    callid VARCHAR(255) DEFAULT '' NOT NULL, sip_code VARCHAR(3) DEFAULT '' NOT NULL,
    sip_reason VARCHAR(128) DEFAULT '' NOT NULL, time TIMESTAMP WITHOUT TIME ZONE NOT NULL);
CREATE INDEX missed_calls_callid_idx ON missed_calls (callid);
