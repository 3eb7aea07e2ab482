-- +goose Up
-- Activation tokens are stored as SHA-256 hashes; uses_left counts down, expires_at is RFC 3339 UTC.
CREATE TABLE activation_tokens (
    id          INTEGER PRIMARY KEY,
    token_hash  TEXT NOT NULL UNIQUE,
    created_at  TEXT NOT NULL,
    expires_at  TEXT NOT NULL,
    uses_left   INTEGER NOT NULL,
    policy_id   TEXT NOT NULL DEFAULT '',
    relay_group TEXT NOT NULL DEFAULT ''
);

-- Computers: agents (and relays) that activated, named by the GUID in their certificate.
CREATE TABLE computers (
    guid          TEXT PRIMARY KEY,
    hostname      TEXT NOT NULL,
    platform      TEXT NOT NULL,
    agent_version TEXT NOT NULL,
    tls_versions  TEXT NOT NULL,
    cert_serial   TEXT NOT NULL,
    cert_expires  TEXT NOT NULL,
    policy_id     TEXT NOT NULL,
    relay_group   TEXT NOT NULL,
    activated_at  TEXT NOT NULL,
    deactivated   INTEGER NOT NULL DEFAULT 0
);

-- +goose Down
DROP TABLE computers;
DROP TABLE activation_tokens;
