package scan

import (
	"context"
	"crypto/tls"
	"slices"
	"strings"
	"testing"
	"time"

	"tlsfleet/internal/testtarget"
)

// scanOne scans one target address with the defaults (and its STARTTLS protocol).
func scanOne(t *testing.T, addr, starttls string) TargetResult {
	t.Helper()
	s := New()
	s.StartTLS = starttls
	s.Timeout = 5 * time.Second
	res := s.Scan(t.Context(), []string{addr})
	return res.Targets[0]
}

func versionsOf(tr TargetResult) []string {
	var out []string
	for _, p := range tr.Protocols {
		out = append(out, p.Version)
	}
	return out
}

func suitesOf(p ProtocolResult) []string {
	var out []string
	for _, c := range p.Ciphers {
		out = append(out, c.Name)
	}
	return out
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

// TestScanMatchesTruthAndNmap scans every kind of real target and checks that the versions and suites
// equal the server's configured truth and that versions, suites, order, kex, grades, warnings,
// compressors and least strength equal what real nmap says about the same server.
func TestScanMatchesTruthAndNmap(t *testing.T) {
	testtarget.RequireTool(t, "nmap")
	type start func(testing.TB) *testtarget.Target
	targets := []struct {
		name  string
		start start
	}{
		{"modern", testtarget.Modern},
		{"legacy", testtarget.Legacy},
		{"ecdsa", testtarget.ECDSA},
		{"dhe1024", testtarget.DHE1024},
		{"tls13only", testtarget.TLS13Only},
		{"go-rc4-3des", testtarget.GoLegacy},
		{"fake-sslv3", testtarget.FakeSSLv3},
		{"postgres", func(t testing.TB) *testtarget.Target { return testtarget.Postgres(t, testtarget.PostgresConfig{}) }},
	}
	for _, tc := range targets {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tg := tc.start(t)
			ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
			defer cancel()
			// Each scanner goes through its own counting relay, so connections can be compared.
			ours, theirs := testtarget.Proxy(t, tg), testtarget.Proxy(t, tg)
			got := scanOne(t, ours.Addr, tg.StartTLS)
			if got.Error != "" {
				t.Fatalf("scan error: %s", got.Error)
			}
			nm, err := theirs.Nmap(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if n := ours.Connections(); n != int64(got.Probes) || n > theirs.Connections() {
				t.Errorf("connections: scan reports %d, relay counted %d, nmap made %d (the scan must not make more)", got.Probes, n, theirs.Connections())
			}
			if v := versionsOf(got); !slices.Equal(v, tg.Versions) || !slices.Equal(v, nm.Versions()) {
				t.Errorf("versions: scan %v, truth %v, nmap %v", v, tg.Versions, nm.Versions())
			}
			for _, p := range got.Protocols {
				want := tg.Suites[p.Version]
				if s := suitesOf(p); !slices.Equal(sorted(s), sorted(want)) {
					t.Errorf("%s suites differ from the truth:\n scan  %v\n truth %v", p.Version, sorted(s), sorted(want))
				}
				np := nm.Protocols[p.Version]
				if np == nil {
					continue
				}
				var nmNames []string
				for _, c := range np.Ciphers {
					nmNames = append(nmNames, testtarget.NmapToIANA(c.Name))
				}
				if s := suitesOf(p); !slices.Equal(s, nmNames) {
					t.Errorf("%s suites (in order) differ from nmap's:\n scan %v\n nmap %v", p.Version, s, nmNames)
				}
				if p.CipherPreference != np.CipherPreference {
					t.Errorf("%s cipher preference: scan %q, nmap %q", p.Version, p.CipherPreference, np.CipherPreference)
				}
				for _, c := range np.Ciphers {
					name := testtarget.NmapToIANA(c.Name)
					i := slices.IndexFunc(p.Ciphers, func(x Cipher) bool { return x.Name == name })
					if i < 0 {
						continue
					}
					if g := p.Ciphers[i]; g.Kex != c.KexInfo || g.Grade != c.Strength {
						t.Errorf("%s %s: scan (%s) - %s, nmap (%s) - %s", p.Version, name, g.Kex, g.Grade, c.KexInfo, c.Strength)
					}
				}
				if !slices.Equal(p.Warnings, sorted(np.Warnings)) {
					t.Errorf("%s warnings:\n scan %q\n nmap %q", p.Version, p.Warnings, np.Warnings)
				}
				if !slices.Equal(p.Compressors, np.Compressors) {
					t.Errorf("%s compressors: scan %v, nmap %v", p.Version, p.Compressors, np.Compressors)
				}
			}
			if got.LeastStrength != nm.LeastStrength {
				t.Errorf("least strength: scan %s, nmap %s", got.LeastStrength, nm.LeastStrength)
			}
			if tg.ServerOrder {
				for _, p := range got.Protocols {
					if p.CipherPreference != "server" && len(p.Ciphers) > 1 {
						t.Errorf("%s: server order expected, got %q", p.Version, p.CipherPreference)
					}
				}
			}
			t.Logf("%s scan: %d connections, %d ms; nmap: %d connections, %s", tc.name, got.Probes, got.ElapsedMS, theirs.Connections(), nm.Elapsed.Round(time.Millisecond))
			if t.Failed() {
				var b strings.Builder
				(&Result{Targets: []TargetResult{got}}).WriteText(&b)
				t.Logf("scan output:\n%s\nnmap output:\n%s", b.String(), nm.Output)
			}
		})
	}
}

