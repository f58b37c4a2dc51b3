-- Settings this database carries for every server node that uses it (e.g. its storage id).
CREATE TABLE server_settings (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- Keys that sign access tokens; created on first start, kept with the data they protect.
CREATE TABLE signing_keys (
    id         TEXT PRIMARY KEY,
    secret     BLOB NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    role          TEXT NOT NULL CHECK (role IN ('practitioner', 'supervisor', 'manager', 'hr', 'admin')),
    supervisor_id TEXT REFERENCES users (id),
    team          TEXT,
    created_at    BIGINT NOT NULL
);

-- A document is its chunks in id order: at most one snapshot (a full save) followed by
-- incremental chunks (changes), until compaction folds them into a new snapshot.
CREATE TABLE document_chunks (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    document_id TEXT NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('snapshot', 'incremental')),
    data        BLOB NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE INDEX document_chunks_by_document ON document_chunks (document_id, id);
