-- Group sessions and practice themes: projections like observations and plans, rewritten
-- with each commit. No narrative (summary, themes, actions, reflections, responses) is
-- copied here.
CREATE TABLE group_sessions (
    document_url    TEXT PRIMARY KEY,
    facilitator_id  TEXT NOT NULL,
    -- Space-separated, for access checks; `group_session_participants` for queries.
    participant_ids TEXT NOT NULL,
    held_at         TEXT,
    kind            TEXT NOT NULL,
    framework       TEXT,
    status          TEXT NOT NULL,
    closed_at       TEXT,
    locked          BIGINT NOT NULL,
    change_seq      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);
CREATE INDEX group_sessions_by_facilitator ON group_sessions (facilitator_id);
CREATE INDEX group_sessions_by_change ON group_sessions (change_seq);

CREATE TABLE group_session_participants (
    document_url TEXT NOT NULL,
    user_id      TEXT NOT NULL,
    reflected    BIGINT NOT NULL,
    change_seq   BIGINT NOT NULL,
    PRIMARY KEY (document_url, user_id)
);
CREATE INDEX group_session_participants_by_user ON group_session_participants (user_id);

CREATE TABLE group_session_components (
    document_url TEXT NOT NULL,
    component_id TEXT NOT NULL,
    change_seq   BIGINT NOT NULL,
    PRIMARY KEY (document_url, component_id)
);

CREATE TABLE practice_themes (
    document_url   TEXT PRIMARY KEY,
    raised_by      TEXT NOT NULL,
    raised_at      TEXT,
    team           TEXT,
    category       TEXT NOT NULL,
    framework      TEXT,
    status         TEXT NOT NULL,
    response_count BIGINT NOT NULL,
    locked         BIGINT NOT NULL,
    change_seq     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL
);
CREATE INDEX practice_themes_by_change ON practice_themes (change_seq);

CREATE TABLE practice_theme_components (
    document_url TEXT NOT NULL,
    component_id TEXT NOT NULL,
    change_seq   BIGINT NOT NULL,
    PRIMARY KEY (document_url, component_id)
);

-- Retention covers the new record types too (SQLite rebuilds a table to change a CHECK).
CREATE TABLE retention_policies_v11 (
    record_type TEXT PRIMARY KEY
                CHECK (record_type IN ('observation', 'development-plan', 'group-session', 'practice-theme')),
    keep        TEXT NOT NULL,
    after       TEXT NOT NULL CHECK (after IN ('sign-off', 'leaving')),
    set_by      TEXT NOT NULL,
    set_at      BIGINT NOT NULL
);
INSERT INTO retention_policies_v11 SELECT record_type, keep, after, set_by, set_at FROM retention_policies;
DROP TABLE retention_policies;
ALTER TABLE retention_policies_v11 RENAME TO retention_policies;
