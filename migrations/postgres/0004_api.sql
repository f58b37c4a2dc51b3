-- Service accounts: systems (HR, workforce, learning record stores) that read the minimised
-- development-records API. Their keys are stored as SHA-256 hashes; rotating replaces the
-- hash, revoking stamps `revoked_at`.
CREATE TABLE service_accounts (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    scopes     TEXT NOT NULL,
    key_hash   TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    rotated_at BIGINT,
    revoked_at BIGINT
);

-- Record-level events for the HR change feed: observation shared or signed off, goal status
-- changed, plan agreed… Written in the transaction that commits the change. `seq` comes
-- from `feed_state`, whose row lock orders it by commit, so a reader never sees a later
-- event before an earlier one. Ids, statuses and component ids only, never narrative.
CREATE TABLE record_events (
    seq             BIGINT PRIMARY KEY,
    document_url    TEXT NOT NULL,
    practitioner_id TEXT NOT NULL,
    kind            TEXT NOT NULL,
    at              BIGINT NOT NULL,
    detail          TEXT NOT NULL
);
CREATE INDEX record_events_by_practitioner ON record_events (practitioner_id, seq);

CREATE TABLE feed_state (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    last_seq BIGINT NOT NULL
);
INSERT INTO feed_state (id, last_seq) VALUES (1, 0);

-- Covering indexes for the development-records API: summaries and exports read these
-- columns for many practitioners at once, from the index alone.
CREATE INDEX observations_summary ON observations (practitioner_id, status, observed_at, document_url);
CREATE INDEX observation_judgements_by_verdict ON observation_judgements (document_url, judgement, component_id);
CREATE INDEX development_plans_summary ON development_plans (owner_id, document_url);
CREATE INDEX plan_goals_by_status ON plan_goals (document_url, status);
-- Insights join every component row to its observation and practitioner: index-only.
CREATE INDEX observations_for_insights ON observations (document_url, practitioner_id, status, framework, observed_at);
CREATE INDEX users_team ON users (id, team_id);
CREATE INDEX development_plans_for_insights ON development_plans (document_url, owner_id, framework);

-- When a record's projection was last rewritten (Unix ms): `updated_since` on the API.
ALTER TABLE observations ADD COLUMN updated_at BIGINT NOT NULL DEFAULT 0;
ALTER TABLE development_plans ADD COLUMN updated_at BIGINT NOT NULL DEFAULT 0;
CREATE INDEX observations_by_update ON observations (updated_at, practitioner_id);
CREATE INDEX development_plans_by_update ON development_plans (updated_at, owner_id);
