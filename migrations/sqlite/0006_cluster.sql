-- Each document has a version, bumped by every commit of its changes: a commit goes in
-- only if the version is the one its copy was judged against (see the PostgreSQL
-- migration: there several nodes share the database).
CREATE TABLE document_versions (
    document_id TEXT PRIMARY KEY,
    version     BIGINT NOT NULL
);
INSERT INTO document_versions (document_id, version)
    SELECT DISTINCT document_id, 1 FROM document_chunks;
