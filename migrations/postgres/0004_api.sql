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
