-- Erasure: a record rebuilt from its current state without its history. The ledger keeps
-- who erased what, when and why (never the erased text), and every change hash of the
-- history erased, so that history is refused if a device brings it back (and a restore from
-- an older backup can erase again).
CREATE TABLE erasures (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    document_id TEXT NOT NULL,
    erased_at   BIGINT NOT NULL,
    erased_by   TEXT NOT NULL,
    reason      TEXT NOT NULL,
    fields      TEXT NOT NULL
);
CREATE INDEX erasures_by_document ON erasures (document_id);

CREATE TABLE erased_changes (
    document_id TEXT NOT NULL,
    change_hash TEXT NOT NULL,
    erasure_id  BIGINT NOT NULL,
    PRIMARY KEY (document_id, change_hash)
);
