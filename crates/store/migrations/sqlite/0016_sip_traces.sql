-- SIP traces (issue 14): the messages of a call, both legs, keyed by the CDR's Call-ID, in
-- the order the switch saw them. Written in batches off the call path; deleted by age.
CREATE TABLE sip_traces (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    call_id     TEXT NOT NULL,
    at_us       INTEGER NOT NULL,
    source      TEXT NOT NULL,
    destination TEXT NOT NULL,
    transport   TEXT NOT NULL,
    message     BLOB NOT NULL
);
CREATE INDEX sip_traces_call ON sip_traces (call_id, id);
CREATE INDEX sip_traces_at ON sip_traces (at_us);
