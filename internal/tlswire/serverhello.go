package tlswire

import (
	"bytes"
	"fmt"

	"golang.org/x/crypto/cryptobyte"
)

// helloRetryRandom is the fixed random that marks a HelloRetryRequest (SHA-256 of "HelloRetryRequest",
// RFC 8446 §4.1.3).
var helloRetryRandom = []byte{
	0xCF, 0x21, 0xAD, 0x74, 0xE5, 0x9A, 0x61, 0x11, 0xBE, 0x1D, 0x8C, 0x02, 0x1E, 0x65, 0xB8, 0x91,
	0xC2, 0xA2, 0x11, 0x16, 0x7A, 0xBB, 0x8C, 0x5E, 0x07, 0x9E, 0x09, 0xE2, 0xC8, 0xA8, 0x33, 0x9C,
}

// Downgrade sentinels a TLS 1.3 server writes into the last 8 bytes of its random when it negotiates
// TLS 1.2 ("DOWNGRD\x01") or older ("DOWNGRD\x00").
var (
	downgradeTLS12 = []byte("DOWNGRD\x01")
	downgradeTLS11 = []byte("DOWNGRD\x00")
)

// ServerHello is a parsed ServerHello or HelloRetryRequest.
type ServerHello struct {
	LegacyVersion uint16
	Random        []byte
	SessionID     []byte
	CipherSuite   uint16
	Compression   uint8
	Extensions    []Extension

	// HelloRetry is set for a HelloRetryRequest (a ServerHello with the fixed random).
	HelloRetry bool
	// SupportedVersion is the version from the supported_versions extension (TLS 1.3), 0 if absent.
	SupportedVersion uint16
	// Group is the key_share group: the server's share in a ServerHello, the selected group in a
	// HelloRetryRequest.
	Group uint16
	// Downgrade is "TLS1.2" or "TLS1.1" when the random carries a downgrade sentinel.
	Downgrade string
	// SecureRenegotiation, ExtendedMasterSecret and ALPN report those extensions.
	SecureRenegotiation  bool
	ExtendedMasterSecret bool
	ALPN                 string
}

// Version returns the negotiated version: supported_versions if present, else the legacy field.
func (s *ServerHello) Version() uint16 {
	if s.SupportedVersion != 0 {
		return s.SupportedVersion
	}
	return s.LegacyVersion
}

// ParseServerHello parses a ServerHello handshake body.
func ParseServerHello(body []byte) (*ServerHello, error) {
	s := cryptobyte.String(body)
	sh := &ServerHello{}
	var random, sid []byte
	if !s.ReadUint16(&sh.LegacyVersion) || !s.ReadBytes(&random, 32) || !readUint8Bytes(&s, &sid) ||
		!s.ReadUint16(&sh.CipherSuite) || !s.ReadUint8(&sh.Compression) {
		return nil, fmt.Errorf("%w: ServerHello of %d bytes is truncated", ErrMalformed, len(body))
	}
	sh.Random, sh.SessionID = random, sid
	sh.HelloRetry = bytes.Equal(random, helloRetryRandom)
	switch {
	case bytes.Equal(random[24:], downgradeTLS12):
		sh.Downgrade = "TLS1.2"
	case bytes.Equal(random[24:], downgradeTLS11):
		sh.Downgrade = "TLS1.1"
	}
	if s.Empty() {
		return sh, nil // no extensions (SSLv3 and early TLS servers)
	}
	var exts cryptobyte.String
	if !s.ReadUint16LengthPrefixed(&exts) || !s.Empty() {
		return nil, fmt.Errorf("%w: ServerHello extensions block", ErrMalformed)
	}
	seen := map[uint16]bool{}
	for !exts.Empty() {
		var typ uint16
		var data cryptobyte.String
		if !exts.ReadUint16(&typ) || !exts.ReadUint16LengthPrefixed(&data) {
			return nil, fmt.Errorf("%w: ServerHello extension framing", ErrMalformed)
		}
		if seen[typ] {
			return nil, fmt.Errorf("%w: ServerHello repeats extension %d", ErrMalformed, typ)
		}
		seen[typ] = true
		sh.Extensions = append(sh.Extensions, Extension{Type: typ, Data: data})
		if err := sh.parseExtension(typ, data); err != nil {
			return nil, err
		}
	}
	return sh, nil
}

func (sh *ServerHello) parseExtension(typ uint16, data cryptobyte.String) error {
	bad := func(name string) error { return fmt.Errorf("%w: ServerHello %s extension", ErrMalformed, name) }
	switch typ {
	case ExtSupportedVersions:
		if !data.ReadUint16(&sh.SupportedVersion) || !data.Empty() {
			return bad("supported_versions")
		}
	case ExtKeyShare:
		// HelloRetryRequest: selected_group; ServerHello: group + key_exchange.
		if !data.ReadUint16(&sh.Group) {
			return bad("key_share")
		}
		if !sh.HelloRetry {
			var key cryptobyte.String
			if !data.ReadUint16LengthPrefixed(&key) || !data.Empty() {
				return bad("key_share")
			}
		} else if !data.Empty() {
			return bad("key_share")
		}
	case ExtRenegotiationInfo:
		sh.SecureRenegotiation = true
	case ExtExtendedMasterSecret:
		sh.ExtendedMasterSecret = true
	case ExtALPN:
		var list, proto cryptobyte.String
		if !data.ReadUint16LengthPrefixed(&list) || !list.ReadUint8LengthPrefixed(&proto) || !list.Empty() || !data.Empty() {
			return bad("ALPN")
		}
		sh.ALPN = string(proto)
	}
	return nil
}

func readUint8Bytes(s *cryptobyte.String, out *[]byte) bool {
	var v cryptobyte.String
	if !s.ReadUint8LengthPrefixed(&v) {
		return false
	}
	*out = v
	return true
}
