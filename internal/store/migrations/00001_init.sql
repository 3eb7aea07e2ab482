-- +goose Up
-- Timestamps are RFC 3339 UTC text and identifiers plain integers, so that the statements in store.go
-- run unchanged on SQLite and PostgreSQL.
CREATE TABLE settings (
    name       TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    updated_by TEXT NOT NULL
);

CREATE TABLE setting_events (
    id        INTEGER PRIMARY KEY,
    name      TEXT NOT NULL,
    old_value TEXT NOT NULL,
    new_value TEXT NOT NULL,
    actor     TEXT NOT NULL,
    at        TEXT NOT NULL
);
CREATE INDEX setting_events_name ON setting_events (name, id);

-- One row: bumped by every settings change, so running Managers notice writes by dsm_c.
CREATE TABLE change_counter (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    settings BIGINT NOT NULL
);
INSERT INTO change_counter (id, settings) VALUES (1, 0);

CREATE TABLE api_keys (
    id           INTEGER PRIMARY KEY,
    name         TEXT NOT NULL UNIQUE,
    prefix       TEXT NOT NULL UNIQUE,
    secret_hash  TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    last_used_at TEXT NOT NULL DEFAULT ''
);

CREATE TABLE admins (
    username      TEXT PRIMARY KEY,
    password_hash TEXT NOT NULL,
    must_change   INTEGER NOT NULL DEFAULT 1,
    created_at    TEXT NOT NULL
);

-- Handshake telemetry, aggregated: one row per (port, client identity, offered maximum, negotiated
-- version, suite, outcome), counted.
CREATE TABLE tls_observations (
    port         INTEGER NOT NULL,
    client_ip    TEXT NOT NULL,
    sni          TEXT NOT NULL,
    user_agent   TEXT NOT NULL,
    agent_guid   TEXT NOT NULL,
    offered_max  TEXT NOT NULL,
    version      TEXT NOT NULL,
    cipher_suite TEXT NOT NULL,
    outcome      TEXT NOT NULL,
    reason       TEXT NOT NULL,
    count        BIGINT NOT NULL,
    first_seen   TEXT NOT NULL,
    last_seen    TEXT NOT NULL,
    PRIMARY KEY (port, client_ip, sni, user_agent, agent_guid, offered_max, version, cipher_suite, outcome)
);
CREATE INDEX tls_observations_last_seen ON tls_observations (last_seen);

-- +goose Down
DROP TABLE tls_observations;
DROP TABLE admins;
DROP TABLE api_keys;
DROP TABLE change_counter;
DROP TABLE setting_events;
DROP TABLE settings;
