package scan

import (
	"bytes"
	"testing"

	"tlsfleet/internal/tlswire"
)

// FuzzReadFlight feeds arbitrary bytes as a server's answer to a probe: the scanner must classify it
// (an answer, an alert or a failure with a reason) and never panic.
func FuzzReadFlight(f *testing.F) {
	f.Add([]byte{21, 3, 3, 0, 2, 2, 40})
	f.Add([]byte("HTTP/1.1 400 Bad Request\r\n\r\n"))
	ch := &tlswire.ClientHello{Version: 0x0303, CipherSuites: []uint16{0xc02f}}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, details := range []bool{false, true} {
			r := readFlight(tlswire.NewReader(bytes.NewReader(data)), ch, details)
			if r.hello == nil && r.alert == nil && r.kind == failNone {
				t.Fatalf("no answer, no alert and no failure for % x", data)
			}
			if r.hello == nil && r.alert == nil && r.err == nil {
				t.Fatalf("failure without a reason for % x", data)
			}
		}
	})
}
