-- SCIM provisioning (RFC 7643/7644, issue 18): the identity provider's names for people and
-- teams. A person's `userName` is kept here (case-insensitively unique, as SCIM has it); their
-- `externalId` is `users.external_id`, the claim they sign in with. A team's SCIM id is its
-- own id, and the provider's `externalId` for it is kept here.
CREATE TABLE scim_users (
    user_id       TEXT PRIMARY KEY REFERENCES users (id),
    user_name     TEXT NOT NULL,
    user_name_key TEXT NOT NULL UNIQUE, -- lowercased, for matching
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);
CREATE TABLE scim_groups (
    team_id     TEXT PRIMARY KEY REFERENCES teams (id),
    external_id TEXT,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    -- Deleted over SCIM: its members left it; the team stays for the records that name it.
    deleted_at  BIGINT
);
