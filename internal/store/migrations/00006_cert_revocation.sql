-- +goose Up
-- Every agent certificate the fleet CA issues (activation and renewal), by serial (hex): the CRL lists
-- the rows with a revoked_at that have not expired. reason is RFC 5280's: 6 certificateHold (the
-- computer is deactivated; reactivation clears it), 4 superseded (replaced by a renewed certificate).
CREATE TABLE cert_serials (
    serial     TEXT PRIMARY KEY,
    computer   TEXT NOT NULL,
    issued     TEXT NOT NULL,
    expires    TEXT NOT NULL,
    revoked_at TEXT NOT NULL DEFAULT '',
    reason     INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX cert_serials_computer ON cert_serials (computer);
CREATE INDEX cert_serials_revoked ON cert_serials (revoked_at, expires);

-- After a renewal, the serial the agent renewed with: revoked once the agent heartbeats with the new one.
ALTER TABLE computers ADD COLUMN cert_prev_serial TEXT NOT NULL DEFAULT '';

-- The CRL number: bumped by every change of the revoked serials.
ALTER TABLE change_counter ADD COLUMN crl BIGINT NOT NULL DEFAULT 0;

-- The certificates issued before this migration; those of deactivated computers are put on hold.
INSERT INTO cert_serials (serial, computer, issued, expires)
    SELECT cert_serial, guid, activated_at, cert_expires FROM computers WHERE cert_serial <> '';
UPDATE cert_serials SET revoked_at = strftime('%Y-%m-%dT%H:%M:%SZ', 'now'), reason = 6
    WHERE computer IN (SELECT guid FROM computers WHERE deactivated = 1);
UPDATE change_counter SET crl = 1 WHERE EXISTS (SELECT 1 FROM cert_serials WHERE revoked_at <> '');

-- +goose Down
ALTER TABLE change_counter DROP COLUMN crl;
ALTER TABLE computers DROP COLUMN cert_prev_serial;
DROP TABLE cert_serials;
