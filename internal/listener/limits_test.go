package listener

import (
	"flag"
	"io"
	"strings"
	"testing"

	"tlsfleet/internal/tlspolicy"
)

func TestDefaultLimits(t *testing.T) {
	tests := []struct {
		role tlspolicy.Role
		want Limits
	}{
		{tlspolicy.RoleConsole, Limits{4096, 512}},
		{tlspolicy.RoleAgentChannel, Limits{120_000, 8_192}},
		{tlspolicy.RoleAgent, Limits{256, 64}},
		{tlspolicy.RoleRelay, Limits{16_384, 4_096}},
		{"", fallback},
	}
	for _, tt := range tests {
		got := DefaultLimits(tt.role)
		if got != tt.want {
			t.Errorf("%q: %+v, want %+v", tt.role, got, tt.want)
		}
		if err := got.Validate(); err != nil {
			t.Errorf("%q: the defaults are invalid: %v", tt.role, err)
		}
	}
}

func TestApply(t *testing.T) {
	d := Limits{Total: 4096, PerAddress: 512}
	flagT := func(n int) Override { return Override{Value: n, Name: "--max-conns"} }
	flagP := func(n int) Override { return Override{Value: n, Name: "--max-conns-per-address"} }
	tests := []struct {
		name        string
		total, per  Override
		want        Limits
		err         []string // in the error; nil: no error
		keepsOthers bool
	}{
		{name: "nothing set", want: d},
		{name: "both set", total: flagT(200_000), per: flagP(10_000), want: Limits{200_000, 10_000}},
		{name: "total only: an eighth", total: flagT(32), want: Limits{32, 4}},
		{name: "total only: at least 4", total: flagT(16), want: Limits{16, 4}},
		{name: "total only: not above the total", total: flagT(2), want: Limits{2, 2}},
		{name: "total only: at most the default per address", total: flagT(1_000_000), want: Limits{1_000_000, 512}},
		{name: "per address only", per: flagP(100), want: Limits{4096, 100}},
		{name: "per address equal to the total", total: flagT(10), per: flagP(10), want: Limits{10, 10}},
		{name: "per address above the total", total: flagT(10), per: flagP(11),
			err: []string{"--max-conns-per-address 11 exceeds the 10 connections port 4119 may hold in all (--max-conns 10)", "at most 10"}},
		{name: "per address above the default total", per: Override{Value: 5000, Name: "maxConnectionsPerAddress", At: "configuration.properties:7"},
			err: []string{"configuration.properties:7: maxConnectionsPerAddress=5000 exceeds the 4096", "(its default)"}},
		{name: "key above a key", total: Override{Value: 100, Name: "maxConnections", At: "c.p:3"}, per: Override{Value: 101, Name: "maxConnectionsPerAddress", At: "c.p:4"},
			err: []string{"c.p:4: maxConnectionsPerAddress=101 exceeds the 100 connections port 4119 may hold in all (c.p:3: maxConnections=100)"}},
		{name: "zero is unset", total: flagT(0), per: flagP(0), want: d},
		{name: "negative", total: flagT(-1), err: []string{"--max-conns -1 is out of range", "1 to 1000000"}},
		{name: "too large", per: flagP(MaxLimit + 1), err: []string{"--max-conns-per-address 1000001 is out of range"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := d.Apply("port 4119", tt.total, tt.per)
			switch {
			case tt.err == nil && err != nil:
				t.Fatalf("error %v", err)
			case tt.err != nil && err == nil:
				t.Fatalf("no error, limits %+v", got)
			case err != nil:
				for _, w := range tt.err {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q lacks %q", err, w)
					}
				}
				if got != d {
					t.Errorf("a refused override changed the limits to %+v", got)
				}
			case got != tt.want:
				t.Errorf("%+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestParseLimitAndFlag(t *testing.T) {
	tests := []struct {
		in   string
		want int
		err  string
	}{
		{in: "1", want: 1},
		{in: " 120000 ", want: 120_000},
		{in: "1000000", want: MaxLimit},
		{in: "0", err: "out of range: use a whole number from 1 to 1000000"},
		{in: "-5", err: "out of range"},
		{in: "1000001", err: "out of range"},
		{in: "lots", err: "not a whole number: use one from 1 to 1000000"},
		{in: "1e5", err: "not a whole number"},
		{in: "", err: "not a whole number"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			n, err := ParseLimit("maxConnections", tt.in)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) || !strings.HasPrefix(err.Error(), "maxConnections="+tt.in+": ") {
					t.Errorf("ParseLimit: %d, %v; want an error naming the key and saying %q", n, err, tt.err)
				}
			} else if err != nil || n != tt.want {
				t.Errorf("ParseLimit: %d, %v; want %d", n, err, tt.want)
			}
			fs := flag.NewFlagSet("test", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			v := 7
			fs.Var(LimitFlag(&v), "max-conns", "")
			err = fs.Parse([]string{"--max-conns", tt.in})
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), "-max-conns") || !strings.Contains(err.Error(), tt.err) || v != 7 {
					t.Errorf("flag: %v, value %d; want an error naming the flag, the value unchanged", err, v)
				}
			} else if err != nil || v != tt.want {
				t.Errorf("flag: %d, %v; want %d", v, err, tt.want)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	for _, tt := range []struct {
		l   Limits
		err string
	}{
		{Limits{10, 10}, ""},
		{Limits{0, 1}, "Limits.Total 0 is out of range"},
		{Limits{10, 0}, "Limits.PerAddress 0 is out of range"},
		{Limits{10, 11}, "Limits.PerAddress 11 exceeds Limits.Total 10"},
	} {
		err := tt.l.Validate()
		if tt.err == "" && err != nil || tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)) {
			t.Errorf("%+v: %v, want %q", tt.l, err, tt.err)
		}
	}
}
