-- Header policy (docs/ROUTING.md "Headers between customers and carriers"): whether a
-- customer's identity headers reach carriers (trusted), and whether the other side sees a
-- customer's or a carrier's topology. The customers and carriers triggers of 0001 bump the
-- configuration version on any update of these columns too.
ALTER TABLE customers ADD COLUMN trusted INTEGER NOT NULL DEFAULT 0 CHECK (trusted IN (0, 1));
ALTER TABLE customers ADD COLUMN hide_topology INTEGER NOT NULL DEFAULT 0 CHECK (hide_topology IN (0, 1));
ALTER TABLE carriers ADD COLUMN hide_topology INTEGER NOT NULL DEFAULT 0 CHECK (hide_topology IN (0, 1));
