-- Organisation, sign-in, devices, authorship and the audit trail (issue 4).

CREATE TABLE teams (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
INSERT INTO teams (id, name, created_at)
    SELECT team, team, MIN(created_at) FROM users WHERE team IS NOT NULL GROUP BY team;

-- Users gain a status (suspended and deleted users are refused everywhere), the identity a
-- council's identity provider knows them by, HR numbers and a password hash (argon2, PHC).
-- The supervisor moves to `supervision`, which keeps history. Rebuilt because SQLite cannot
-- change a CHECK constraint in place.
CREATE TABLE users_v3 (
    id                  TEXT PRIMARY KEY,
    name                TEXT NOT NULL,
    role                TEXT NOT NULL CHECK (role IN ('practitioner', 'supervisor', 'manager',
                                                      'principal-social-worker', 'hr', 'admin')),
    team_id             TEXT,
    status              TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended', 'deleted')),
    external_id         TEXT UNIQUE,
    employee_number     TEXT,
    registration_number TEXT,
    password_hash       TEXT,
    created_at          BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL
);
INSERT INTO users_v3 (id, name, role, team_id, created_at, updated_at)
    SELECT id, name, role, team, created_at, created_at FROM users;

-- Who supervises whom, and when: `ended_on` is exclusive and NULL while current. A manager
-- supervising a supervisor is the same relation one level up, so the line is its closure.
CREATE TABLE supervision (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    supervisee_id TEXT NOT NULL,
    supervisor_id TEXT NOT NULL,
    started_on    TEXT NOT NULL,
    ended_on      TEXT,
    created_at    BIGINT NOT NULL
);
INSERT INTO supervision (supervisee_id, supervisor_id, started_on, created_at)
    SELECT id, supervisor_id, '1970-01-01', created_at FROM users WHERE supervisor_id IS NOT NULL;
CREATE INDEX supervision_by_supervisor ON supervision (supervisor_id);
CREATE INDEX supervision_by_supervisee ON supervision (supervisee_id);

DROP TABLE users;
ALTER TABLE users_v3 RENAME TO users;

CREATE TABLE devices (
    user_id       TEXT NOT NULL,
    device_id     TEXT NOT NULL,
    first_seen_at BIGINT NOT NULL,
    last_seen_at  BIGINT NOT NULL,
    revoked_at    BIGINT,
    PRIMARY KEY (user_id, device_id)
);
-- Every revocation, in order: server nodes follow this log (by id, not by clock) to close
-- the device's connections.
CREATE TABLE revocations (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id    TEXT NOT NULL,
    device_id  TEXT NOT NULL,
    revoked_at BIGINT NOT NULL
);

-- Refresh tokens are stored as SHA-256 hashes, bound to one device; a refresh rotates them.
CREATE TABLE refresh_tokens (
    token_hash TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL,
    device_id  TEXT NOT NULL,
    issued_at  BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX refresh_tokens_by_device ON refresh_tokens (user_id, device_id);

-- Authorship: the first change of an automerge actor binds it to the user and device that
-- sent it; later changes by that actor must come from them.
CREATE TABLE actors (
    actor_id    TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL,
    device_id   TEXT,
    document_id TEXT NOT NULL,
    bound_at    BIGINT NOT NULL
);

-- Append-only: who viewed, changed, exported or signed what. Never narrative text.
CREATE TABLE audit_events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    server_time BIGINT NOT NULL,
    device_time BIGINT,
    user_id     TEXT,
    device_id   TEXT,
    action      TEXT NOT NULL,
    document_id TEXT,
    detail      TEXT NOT NULL
);
CREATE INDEX audit_events_by_user ON audit_events (user_id, server_time);
CREATE INDEX audit_events_by_document ON audit_events (document_id, server_time);
CREATE INDEX audit_events_by_time ON audit_events (server_time);
CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
    BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;
CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
    BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;

-- Bumped by every change to users, supervision or devices, so each server node knows when
-- to drop what it cached about who may read what.
INSERT INTO server_settings (name, value) VALUES ('access_version', '1');
