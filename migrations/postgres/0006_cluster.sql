-- Several nodes on one database. Each document has a version, bumped by every commit of
-- its changes: a node commits only if the version is the one its copy was judged against
-- (the row's lock serialises committers of one document across nodes), and otherwise
-- catches up and judges again.
CREATE TABLE document_versions (
    document_id TEXT PRIMARY KEY,
    version     BIGINT NOT NULL
);
INSERT INTO document_versions (document_id, version)
    SELECT DISTINCT document_id, 1 FROM document_chunks;

-- What one node changes, the others hear at once on channel 'fieldbook' (NOTIFY is sent
-- at commit, so only committed changes are heard). Payloads:
--   d <commit time, Unix ms> <document>:<version> ...   documents committed (sent by the
--                                                       committing node, one per batch)
--   r                                                   a device was revoked
--   a                                                   people, teams or supervision changed
--   f                                                   frameworks were imported or retired
-- The last three are sent by triggers, so changes made by `fieldbook` commands are heard too.
CREATE FUNCTION fieldbook_notify(what TEXT) RETURNS void AS $$
BEGIN
    PERFORM pg_notify('fieldbook', what);
END $$ LANGUAGE plpgsql;

CREATE FUNCTION fieldbook_notify_revocation() RETURNS trigger AS $$
BEGIN
    PERFORM fieldbook_notify('r');
    RETURN NULL;
END $$ LANGUAGE plpgsql;
CREATE TRIGGER device_revoked AFTER INSERT ON revocations
    FOR EACH STATEMENT EXECUTE FUNCTION fieldbook_notify_revocation();

CREATE FUNCTION fieldbook_notify_access() RETURNS trigger AS $$
BEGIN
    PERFORM fieldbook_notify('a');
    RETURN NULL;
END $$ LANGUAGE plpgsql;
CREATE TRIGGER access_changed AFTER UPDATE ON server_settings
    FOR EACH ROW WHEN (NEW.name = 'access_version') EXECUTE FUNCTION fieldbook_notify_access();

CREATE FUNCTION fieldbook_notify_frameworks() RETURNS trigger AS $$
BEGIN
    PERFORM fieldbook_notify('f');
    RETURN NULL;
END $$ LANGUAGE plpgsql;
CREATE TRIGGER frameworks_changed AFTER INSERT OR UPDATE OR DELETE ON frameworks
    FOR EACH STATEMENT EXECUTE FUNCTION fieldbook_notify_frameworks();