// Groups are enumerated per version, post-quantum hybrids included (nmap cannot see them).
func TestGroups(t *testing.T) {
	cert := testtarget.NewCert(t, testtarget.ECDSAP256).TLS
	pq := testtarget.GoServer(t, "go-pq", &tls.Config{Certificates: []tls.Certificate{cert},
		CurvePreferences: []tls.CurveID{tls.X25519MLKEM768, tls.SecP256r1MLKEM768, tls.X25519, tls.CurveP384}})
	tests := []struct {
		name string
		addr string
		want map[string]string // group -> versions
	}{
		{"go with hybrids", pq.Addr, map[string]string{"X25519MLKEM768": "TLSv1.3", "SecP256r1MLKEM768": "TLSv1.3", "x25519": "TLSv1.2,TLSv1.3", "secp384r1": "TLSv1.2,TLSv1.3"}},
		{"openssl modern", testtarget.Modern(t).Addr, map[string]string{"x25519": "TLSv1.2,TLSv1.3", "secp256r1": "TLSv1.2,TLSv1.3", "x448": "TLSv1.2,TLSv1.3",
			"secp521r1": "TLSv1.2,TLSv1.3", "secp384r1": "TLSv1.2,TLSv1.3", "ffdhe2048": "TLSv1.3", "ffdhe3072": "TLSv1.3", "ffdhe4096": "TLSv1.3", "ffdhe6144": "TLSv1.3", "ffdhe8192": "TLSv1.3"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := scanOne(t, tt.addr, "")
			got := map[string]string{}
			for _, g := range tr.Groups {
				got[g.Name] = strings.Join(g.Versions, ",")
				if strings.Contains(g.Name, "MLKEM") != g.PostQuantum {
					t.Errorf("%s: post_quantum = %v", g.Name, g.PostQuantum)
				}
			}
			if len(got) != len(tt.want) {
				t.Errorf("groups = %v\nwant %v", got, tt.want)
			}
			for g, v := range tt.want {
				if got[g] != v {
					t.Errorf("group %s: versions %q, want %q", g, got[g], v)
				}
			}
		})
	}
}

// Each disabled version costs one probe: an SSLv3-only server with three suites takes 3 picks, 1 closing
// probe, 2 preference probes (nmap's two-suite comparison) and 4 version probes.
func TestProbeBudget(t *testing.T) {
	tg := testtarget.Proxy(t, testtarget.FakeSSLv3(t))
	tr := scanOne(t, tg.Addr, "")
	if tr.Probes != 10 || tg.Connections() != 10 {
		t.Errorf("scan reports %d probes, the relay counted %d connections; want 10", tr.Probes, tg.Connections())
	}
}
