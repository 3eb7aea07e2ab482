-- +goose Up
-- API keys get a scope (admin, read-only), an optional expiry and a revocation time; '' means none. A
-- key made before this migration is an admin key that never expires, as it was.
ALTER TABLE api_keys ADD COLUMN scope TEXT NOT NULL DEFAULT 'admin';
ALTER TABLE api_keys ADD COLUMN expires_at TEXT NOT NULL DEFAULT '';
ALTER TABLE api_keys ADD COLUMN revoked_at TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE api_keys DROP COLUMN revoked_at;
ALTER TABLE api_keys DROP COLUMN expires_at;
ALTER TABLE api_keys DROP COLUMN scope;
