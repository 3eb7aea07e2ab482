-- +goose Up
-- The Manager nodes sharing this database: each registers at start and refreshes last_seen on its fleet
-- loop; a node unseen for 3 times its interval (interval_ms) is offline. Timestamps are RFC 3339 (UTC).
CREATE TABLE manager_nodes (
    name          TEXT PRIMARY KEY,
    console_addr  TEXT NOT NULL,
    agent_addr    TEXT NOT NULL,
    version       TEXT NOT NULL,
    started_at    TEXT NOT NULL,
    last_seen     TEXT NOT NULL,
    interval_ms   BIGINT NOT NULL
);

-- Leases of the periodic fleet jobs: of several nodes only the holder of a job's unexpired lease runs it.
CREATE TABLE job_leases (
    name        TEXT PRIMARY KEY,
    holder      TEXT NOT NULL,
    expires_at  TEXT NOT NULL
);

-- +goose Down
DROP TABLE job_leases;
DROP TABLE manager_nodes;
