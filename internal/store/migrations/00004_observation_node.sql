-- +goose Up
-- Handshake telemetry names the fleet member whose port saw the handshakes: '' for the Manager's own
-- ports, a relay's or agent's GUID for what its heartbeats report (4122, 4118). The node is part of the
-- key, so two relays seeing the same client keep two rows. SQLite cannot change a primary key in place:
-- the table is rebuilt.
CREATE TABLE tls_observations_new (
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
    node         TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (port, client_ip, sni, user_agent, agent_guid, offered_max, version, cipher_suite, outcome, node)
);
INSERT INTO tls_observations_new (port, client_ip, sni, user_agent, agent_guid, offered_max, version, cipher_suite, outcome, reason, count, first_seen, last_seen)
    SELECT port, client_ip, sni, user_agent, agent_guid, offered_max, version, cipher_suite, outcome, reason, count, first_seen, last_seen FROM tls_observations;
DROP TABLE tls_observations;
ALTER TABLE tls_observations_new RENAME TO tls_observations;
CREATE INDEX tls_observations_last_seen ON tls_observations (last_seen);

-- +goose Down
CREATE TABLE tls_observations_old (
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
INSERT INTO tls_observations_old
    SELECT port, client_ip, sni, user_agent, agent_guid, offered_max, version, cipher_suite, outcome, reason, SUM(count), MIN(first_seen), MAX(last_seen)
    FROM tls_observations GROUP BY port, client_ip, sni, user_agent, agent_guid, offered_max, version, cipher_suite, outcome;
DROP TABLE tls_observations;
ALTER TABLE tls_observations_old RENAME TO tls_observations;
CREATE INDEX tls_observations_last_seen ON tls_observations (last_seen);
