package store

import (
	"context"
	"database/sql"
	"errors"
)

// Settings returns every stored setting value by name (settings never changed are absent: they have
// their defaults).
func (s *DB) Settings(ctx context.Context) (map[string]string, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT name, value FROM settings`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var n, v string
		if err := rows.Scan(&n, &v); err != nil {
			return nil, err
		}
		out[n] = v
	}
	return out, rows.Err()
}

// SetSetting stores a (validated) value and records the change as an event, in one transaction. It
// returns the previous value ("" if none) and whether anything changed; setting the same value again
// records nothing.
func (s *DB) SetSetting(ctx context.Context, name, value, actor string) (old string, changed bool, err error) {
	tx, err := s.begin(ctx)
	if err != nil {
		return "", false, err
	}
	defer tx.Rollback()
	// Write first: a transaction that starts with a write waits for another writer (busy_timeout); one
	// that reads first cannot be upgraded while another writes and fails at once with SQLITE_BUSY. An
	// unchanged value rolls the bump back.
	if _, err := tx.ExecContext(ctx, `UPDATE change_counter SET settings = settings + 1 WHERE id = 1`); err != nil {
		return "", false, err
	}
	err = tx.QueryRowContext(ctx, `SELECT value FROM settings WHERE name = $1`, name).Scan(&old)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return "", false, err
	}
	if err == nil && old == value {
		return old, false, nil
	}
	t := now()
	if _, err := tx.ExecContext(ctx, `INSERT INTO settings (name, value, updated_at, updated_by) VALUES ($1, $2, $3, $4)
		ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at, updated_by = excluded.updated_by`,
		name, value, t, actor); err != nil {
		return "", false, err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO setting_events (name, old_value, new_value, actor, at) VALUES ($1, $2, $3, $4, $5)`,
		name, old, value, actor, t); err != nil {
		return "", false, err
	}
	return old, true, tx.Commit()
}

// SettingsVersion is a counter that every settings change increments.
func (s *DB) SettingsVersion(ctx context.Context) (int64, error) {
	var v int64
	err := s.db.QueryRowContext(ctx, `SELECT settings FROM change_counter WHERE id = 1`).Scan(&v)
	return v, err
}

// SettingEvent is one recorded change.
type SettingEvent struct {
	Name     string `json:"name"`
	OldValue string `json:"old_value"`
	NewValue string `json:"new_value"`
	Actor    string `json:"actor"`
	At       string `json:"at"`
}

// SettingEvents returns the latest changes, newest first; name "" means all settings.
func (s *DB) SettingEvents(ctx context.Context, name string, limit int) ([]SettingEvent, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT name, old_value, new_value, actor, at FROM setting_events
		WHERE $1 = '' OR name = $1 ORDER BY id DESC LIMIT $2`, name, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []SettingEvent
	for rows.Next() {
		var e SettingEvent
		if err := rows.Scan(&e.Name, &e.OldValue, &e.NewValue, &e.Actor, &e.At); err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}
