package manager

import (
	"context"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"tlsfleet/internal/install"
	"tlsfleet/internal/scan"
	"tlsfleet/internal/testtarget"
)

// The page verifies enforcement with nmap --script ssl-enum-ciphers: run it against the Manager's ports
// before and after the page's undo, and check that tlsfleet scan says the same.
func TestNmapSeesEnforcement(t *testing.T) {
	testtarget.RequireTool(t, "nmap")
	m := startManager(t, nil)
	check := func(want []string) {
		t.Helper()
		for _, addr := range []string{m.ConsoleAddr(), m.AgentAddr()} {
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			nm, err := testtarget.RunNmap(ctx, addr)
			cancel()
			if err != nil {
				t.Fatal(err)
			}
			if got := nm.Versions(); !slices.Equal(got, want) {
				t.Errorf("%s: nmap sees %v, want %v\n%s", addr, got, want, nm.Output)
			}
			ours := scan.New().Scan(t.Context(), []string{addr}).Targets[0]
			for _, p := range ours.Protocols {
				np := nm.Protocols[p.Version]
				if np == nil {
					t.Errorf("%s: tlsfleet scan finds %s, nmap does not", addr, p.Version)
					continue
				}
				var a, b []string
				for _, c := range p.Ciphers {
					a = append(a, c.Name+" "+c.Grade)
				}
				for _, c := range np.Ciphers {
					b = append(b, testtarget.NmapToIANA(c.Name)+" "+c.Strength)
				}
				if !slices.Equal(a, b) || p.CipherPreference != np.CipherPreference {
					t.Errorf("%s %s: tlsfleet scan %v (%s), nmap %v (%s)", addr, p.Version, a, p.CipherPreference, b, np.CipherPreference)
				}
			}
			if len(ours.Protocols) != len(nm.Versions()) {
				t.Errorf("%s: tlsfleet scan finds %d versions, nmap %d", addr, len(ours.Protocols), len(nm.Versions()))
			}
		}
	}
	check([]string{"TLSv1.2", "TLSv1.3"})
	js := m.folder.Path(install.JavaSecurityFile)
	data, _ := os.ReadFile(js)
	os.WriteFile(js, []byte(strings.Replace(string(data), "TLSv1, TLSv1.1, ", "", 1)), 0o640)
	eventually(t, 2*time.Second, "the undo applied", func() bool { return handshake(t, m.AgentAddr(), "tls1") != "" })
	check([]string{"TLSv1.0", "TLSv1.1", "TLSv1.2", "TLSv1.3"})
}
