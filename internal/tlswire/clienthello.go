package tlswire

import (
	"crypto/rand"
	"errors"

	"golang.org/x/crypto/cryptobyte"
)

// KeyShare is one entry of the key_share extension.
type KeyShare struct {
	Group uint16
	Data  []byte
}

// Extension is an extension sent as given.
type Extension struct {
	Type uint16
	Data []byte
}

// ClientHello describes a ClientHello to build. Zero fields are left out (no extension is sent for a nil
// list), so a hello can imitate anything from an SSLv3 client to a TLS 1.3 one.
type ClientHello struct {
	RecordVersion uint16 // record-layer version; 0 means 0x0301 (what most clients send)
	Version       uint16 // legacy_version: the highest version for pre-1.3 hellos, 0x0303 with supported_versions
	Random        []byte // 32 bytes; nil means random
	SessionID     []byte
	CipherSuites  []uint16
	Compression   []byte // nil means {0} (null only)

	ServerName          string
	Groups              []uint16
	PointFormats        []byte
	SignatureAlgorithms []uint16
	SupportedVersions   []uint16
	// KeyShares are sent when SendKeyShare is set; an empty list provokes a HelloRetryRequest.
	KeyShares            []KeyShare
	SendKeyShare         bool
	ALPN                 []string
	RenegotiationInfo    bool
	ExtendedMasterSecret bool
	SessionTicket        bool
	StatusRequest        bool
	PSKModes             bool // psk_key_exchange_modes (psk_dhe_ke), which some TLS 1.3 servers expect
	Extra                []Extension
}

// ErrTooLarge is returned for a hello whose handshake message exceeds 2^24 bytes.
var ErrTooLarge = errors.New("tlswire: ClientHello too large")

// Body returns the ClientHello handshake message (type, 24-bit length, body).
func (h *ClientHello) Body() ([]byte, error) {
	random := h.Random
	if random == nil {
		random = make([]byte, 32)
		if _, err := rand.Read(random); err != nil {
			return nil, err
		}
	}
	compression := h.Compression
	if compression == nil {
		compression = []byte{0}
	}
	var b cryptobyte.Builder
	b.AddUint8(TypeClientHello)
	b.AddUint24LengthPrefixed(func(b *cryptobyte.Builder) {
		b.AddUint16(h.Version)
		b.AddBytes(random)
		b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(h.SessionID) })
		b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
			for _, s := range h.CipherSuites {
				b.AddUint16(s)
			}
		})
		b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(compression) })
		exts := h.extensions()
		if len(exts) == 0 {
			return // SSLv3-style hello: no extensions block at all
		}
		b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
			for _, e := range exts {
				b.AddUint16(e.Type)
				b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(e.Data) })
			}
		})
	})
	out, err := b.Bytes()
	if err != nil {
		return nil, ErrTooLarge
	}
	return out, nil
}

// Marshal returns the hello as TLS records, split into 2^14-byte fragments when it is larger.
func (h *ClientHello) Marshal() ([]byte, error) {
	msg, err := h.Body()
	if err != nil {
		return nil, err
	}
	rv := h.RecordVersion
	if rv == 0 {
		rv = 0x0301
	}
	return Records(RecordHandshake, rv, msg), nil
}

// Records frames data as records of one content type, fragmenting at 2^14 bytes.
func Records(typ uint8, version uint16, data []byte) []byte {
	out := make([]byte, 0, len(data)+5*(len(data)/MaxPlaintext+1))
	for len(data) > 0 {
		n := min(len(data), MaxPlaintext)
		out = append(out, typ, byte(version>>8), byte(version), byte(n>>8), byte(n))
		out = append(out, data[:n]...)
		data = data[n:]
	}
	return out
}

func build(f func(b *cryptobyte.Builder)) []byte {
	var b cryptobyte.Builder
	f(&b)
	return b.BytesOrPanic()
}

func (h *ClientHello) extensions() []Extension {
	var exts []Extension
	if h.ServerName != "" {
		exts = append(exts, Extension{ExtServerName, build(func(b *cryptobyte.Builder) {
			b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
				b.AddUint8(0) // host_name
				b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte(h.ServerName)) })
			})
		})})
	}
	if h.StatusRequest {
		exts = append(exts, Extension{ExtStatusRequest, []byte{1, 0, 0, 0, 0}})
	}
	if h.Groups != nil {
		exts = append(exts, Extension{ExtSupportedGroups, uint16List(h.Groups)})
	}
	if h.PointFormats != nil {
		exts = append(exts, Extension{ExtECPointFormats, build(func(b *cryptobyte.Builder) {
			b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(h.PointFormats) })
		})})
	}
	if h.SignatureAlgorithms != nil {
		exts = append(exts, Extension{ExtSignatureAlgorithms, uint16List(h.SignatureAlgorithms)})
	}
	if h.ALPN != nil {
		exts = append(exts, Extension{ExtALPN, build(func(b *cryptobyte.Builder) {
			b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
				for _, p := range h.ALPN {
					b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte(p)) })
				}
			})
		})})
	}
	if h.ExtendedMasterSecret {
		exts = append(exts, Extension{ExtExtendedMasterSecret, nil})
	}
	if h.SessionTicket {
		exts = append(exts, Extension{ExtSessionTicket, nil})
	}
	if h.SupportedVersions != nil {
		exts = append(exts, Extension{ExtSupportedVersions, build(func(b *cryptobyte.Builder) {
			b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) {
				for _, v := range h.SupportedVersions {
					b.AddUint16(v)
				}
			})
		})})
	}
	if h.PSKModes {
		exts = append(exts, Extension{ExtPSKModes, []byte{1, 1}})
	}
	if h.SendKeyShare {
		exts = append(exts, Extension{ExtKeyShare, build(func(b *cryptobyte.Builder) {
			b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
				for _, ks := range h.KeyShares {
					b.AddUint16(ks.Group)
					b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(ks.Data) })
				}
			})
		})})
	}
	exts = append(exts, h.Extra...)
	if h.RenegotiationInfo {
		exts = append(exts, Extension{ExtRenegotiationInfo, []byte{0}})
	}
	return exts
}

// uint16List encodes a list of 16-bit values with a 16-bit length prefix.
func uint16List(vs []uint16) []byte {
	return build(func(b *cryptobyte.Builder) {
		b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
			for _, v := range vs {
				b.AddUint16(v)
			}
		})
	})
}
