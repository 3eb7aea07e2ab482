package store

import (
	"database/sql"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/pressly/goose/v3"

	"tlsfleet/internal/install"
	"tlsfleet/internal/store/storetest"
)

func activateWithCert(t *testing.T, db *DB, guid, serial string) {
	t.Helper()
	ctx := t.Context()
	tok := "tok-" + guid
	if err := db.InsertActivationToken(ctx, tok, ActivationToken{ExpiresAt: "2999-01-01T00:00:00Z", UsesLeft: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Activate(ctx, tok, time.Now(), Computer{}, func(ActivationToken) (Computer, error) {
		return Computer{GUID: guid, Hostname: guid, CertSerial: serial, CertExpires: "2999-01-01T00:00:00Z"}, nil
	}); err != nil {
		t.Fatal(err)
	}
}

// revokedNow is the CRL as the store gives it: serial → reason, and the CRL number.
func revokedNow(t *testing.T, db *DB) (map[string]int, int64) {
	t.Helper()
	rs, n, err := db.RevokedCerts(t.Context(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, r := range rs {
		out[r.Serial] = r.Reason
	}
	return out, n
}

// Activation records the serial; deactivation holds it, reactivation lifts the hold; a renewal
// supersedes the old serial only once confirmed, and an unconfirmed renewal's serial when the computer
// renews again with its old one; every change bumps the CRL number; expired certificates drop out.
func TestCertLifecycle(t *testing.T) {
	eachDB(t, func(t *testing.T, db *DB, b storetest.Backend) {
		ctx := t.Context()
		activateWithCert(t, db, "g1", "a1")
		activateWithCert(t, db, "g2", "b1")
		want := func(step string, crl map[string]int, number int64) {
			t.Helper()
			got, n := revokedNow(t, db)
			if diff := cmp.Diff(crl, got); diff != "" || n != number {
				t.Errorf("%s: CRL number %d (want %d), entries (-want +got):\n%s", step, n, number, diff)
			}
		}
		want("activated", map[string]int{}, 0)
		db.SetDeactivated(ctx, "g1", true)
		want("deactivated", map[string]int{"a1": reasonCertificateHold}, 1)
		db.SetDeactivated(ctx, "g1", true) // again: nothing new to hold
		want("deactivated twice", map[string]int{"a1": reasonCertificateHold}, 1)
		db.SetDeactivated(ctx, "g1", false)
		want("reactivated", map[string]int{}, 2)

		issue := func(sn string) func() (string, string, error) {
			return func() (string, string, error) { return sn, "2999-01-01T00:00:00Z", nil }
		}
		if err := db.Renew(ctx, "g1", "a1", issue("a2")); err != nil {
			t.Fatal(err)
		}
		want("renewed, unconfirmed", map[string]int{}, 2)
		// The agent never stored a2 and renews again with a1: a2 is superseded.
		if err := db.Renew(ctx, "g1", "a1", issue("a3")); err != nil {
			t.Fatal(err)
		}
		want("renewed again with the old certificate", map[string]int{"a2": reasonSuperseded}, 3)
		for _, sn := range []string{"a2", "b1", "zz"} {
			if err := db.Renew(ctx, "g1", sn, issue("x-"+sn)); !errors.Is(err, ErrCertNotCurrent) {
				t.Errorf("renewal with %s: %v, want ErrCertNotCurrent", sn, err)
			}
		}
		if changed, err := db.ConfirmCert(ctx, "g1", "a1"); err != nil || changed {
			t.Errorf("a heartbeat with the old certificate confirmed: %v %v", changed, err)
		}
		if changed, err := db.ConfirmCert(ctx, "g1", "a3"); err != nil || !changed {
			t.Errorf("confirm: %v %v", changed, err)
		}
		want("confirmed", map[string]int{"a1": reasonSuperseded, "a2": reasonSuperseded}, 4)
		if changed, _ := db.ConfirmCert(ctx, "g1", "a3"); changed {
			t.Error("a second confirmation changed something")
		}
		c, _ := db.FindComputer(ctx, "g1")
		if c.CertSerial != "a3" || c.CertPrevSerial != "" {
			t.Errorf("computer cert %q prev %q", c.CertSerial, c.CertPrevSerial)
		}
		// Deactivation holds the current certificate; the superseded stay superseded.
		db.SetDeactivated(ctx, "g1", true)
		want("deactivated after renewal", map[string]int{"a1": reasonSuperseded, "a2": reasonSuperseded, "a3": reasonCertificateHold}, 5)
		if err := db.Renew(ctx, "g1", "a3", issue("a4")); !errors.Is(err, ErrCertNotCurrent) {
			t.Errorf("a deactivated computer renewed: %v", err)
		}
		// Expired certificates drop out of the list.
		rs, _, _ := db.RevokedCerts(ctx, time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC))
		if len(rs) != 0 {
			t.Errorf("expired certificates listed: %+v", rs)
		}
		if cs, _ := db.CertSerials(ctx, "g1"); len(cs) != 3 {
			t.Errorf("g1 has %d recorded certificates, want 3: %+v", len(cs), cs)
		}
	})
}

// Migration 00006 records the certificates of computers activated before it and puts those of
// deactivated computers on hold.
func TestCertMigrationBackfills(t *testing.T) {
	storetest.EachDB(t, func(t *testing.T, b storetest.Backend) {
		ctx := t.Context()
		raw, d := rawDB(t, b)
		sub, _ := d.migrations()
		p, err := goose.NewProvider(d.goose, raw, sub)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.UpTo(ctx, 4); err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			guid, serial string
			off          int
		}{{"g-on", "a1", 0}, {"g-off", "b1", 1}, {"g-nocert", "", 0}} {
			if _, err := raw.ExecContext(ctx, `INSERT INTO computers (guid, hostname, platform, agent_version, tls_versions, cert_serial, cert_expires,
			policy_id, relay_group, activated_at, deactivated) VALUES ($1, $1, '', '', '', $2, '2999-01-01T00:00:00Z', '', 'Default Relay Group', '2026-01-01T00:00:00Z', $3)`,
				c.guid, c.serial, c.off); err != nil {
				t.Fatal(err)
			}
		}
		raw.Close()
		db, err := OpenDatabase(ctx, b.Database)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		backfilled(t, db)
	})
}

// backfilled checks what migration 00006 made of TestCertMigrationBackfills' computers.
func backfilled(t *testing.T, db *DB) {
	ctx := t.Context()
	got, number := revokedNow(t, db)
	if diff := cmp.Diff(map[string]int{"b1": reasonCertificateHold}, got); diff != "" || number != 1 {
		t.Errorf("after the migration: CRL number %d (want 1), entries (-want +got):\n%s", number, diff)
	}
	if cs, _ := db.CertSerials(ctx, "g-on"); len(cs) != 1 || cs[0].Serial != "a1" || cs[0].Expires != "2999-01-01T00:00:00Z" {
		t.Errorf("g-on's certificate: %+v", cs)
	}
	if err := db.SetDeactivated(ctx, "g-off", false); err != nil {
		t.Fatal(err)
	}
	if got, _ := revokedNow(t, db); len(got) != 0 {
		t.Errorf("reactivating a computer held by the migration left %v", got)
	}
}

// rawDB opens b's database without the store (no migrations), and gives its dialect.
func rawDB(t *testing.T, b storetest.Backend) (*sql.DB, *dialect) {
	t.Helper()
	driver, dsn, d := "sqlite", "file:"+b.Database.Path, sqliteDialect
	if b.Name == install.DatabasePostgres {
		driver, dsn, d = "pgx", connString(b.Database), postgresDialect
	}
	raw, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	return raw, d
}
