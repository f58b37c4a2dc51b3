-- Token-signing keys leave the database: whoever reads it must not be able to mint tokens.
-- They now come from a key file or the environment (see the README, "Signing keys").
DROP TABLE signing_keys;

-- HR sees an observation from when it is shared, as the practitioner does: events of
-- observations still in draft leave the feed.
DELETE FROM record_events WHERE document_url IN (SELECT document_url FROM observations WHERE status = 'draft');

-- Sign-in throttling, shared by every node: attempts per user and per address, until 15
-- minutes pass without one. The key is a SHA-256 of what identifies them, never what was typed.
CREATE TABLE sign_in_throttle (
    key            TEXT PRIMARY KEY,
    failures       BIGINT NOT NULL,
    last_attempt   BIGINT NOT NULL,
    next_allowed   BIGINT NOT NULL,
    delay_ms       BIGINT NOT NULL,
    burst_audited  INTEGER NOT NULL DEFAULT 0
);

-- Each sender's share of the quarantine is counted by user and time.
CREATE INDEX quarantine_by_user ON quarantine (user_id, received_at);
