package manager

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"tlsfleet/internal/fleetapi"
	"tlsfleet/internal/testtarget"
)

// BenchmarkHandshakes measures full TLS 1.3 handshakes per second on the console port, each followed by
// one request, with and without handshake telemetry (client and server share the machine's cores).
func BenchmarkHandshakes(b *testing.B) {
	for _, tc := range []struct {
		name string
		off  bool
	}{{"telemetry", false}, {"no-telemetry", true}} {
		b.Run(tc.name, func(b *testing.B) {
			m, err := Start(b.Context(), Options{Dir: filepath.Join(b.TempDir(), "m"), ConsolePort: testtarget.FreePort(b), HeartbeatPort: testtarget.FreePort(b),
				Listen: "127.0.0.1", NoTelemetry: tc.off, Logger: slog.New(slog.DiscardHandler), FlushInterval: time.Second})
			if err != nil {
				b.Fatal(err)
			}
			defer m.Close()
			addr := m.ConsoleAddr()
			cfg := &tls.Config{InsecureSkipVerify: true, ClientSessionCache: nil}
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					c, err := tls.Dial("tcp", addr, cfg)
					if err != nil {
						b.Error(err)
						return
					}
					io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: x\r\nUser-Agent: bench\r\nConnection: close\r\n\r\n")
					resp, err := http.ReadResponse(bufio.NewReader(c), nil)
					if err == nil {
						io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
					}
					c.Close()
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "handshakes/s")
		})
	}
}

// BenchmarkHeartbeats measures mutual-TLS heartbeats per second on kept-alive connections (what agents
// do between full handshakes), each answered from memory and written in the next one-second batch.
func BenchmarkHeartbeats(b *testing.B) {
	m, err := Start(b.Context(), Options{Dir: filepath.Join(b.TempDir(), "m"), ConsolePort: testtarget.FreePort(b), HeartbeatPort: testtarget.FreePort(b),
		Listen: "127.0.0.1", Logger: slog.New(slog.DiscardHandler), FlushInterval: time.Second})
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	agents := make(chan *testAgent, 64)
	for i := 0; i < 8; i++ {
		agents <- activateTestAgent(b, m, "bench")
	}
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		a := <-agents
		defer func() { agents <- a }()
		for pb.Next() {
			a.seq++
			body := []byte(`{"seq":` + strconv.FormatUint(a.seq, 10) + `,"agent_version":"1.0.0","platform":"linux/amd64","policy_fingerprint":"` + a.fp + `"}`)
			resp, err := a.http.Post("https://"+m.AgentAddr()+fleetapi.PathHeartbeat, "application/json", bytes.NewReader(body))
			if err != nil {
				b.Error(err)
				return
			}
			var hr fleetapi.HeartbeatResponse
			json.NewDecoder(resp.Body).Decode(&hr)
			resp.Body.Close()
			if hr.Policy != nil {
				a.fp = hr.Policy.Fingerprint()
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "heartbeats/s")
}
