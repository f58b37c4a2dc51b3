-- Competency frameworks as data. Items dropped by a correction are retired, not deleted:
-- records keep the ids they were made with.
CREATE TABLE frameworks (
    id             TEXT PRIMARY KEY,
    title          TEXT NOT NULL,
    version        TEXT NOT NULL,
    publisher      TEXT NOT NULL,
    effective_from TEXT NOT NULL,
    effective_to   TEXT,
    source         TEXT NOT NULL,
    definition     TEXT NOT NULL,
    imported_at    BIGINT NOT NULL
);

CREATE TABLE framework_items (
    framework_id TEXT NOT NULL REFERENCES frameworks (id),
    id           TEXT NOT NULL,
    kind         TEXT NOT NULL CHECK (kind IN ('area', 'component')),
    title        TEXT NOT NULL,
    retired_at   BIGINT,
    PRIMARY KEY (framework_id, id)
);

-- Changes the server refused, kept aside for review: never merged, never dropped.
CREATE TABLE quarantine (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    document_id   TEXT NOT NULL,
    user_id       TEXT NOT NULL,
    device_id     TEXT,
    reason        TEXT NOT NULL,
    change_hashes TEXT NOT NULL,
    changes       BYTEA NOT NULL,
    received_at   BIGINT NOT NULL
);
CREATE INDEX quarantine_by_document ON quarantine (document_id);

-- The central store: projections of the records, rewritten in the same transaction as the
-- document's chunk. No narrative (notes, feedback, reflections, family voice) is copied here.
-- `change_seq` is the id of the chunk whose commit last touched a row: it increases
-- monotonically across the database.
CREATE TABLE observations (
    document_url               TEXT PRIMARY KEY,
    practitioner_id            TEXT NOT NULL,
    observer_id                TEXT NOT NULL,
    observed_at                TEXT,
    setting                    TEXT,
    framework                  TEXT NOT NULL,
    status                     TEXT NOT NULL,
    consent_given              BIGINT,
    feedback_given_at          TEXT,
    observer_signed_off_at     TEXT,
    practitioner_signed_off_at TEXT,
    locked                     BIGINT NOT NULL,
    change_seq                 BIGINT NOT NULL
);
CREATE INDEX observations_by_practitioner ON observations (practitioner_id);

CREATE TABLE observation_components (
    document_url TEXT NOT NULL,
    component_id TEXT NOT NULL,
    change_seq   BIGINT NOT NULL,
    PRIMARY KEY (document_url, component_id)
);

CREATE TABLE observation_judgements (
    document_url TEXT NOT NULL,
    component_id TEXT NOT NULL,
    judgement    TEXT NOT NULL,
    change_seq   BIGINT NOT NULL,
    PRIMARY KEY (document_url, component_id)
);

-- actions[].goalId: an observation's development action names a goal of its practitioner's plan.
CREATE TABLE observation_goal_links (
    document_url TEXT NOT NULL,
    goal_id      TEXT NOT NULL,
    change_seq   BIGINT NOT NULL,
    PRIMARY KEY (document_url, goal_id)
);

CREATE TABLE development_plans (
    document_url  TEXT PRIMARY KEY,
    owner_id      TEXT NOT NULL,
    supervisor_id TEXT NOT NULL,
    framework     TEXT NOT NULL,
    period_from   TEXT,
    period_to     TEXT,
    source        TEXT,
    status        TEXT NOT NULL,
    change_seq    BIGINT NOT NULL
);
CREATE INDEX development_plans_by_owner ON development_plans (owner_id);

CREATE TABLE plan_goals (
    document_url TEXT NOT NULL,
    goal_id      TEXT NOT NULL,
    position     BIGINT NOT NULL,
    status       TEXT NOT NULL,
    target_date  TEXT,
    completed_at TEXT,
    change_seq   BIGINT NOT NULL,
    PRIMARY KEY (document_url, goal_id)
);

CREATE TABLE goal_components (
    document_url TEXT NOT NULL,
    goal_id      TEXT NOT NULL,
    component_id TEXT NOT NULL,
    change_seq   BIGINT NOT NULL,
    PRIMARY KEY (document_url, goal_id, component_id)
);

-- goals[].evidence: a plan's goal names an observation.
CREATE TABLE plan_goal_evidence (
    document_url    TEXT NOT NULL,
    goal_id         TEXT NOT NULL,
    observation_url TEXT NOT NULL,
    change_seq      BIGINT NOT NULL,
    PRIMARY KEY (document_url, goal_id, observation_url)
);

-- Goal evidence from both directions.
CREATE VIEW goal_evidence AS
    SELECT document_url AS plan_url, goal_id, observation_url, 'plan' AS via FROM plan_goal_evidence
    UNION
    SELECT p.document_url AS plan_url, l.goal_id, l.document_url AS observation_url, 'action' AS via
    FROM observation_goal_links l
    JOIN observations o ON o.document_url = l.document_url
    JOIN development_plans p ON p.owner_id = o.practitioner_id
    JOIN plan_goals g ON g.document_url = p.document_url AND g.goal_id = l.goal_id;

-- Practitioners the records are about, with the record that last touched each. A view, not
-- a table: every commit would otherwise update one shared row per practitioner, and
-- concurrent commits would queue on it.
CREATE VIEW practitioners AS
    SELECT id, document_url, change_seq FROM (
        SELECT id, document_url, change_seq,
               ROW_NUMBER() OVER (PARTITION BY id ORDER BY change_seq DESC) AS newest
        FROM (
            SELECT practitioner_id AS id, document_url, change_seq FROM observations
            UNION ALL
            SELECT owner_id AS id, document_url, change_seq FROM development_plans
        ) touched
    ) ranked
    WHERE newest = 1;
