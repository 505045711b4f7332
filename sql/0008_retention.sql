-- Raw-event retention (docs/retention.md, stats_gateway/db/retention.py).
-- retention_overrides: an org's own raw-event retention for one domain, in days, set with
-- `stats-gateway retention set`; without a row the domain's declared `retention` holds.
-- raw_horizons: from when an org's raw events of a domain are still kept, written by
-- `stats-gateway retention apply` when it drops them; the planner reads ranges before it
-- from the rollups only.

CREATE TABLE retention_overrides (
    org_id  uuid NOT NULL REFERENCES orgs(id),
    domain  text NOT NULL,
    days    integer NOT NULL CHECK (days > 0),
    PRIMARY KEY (org_id, domain)
);

CREATE TABLE raw_horizons (
    org_id    uuid NOT NULL REFERENCES orgs(id),
    domain    text NOT NULL,
    raw_from  timestamptz NOT NULL,
    PRIMARY KEY (org_id, domain)
);
