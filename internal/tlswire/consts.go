package tlswire

import "fmt"

// Record content types.
const (
	RecordChangeCipherSpec uint8 = 20
	RecordAlert            uint8 = 21
	RecordHandshake        uint8 = 22
	RecordApplicationData  uint8 = 23
)

// Handshake message types.
const (
	TypeHelloRequest       uint8 = 0
	TypeClientHello        uint8 = 1
	TypeServerHello        uint8 = 2
	TypeNewSessionTicket   uint8 = 4
	TypeEncryptedExts      uint8 = 8
	TypeCertificate        uint8 = 11
	TypeServerKeyExchange  uint8 = 12
	TypeCertificateRequest uint8 = 13
	TypeServerHelloDone    uint8 = 14
	TypeCertificateStatus  uint8 = 22
)

// Extension code points.
const (
	ExtServerName           uint16 = 0
	ExtStatusRequest        uint16 = 5
	ExtSupportedGroups      uint16 = 10
	ExtECPointFormats       uint16 = 11
	ExtSignatureAlgorithms  uint16 = 13
	ExtALPN                 uint16 = 16
	ExtSCT                  uint16 = 18
	ExtEncryptThenMAC       uint16 = 22
	ExtExtendedMasterSecret uint16 = 23
	ExtSessionTicket        uint16 = 35
	ExtSupportedVersions    uint16 = 43
	ExtPSKModes             uint16 = 45
	ExtKeyShare             uint16 = 51
	ExtRenegotiationInfo    uint16 = 0xff01
)

// MaxPlaintext is the largest record fragment TLS allows (2^14); servers must not send more, and records
// of up to 2^14+2048 exist only once encryption is on.
const MaxPlaintext = 1 << 14

// maxRecord bounds what the reader accepts before it calls a record garbage.
const maxRecord = MaxPlaintext + 2048

// Alert descriptions, as RFC 8446 §6 and older RFCs name them.
var alertNames = map[uint8]string{
	0: "close_notify", 10: "unexpected_message", 20: "bad_record_mac", 21: "decryption_failed",
	22: "record_overflow", 30: "decompression_failure", 40: "handshake_failure", 41: "no_certificate",
	42: "bad_certificate", 43: "unsupported_certificate", 44: "certificate_revoked", 45: "certificate_expired",
	46: "certificate_unknown", 47: "illegal_parameter", 48: "unknown_ca", 49: "access_denied",
	50: "decode_error", 51: "decrypt_error", 60: "export_restriction", 70: "protocol_version",
	71: "insufficient_security", 80: "internal_error", 86: "inappropriate_fallback", 90: "user_canceled",
	100: "no_renegotiation", 109: "missing_extension", 110: "unsupported_extension", 112: "unrecognized_name",
	113: "bad_certificate_status_response", 115: "unknown_psk_identity", 116: "certificate_required",
	120: "no_application_protocol",
}

// Alert is a TLS alert.
type Alert struct {
	Level       uint8 // 1 warning, 2 fatal
	Description uint8
}

func (a Alert) String() string {
	name, ok := alertNames[a.Description]
	if !ok {
		name = fmt.Sprintf("alert %d", a.Description)
	}
	if a.Level == 1 {
		return "warning " + name
	}
	return name
}

// Error makes an Alert usable as an error.
func (a Alert) Error() string { return "tls alert: " + a.String() }

// ParseAlert parses an alert record fragment.
func ParseAlert(b []byte) (Alert, error) {
	if len(b) < 2 {
		return Alert{}, fmt.Errorf("%w: alert of %d bytes", ErrMalformed, len(b))
	}
	return Alert{Level: b[0], Description: b[1]}, nil
}
