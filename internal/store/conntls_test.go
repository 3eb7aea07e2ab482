package store

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"tlsfleet/internal/install"
	"tlsfleet/internal/store/storetest"
	"tlsfleet/internal/testtarget"
	"tlsfleet/internal/tlspolicy"
)

// The store records its own connection's TLS: SQLite is a local file; PostgreSQL with ssl=on reports
// the version and suite pg_stat_ssl gives for the store's backend (TLS 1.3 by default, 1.2 when the
// server allows no more), and how the certificate was verified (from the sslmode, and only when the
// handshake did verify: a wrong root refuses the connection); with ssl=off, no TLS, and sslmode=require
// refuses to connect rather than fall back.
func TestConnTLS(t *testing.T) {
	shared := storetest.Postgres(t).Database
	tg12 := testtarget.Postgres(t, testtarget.PostgresConfig{Name: "pg-tls12", MaxProtocol: testtarget.TLSv12})
	off := testtarget.Postgres(t, testtarget.PostgresConfig{Name: "pg-ssl-off", SSLOff: true})
	pgTarget := func(tg *testtarget.Target, mode, root string) install.Database {
		d := storetest.PostgresDatabase(tg, "postgres")
		d.SSLMode, d.SSLRootCert = mode, root
		return d
	}
	with := func(d install.Database, mode, root string) install.Database {
		d.SSLMode, d.SSLRootCert = mode, root
		return d
	}
	otherRoot := testtarget.NewCert(t, testtarget.ECDSAP256).CertFile
	tests := []struct {
		name    string
		db      install.Database
		want    ConnTLS
		wantStr string
		wantErr string
	}{
		{name: "sqlite", db: storetest.SQLite(t).Database, want: ConnTLS{Verified: VerifiedNone}, wantStr: "local file, no network"},
		{name: "TLS 1.3, not verified", db: shared,
			want:    ConnTLS{Network: true, TLS: true, Version: "TLSv1.3", Cipher: "TLS_AES_256_GCM_SHA384", Verified: VerifiedNone, SSLMode: "require"},
			wantStr: "TLSv1.3 TLS_AES_256_GCM_SHA384, server certificate not verified (sslmode=require)"},
		{name: "TLS 1.2", db: pgTarget(tg12, install.SSLRequire, ""),
			want: ConnTLS{Network: true, TLS: true, Version: "TLSv1.2", Cipher: "ECDHE-RSA-AES256-GCM-SHA384", Verified: VerifiedNone, SSLMode: "require"}},
		{name: "verify-full", db: with(shared, install.SSLVerifyFull, tg12.Cert.CertFile),
			want:    ConnTLS{Network: true, TLS: true, Version: "TLSv1.3", Cipher: "TLS_AES_256_GCM_SHA384", Verified: VerifiedFull, SSLMode: "verify-full"},
			wantStr: "server certificate and host name verified"},
		{name: "verify-ca", db: with(shared, install.SSLVerifyCA, tg12.Cert.CertFile),
			want: ConnTLS{Network: true, TLS: true, Version: "TLSv1.3", Cipher: "TLS_AES_256_GCM_SHA384", Verified: VerifiedCA, SSLMode: "verify-ca"}},
		{name: "require with a root verifies the chain", db: with(shared, install.SSLRequire, tg12.Cert.CertFile),
			want: ConnTLS{Network: true, TLS: true, Version: "TLSv1.3", Cipher: "TLS_AES_256_GCM_SHA384", Verified: VerifiedCA, SSLMode: "require"}},
		{name: "verify-full, wrong root", db: with(shared, install.SSLVerifyFull, otherRoot), wantErr: "certificate"},
		{name: "ssl=off", db: pgTarget(off, install.SSLDisable, ""),
			want: ConnTLS{Network: true, Verified: VerifiedNone, SSLMode: "disable"}, wantStr: "no TLS (sslmode=disable)"},
		{name: "ssl=off refused under require", db: pgTarget(off, install.SSLRequire, ""), wantErr: "server refused TLS connection"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db, err := OpenDatabase(t.Context(), tt.db)
			if tt.wantErr != "" {
				if err == nil {
					db.Close()
					t.Fatalf("opened; want an error with %q", tt.wantErr)
				}
				if !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if diff := cmp.Diff(tt.want, db.ConnTLS()); diff != "" {
				t.Errorf("ConnTLS (-want +got):\n%s", diff)
			}
			if !strings.Contains(db.ConnTLS().String(), tt.wantStr) {
				t.Errorf("String() = %q, want %q in it", db.ConnTLS(), tt.wantStr)
			}
		})
	}
}

// A database that cannot be reached is an error naming it and the keys to check, never the password.
func TestPostgresUnreachable(t *testing.T) {
	d := install.Database{Type: install.DatabasePostgres, Host: "127.0.0.1", Port: testtarget.FreePort(t), Name: "fleet", User: "dsm",
		Password: "pw-not-in-errors", SSLMode: install.SSLRequire}
	_, err := OpenDatabase(t.Context(), d)
	if err == nil || !strings.Contains(err.Error(), "postgres://dsm@127.0.0.1:") || !strings.Contains(err.Error(), "check database.host, database.port") {
		t.Fatalf("error %v, want the database and the keys to check", err)
	}
	if strings.Contains(err.Error(), d.Password) {
		t.Errorf("the error shows the password: %v", err)
	}
}

// A database connection blocks a TLS minimum when it travels the network without TLS or with an older
// version; a local file never does.
func TestConnTLSBlocker(t *testing.T) {
	tests := []struct {
		name string
		c    ConnTLS
		min  tlspolicy.Version
		want string
	}{
		{"sqlite", ConnTLS{}, tlspolicy.TLSv1_3, ""},
		{"no TLS", ConnTLS{Network: true, SSLMode: "disable"}, tlspolicy.TLSv1_2, "has no TLS (sslmode=disable)"},
		{"TLS 1.2 under a 1.3 minimum", ConnTLS{Network: true, TLS: true, Version: "TLSv1.2"}, tlspolicy.TLSv1_3, "negotiated TLSv1.2, below the enforced minimum TLSv1.3"},
		{"TLS 1.3 under a 1.2 minimum", ConnTLS{Network: true, TLS: true, Version: "TLSv1.3"}, tlspolicy.TLSv1_2, ""},
		{"a version it cannot read", ConnTLS{Network: true, TLS: true, Version: "TLSv9"}, tlspolicy.TLSv1_2, "negotiated TLSv9"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.c.Blocker(tt.min)
			if tt.want == "" && got != "" || tt.want != "" && !strings.Contains(got, tt.want) {
				t.Errorf("Blocker(%s) = %q, want %q", tt.min, got, tt.want)
			}
		})
	}
}
