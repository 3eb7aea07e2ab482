package tlswire

import (
	"errors"
	"fmt"
	"io"
)

// Errors the reader returns; wrap-compatible with errors.Is.
var (
	// ErrMalformed means the peer sent TLS-looking bytes that do not parse.
	ErrMalformed = errors.New("tlswire: malformed TLS message")
	// ErrNotTLS means the first bytes are not a TLS record at all (an HTTP answer, an SSH banner, SSLv2).
	ErrNotTLS = errors.New("tlswire: not TLS")
)

// maxHandshake bounds one reassembled handshake message (certificate chains are the largest).
const maxHandshake = 1 << 18

// Message is what Reader.Next returns: a handshake message, an alert or a ChangeCipherSpec.
type Message struct {
	RecordVersion    uint16
	Alert            *Alert
	ChangeCipherSpec bool
	Type             uint8  // handshake message type, when Alert is nil and ChangeCipherSpec false
	Body             []byte // handshake message body (without its 4-byte header)
}

// Reader reads TLS records from a peer and reassembles handshake messages that span records.
type Reader struct {
	r       io.Reader
	pending []byte // handshake bytes not yet returned
	version uint16
	sawAny  bool
}

// NewReader reads records from r.
func NewReader(r io.Reader) *Reader { return &Reader{r: r} }

// Next returns the next message. It fails with ErrNotTLS when the peer's first bytes are not a record,
// ErrMalformed for broken framing, io.EOF or io.ErrUnexpectedEOF when the peer closes.
func (rd *Reader) Next() (Message, error) {
	for {
		if m, ok, err := rd.nextHandshake(); err != nil || ok {
			return m, err
		}
		var hdr [5]byte
		if n, err := io.ReadFull(rd.r, hdr[:]); err != nil {
			if errors.Is(err, io.ErrUnexpectedEOF) && len(rd.pending) == 0 && !rd.sawAny {
				return Message{}, fmt.Errorf("%w: peer sent %d bytes (%q) and closed", ErrNotTLS, n, printable(hdr[:n]))
			}
			if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) && len(rd.pending) > 0 {
				return Message{}, fmt.Errorf("closed inside a handshake message: %w", io.ErrUnexpectedEOF)
			}
			return Message{}, err
		}
		typ, vers, n := hdr[0], uint16(hdr[1])<<8|uint16(hdr[2]), int(hdr[3])<<8|int(hdr[4])
		if typ < RecordChangeCipherSpec || typ > RecordApplicationData || hdr[1] != 3 {
			if !rd.sawAny {
				return Message{}, fmt.Errorf("%w: first bytes %q", ErrNotTLS, printable(hdr[:]))
			}
			return Message{}, fmt.Errorf("%w: record header % x", ErrMalformed, hdr)
		}
		if n > maxRecord {
			return Message{}, fmt.Errorf("%w: record of %d bytes", ErrMalformed, n)
		}
		frag := make([]byte, n)
		if _, err := io.ReadFull(rd.r, frag); err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return Message{}, fmt.Errorf("record cut short: %w", err)
		}
		rd.sawAny = true
		rd.version = vers
		switch typ {
		case RecordAlert:
			if len(rd.pending) > 0 {
				return Message{}, fmt.Errorf("%w: alert inside a handshake message", ErrMalformed)
			}
			a, err := ParseAlert(frag)
			if err != nil {
				return Message{}, err
			}
			return Message{RecordVersion: vers, Alert: &a}, nil
		case RecordChangeCipherSpec:
			return Message{RecordVersion: vers, ChangeCipherSpec: true}, nil
		case RecordApplicationData:
			return Message{}, fmt.Errorf("%w: application data before the handshake finished", ErrMalformed)
		case RecordHandshake:
			if n == 0 {
				return Message{}, fmt.Errorf("%w: empty handshake record", ErrMalformed)
			}
			if len(rd.pending)+n > maxHandshake+4 {
				return Message{}, fmt.Errorf("%w: handshake message larger than %d bytes", ErrMalformed, maxHandshake)
			}
			rd.pending = append(rd.pending, frag...)
		}
	}
}

// nextHandshake returns a complete buffered handshake message, if there is one.
func (rd *Reader) nextHandshake() (Message, bool, error) {
	if len(rd.pending) < 4 {
		return Message{}, false, nil
	}
	n := int(rd.pending[1])<<16 | int(rd.pending[2])<<8 | int(rd.pending[3])
	if n > maxHandshake {
		return Message{}, false, fmt.Errorf("%w: handshake message claims %d bytes", ErrMalformed, n)
	}
	if len(rd.pending) < 4+n {
		return Message{}, false, nil
	}
	m := Message{RecordVersion: rd.version, Type: rd.pending[0], Body: rd.pending[4 : 4+n]}
	rd.pending = rd.pending[4+n:]
	if len(rd.pending) == 0 {
		rd.pending = nil
	}
	return m, true, nil
}

func printable(b []byte) string {
	out := make([]byte, len(b))
	for i, c := range b {
		if c < 0x20 || c > 0x7e {
			c = '.'
		}
		out[i] = c
	}
	return string(out)
}
