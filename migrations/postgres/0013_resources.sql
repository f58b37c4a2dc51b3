-- Research resources (issue 16): public publications tagged with framework areas, which plan
-- goals cite by id (`goals[].resources`). Retired rather than deleted, as framework ids are,
-- so a goal that cites one stays valid.
CREATE TABLE resources (
    id          TEXT PRIMARY KEY,
    title       TEXT NOT NULL,
    url         TEXT NOT NULL,
    publisher   TEXT NOT NULL,
    components  TEXT NOT NULL, -- JSON array of area or component ids
    summary     TEXT,
    added_at    TEXT NOT NULL,
    source      TEXT NOT NULL,
    imported_at BIGINT NOT NULL,
    retired_at  BIGINT
);

-- Validation on every node knows the resource ids: a change is heard as a framework change ('f').
CREATE TRIGGER resources_changed AFTER INSERT OR UPDATE OR DELETE ON resources
    FOR EACH STATEMENT EXECUTE FUNCTION fieldbook_notify_frameworks();
