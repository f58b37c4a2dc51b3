-- Retention (issue 14): how long each record type is kept and from when, legal holds that
-- keep records past it, and what retention needs to know about records and people.

-- One policy per record type: kept `keep` (e.g. `6y`, `18m`, `90d`) after `after`:
-- `sign-off` (an observation signed off by both, else its last change; a plan's last
-- change) or `leaving` (the practitioner the record is about left).
CREATE TABLE retention_policies (
    record_type TEXT PRIMARY KEY CHECK (record_type IN ('observation', 'development-plan')),
    keep        TEXT NOT NULL,
    after       TEXT NOT NULL CHECK (after IN ('sign-off', 'leaving')),
    set_by      TEXT NOT NULL,
    set_at      BIGINT NOT NULL
);

-- A hold on a person (every record they are a party to) or on one record. Released holds
-- stay, with who released them and when.
CREATE TABLE legal_holds (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id     TEXT,
    document_id TEXT,
    reason      TEXT NOT NULL,
    placed_by   TEXT NOT NULL,
    placed_at   BIGINT NOT NULL,
    released_by TEXT,
    released_at BIGINT,
    CHECK ((user_id IS NULL) <> (document_id IS NULL))
);

-- When a person left (their status became `deleted`); NULL while they are here. Not filled in
-- for people who left before: when is not known (`updated_at` may be any later edit, or their
-- creation), and retention must not count from a wrong day. Marking them deleted again sets it.
ALTER TABLE users ADD COLUMN left_at BIGINT;

-- When the family withdrew consent to the observation (`consent.withdrawnAt`), for review.
-- Filled for records stored before this migration by the server on its next start.
ALTER TABLE observations ADD COLUMN consent_withdrawn_at TEXT;

-- The ledger also keeps deletions: a deleted record is refused for good (`kind = 'deleted'`),
-- and a restore from an older backup deletes it again.
ALTER TABLE erasures ADD COLUMN kind TEXT NOT NULL DEFAULT 'erased' CHECK (kind IN ('erased', 'deleted'));
CREATE INDEX erasures_deleted ON erasures (document_id, kind);
