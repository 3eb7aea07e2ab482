package install

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// The database keys of configuration.properties: postgres with its defaults (verify-full away from
// loopback, require on it), the password from a file or the environment, never from the file itself;
// every bad value an error naming the file, the line and the fix.
func TestDatabaseConfig(t *testing.T) {
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "db-password")
	os.WriteFile(pwFile, []byte("s3cret\n"), 0o600)
	openPW := filepath.Join(dir, "open-password")
	os.WriteFile(openPW, []byte("s3cret\n"), 0o644)
	ca := filepath.Join(dir, "db-ca.pem")
	os.WriteFile(ca, []byte("PEM"), 0o644)
	pg := func(d Database) Database {
		base := Database{Type: DatabasePostgres, Host: DefaultDatabaseHost, Port: DefaultDatabasePort, Name: DefaultDatabaseName,
			User: DefaultDatabaseUser, SSLMode: SSLRequire}
		if d.Host != "" {
			base.Host, base.SSLMode = d.Host, d.SSLMode
		}
		if d.SSLMode != "" {
			base.SSLMode = d.SSLMode
		}
		for _, f := range []struct{ dst, src *string }{{&base.Name, &d.Name}, {&base.User, &d.User}, {&base.Password, &d.Password}, {&base.SSLRootCert, &d.SSLRootCert}} {
			if *f.src != "" {
				*f.dst = *f.src
			}
		}
		if d.Port != 0 {
			base.Port = d.Port
		}
		return base
	}
	tests := []struct {
		name    string
		lines   string
		env     string
		want    Database
		wantErr string // with "configuration.properties:LINE:"
	}{
		{name: "sqlite default", lines: "", want: Database{Type: DatabaseSQLite, Path: filepath.Join(dir, DefaultDBFile)}},
		{name: "postgres defaults on loopback", lines: "database.type=postgres\n", want: pg(Database{})},
		{name: "postgres away from loopback", lines: "database.type=postgres\ndatabase.host=db.example.com\n",
			want: pg(Database{Host: "db.example.com", SSLMode: SSLVerifyFull})},
		{name: "every key", lines: "database.type=postgres\ndatabase.host=10.0.0.9\ndatabase.port=6432\ndatabase.name=fleet\ndatabase.user=dsm\n" +
			"database.passwordFile=db-password\ndatabase.sslmode=verify-ca\ndatabase.sslrootcert=db-ca.pem\n",
			want: pg(Database{Host: "10.0.0.9", Port: 6432, Name: "fleet", User: "dsm", Password: "s3cret", SSLMode: SSLVerifyCA, SSLRootCert: ca})},
		{name: "password from the environment", lines: "database.type=postgres\n", env: "envpw", want: pg(Database{Password: "envpw"})},
		{name: "password in the file", lines: "database.type=postgres\ndatabase.password=hunter2\n", wantErr: "may not be written in configuration.properties"},
		{name: "password file readable by others", lines: "database.type=postgres\ndatabase.passwordFile=open-password\n", wantErr: "chmod 600"},
		{name: "password file missing", lines: "database.type=postgres\ndatabase.passwordFile=nope\n", wantErr: "write the password into that file"},
		{name: "unknown type", lines: "database.type=oracle\n", wantErr: "use sqlite (a file in the install folder) or postgres"},
		{name: "bad port", lines: "database.type=postgres\ndatabase.port=99999\n", wantErr: "is not a port number"},
		{name: "bad host", lines: "database.type=postgres\ndatabase.host=db host\n", wantErr: "database.host=db host is not valid"},
		{name: "prefer refused", lines: "database.type=postgres\ndatabase.sslmode=prefer\n", wantErr: "use verify-full, verify-ca, require or disable"},
		{name: "root cert missing", lines: "database.type=postgres\ndatabase.sslrootcert=none.pem\n", wantErr: "name the PEM file of the CA"},
		{name: "root cert with disable", lines: "database.type=postgres\ndatabase.sslmode=disable\ndatabase.sslrootcert=db-ca.pem\n", wantErr: "set database.sslmode=verify-full"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(EnvDatabasePassword, tt.env)
			cfg := filepath.Join(dir, ConfigFile)
			if err := os.WriteFile(cfg, []byte("# test\n"+tt.lines), 0o640); err != nil {
				t.Fatal(err)
			}
			folder, err := Open(dir)
			if !wantOpenErr(t, err, tt.wantErr) {
				if strings.Contains(err.Error(), "hunter2") {
					t.Errorf("the error repeats the password: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, folder.Database); diff != "" {
				t.Errorf("Database (-want +got):\n%s", diff)
			}
			if strings.Contains(folder.Database.String(), "s3cret") {
				t.Errorf("String() shows the password: %s", folder.Database)
			}
		})
	}
}
