-- +goose Up
ALTER TABLE computers ADD COLUMN relay INTEGER NOT NULL DEFAULT 0;
ALTER TABLE computers ADD COLUMN relay_listen TEXT NOT NULL DEFAULT '';
ALTER TABLE computers ADD COLUMN listen TEXT NOT NULL DEFAULT '';
ALTER TABLE computers ADD COLUMN last_seen TEXT NOT NULL DEFAULT '';
ALTER TABLE computers ADD COLUMN last_seq BIGINT NOT NULL DEFAULT 0;
ALTER TABLE computers ADD COLUMN negotiated_tls TEXT NOT NULL DEFAULT '';
ALTER TABLE computers ADD COLUMN legacy INTEGER NOT NULL DEFAULT 0;
-- The policy released to the computer (by send policy, or by itself when automaticallySendPolicy is
-- true): heartbeats deliver it until the computer reports its fingerprint (acked).
ALTER TABLE computers ADD COLUMN policy_json TEXT NOT NULL DEFAULT '';
ALTER TABLE computers ADD COLUMN policy_sent TEXT NOT NULL DEFAULT '';
ALTER TABLE computers ADD COLUMN policy_acked TEXT NOT NULL DEFAULT '';

CREATE TABLE relay_groups (
    name       TEXT PRIMARY KEY,
    created_at TEXT NOT NULL
);
INSERT INTO relay_groups (name, created_at) VALUES ('Default Relay Group', '1970-01-01T00:00:00Z');

CREATE TABLE bundles (
    sha256     TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    size       BIGINT NOT NULL,
    created_at TEXT NOT NULL
);

-- Bumped by every change that can change a computer's policy (relay roles, groups, bundles, releases).
ALTER TABLE change_counter ADD COLUMN fleet BIGINT NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE change_counter DROP COLUMN fleet;
DROP TABLE bundles;
DROP TABLE relay_groups;
ALTER TABLE computers DROP COLUMN policy_acked;
ALTER TABLE computers DROP COLUMN policy_sent;
ALTER TABLE computers DROP COLUMN policy_json;
ALTER TABLE computers DROP COLUMN legacy;
ALTER TABLE computers DROP COLUMN negotiated_tls;
ALTER TABLE computers DROP COLUMN last_seq;
ALTER TABLE computers DROP COLUMN last_seen;
ALTER TABLE computers DROP COLUMN listen;
ALTER TABLE computers DROP COLUMN relay_listen;
ALTER TABLE computers DROP COLUMN relay;
