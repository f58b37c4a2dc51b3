-- Practice champions (issue 16): a person declared to hold expertise in a framework area or
-- component. Declared by an admin (`fieldbook champions add`), or nominated by the person
-- and confirmed by a manager above them or a principal social worker.
CREATE TABLE champions (
    user_id      TEXT NOT NULL,
    component_id TEXT NOT NULL,
    status       TEXT NOT NULL CHECK (status IN ('nominated', 'confirmed')),
    nominated_by TEXT NOT NULL,
    nominated_at BIGINT NOT NULL,
    confirmed_by TEXT,
    confirmed_at BIGINT,
    PRIMARY KEY (user_id, component_id)
);
CREATE INDEX champions_by_component ON champions (component_id);
