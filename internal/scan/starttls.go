package scan

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
)

// StartTLS names the protocols whose plaintext preamble the scanner can speak before TLS.
var StartTLS = []string{"postgres", "smtp", "imap", "ftp", "ldap"}

// preamble speaks the target's STARTTLS protocol on a fresh connection, leaving it ready for a
// ClientHello.
func (s *Scanner) preamble(conn net.Conn, t *target) error {
	switch s.StartTLS {
	case "":
		return nil
	case "postgres":
		return postgresPreamble(conn)
	case "smtp":
		return smtpPreamble(conn)
	case "imap":
		return imapPreamble(conn)
	case "ftp":
		return ftpPreamble(conn)
	case "ldap":
		return ldapPreamble(conn)
	}
	return fmt.Errorf("unknown STARTTLS protocol %q; use one of %s", s.StartTLS, strings.Join(StartTLS, ", "))
}

// postgresPreamble sends an SSLRequest; the server answers 'S' (go ahead) or 'N' (no TLS).
func postgresPreamble(conn net.Conn) error {
	var req [8]byte
	binary.BigEndian.PutUint32(req[0:], 8)
	binary.BigEndian.PutUint32(req[4:], 80877103)
	if _, err := conn.Write(req[:]); err != nil {
		return err
	}
	var b [1]byte
	if _, err := io.ReadFull(conn, b[:]); err != nil {
		return fmt.Errorf("postgres: no answer to SSLRequest: %w", err)
	}
	switch b[0] {
	case 'S':
		return nil
	case 'N':
		return errors.New("postgres: the server does not accept TLS (answered N to SSLRequest; set ssl=on)")
	}
	return fmt.Errorf("postgres: unexpected answer %q to SSLRequest", b[0])
}

// Bounds on what a STARTTLS server may send before TLS: a hostile one cannot make the scanner buffer
// without end.
const (
	maxPreambleLine  = 4096
	maxPreambleLines = 100
)

// readLine reads one line of at most maxPreambleLine bytes.
func readLine(r *bufio.Reader) (string, error) {
	var line []byte
	for {
		chunk, err := r.ReadSlice('\n')
		line = append(line, chunk...)
		if len(line) > maxPreambleLine {
			return "", fmt.Errorf("a reply line longer than %d bytes", maxPreambleLine)
		}
		switch {
		case err == nil:
			return string(line), nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		default:
			return "", err
		}
	}
}

// readReply reads one (possibly multi-line) reply with the given status code. Servers send nothing after
// the final STARTTLS reply until the ClientHello, so the buffered reader never swallows TLS bytes.
func readReply(r *bufio.Reader, code string) (string, error) {
	for n := 0; ; n++ {
		if n == maxPreambleLines {
			return "", fmt.Errorf("a reply of more than %d lines", maxPreambleLines)
		}
		line, err := readLine(r)
		if err != nil {
			return "", fmt.Errorf("reading reply: %w", err)
		}
		line = strings.TrimRight(line, "\r\n")
		if len(line) < 4 || !strings.HasPrefix(line, code) {
			return line, fmt.Errorf("unexpected reply %q (want %s)", line, code)
		}
		if line[3] == ' ' {
			return line, nil
		}
	}
}

func smtpPreamble(conn net.Conn) error {
	r := bufio.NewReader(conn)
	if _, err := readReply(r, "220"); err != nil {
		return fmt.Errorf("smtp greeting: %w", err)
	}
	if _, err := io.WriteString(conn, "EHLO tlsfleet.scan\r\n"); err != nil {
		return err
	}
	if _, err := readReply(r, "250"); err != nil {
		return fmt.Errorf("smtp EHLO: %w", err)
	}
	if _, err := io.WriteString(conn, "STARTTLS\r\n"); err != nil {
		return err
	}
	if _, err := readReply(r, "220"); err != nil {
		return fmt.Errorf("smtp STARTTLS: %w", err)
	}
	return nil
}

func ftpPreamble(conn net.Conn) error {
	r := bufio.NewReader(conn)
	if _, err := readReply(r, "220"); err != nil {
		return fmt.Errorf("ftp greeting: %w", err)
	}
	if _, err := io.WriteString(conn, "AUTH TLS\r\n"); err != nil {
		return err
	}
	if _, err := readReply(r, "234"); err != nil {
		return fmt.Errorf("ftp AUTH TLS: %w", err)
	}
	return nil
}

func imapPreamble(conn net.Conn) error {
	r := bufio.NewReader(conn)
	greet, err := readLine(r)
	if err != nil {
		return fmt.Errorf("imap greeting: %w", err)
	}
	if !strings.HasPrefix(greet, "* OK") {
		return fmt.Errorf("imap greeting %q is not * OK", strings.TrimSpace(greet))
	}
	if _, err := io.WriteString(conn, "a1 STARTTLS\r\n"); err != nil {
		return err
	}
	for n := 0; n < maxPreambleLines; n++ {
		line, err := readLine(r)
		if err != nil {
			return fmt.Errorf("imap STARTTLS: %w", err)
		}
		if strings.HasPrefix(line, "a1 ") {
			if !strings.HasPrefix(line, "a1 OK") {
				return fmt.Errorf("imap STARTTLS refused: %q", strings.TrimSpace(line))
			}
			return nil
		}
	}
	return fmt.Errorf("imap STARTTLS: no answer to a1 within %d lines", maxPreambleLines)
}

// ldapPreamble sends the StartTLS extended operation (RFC 4511 §4.14) and checks for success.
func ldapPreamble(conn net.Conn) error {
	const oid = "1.3.6.1.4.1.1466.20037"
	// LDAPMessage { messageID 1, extendedReq [APPLICATION 23] { requestName [0] oid } }
	req := append([]byte{0x30, byte(5 + 2 + len(oid)), 0x02, 0x01, 0x01, 0x77, byte(2 + len(oid)), 0x80, byte(len(oid))}, oid...)
	if _, err := conn.Write(req); err != nil {
		return err
	}
	var hdr [2]byte
	if _, err := io.ReadFull(conn, hdr[:]); err != nil {
		return fmt.Errorf("ldap StartTLS: %w", err)
	}
	if hdr[0] != 0x30 || hdr[1]&0x80 != 0 && hdr[1] > 0x82 {
		return fmt.Errorf("ldap StartTLS: unexpected answer % x", hdr)
	}
	n := int(hdr[1])
	if hdr[1]&0x80 != 0 {
		lenBytes := make([]byte, hdr[1]&0x7f)
		if _, err := io.ReadFull(conn, lenBytes); err != nil {
			return err
		}
		n = 0
		for _, b := range lenBytes {
			n = n<<8 | int(b)
		}
	}
	if n > 1<<16 {
		return errors.New("ldap StartTLS: oversized answer")
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(conn, body); err != nil {
		return fmt.Errorf("ldap StartTLS: %w", err)
	}
	// messageID, then [APPLICATION 24] ExtendedResponse whose first field is resultCode (ENUMERATED).
	if len(body) < 3 || body[0] != 0x02 {
		return fmt.Errorf("ldap StartTLS: malformed answer: % x", body)
	}
	i := 2 + int(body[1]) // skip messageID INTEGER
	if i+2 > len(body) || body[i] != 0x78 {
		return fmt.Errorf("ldap StartTLS: not an ExtendedResponse: % x", body)
	}
	i += 2
	if body[i-1]&0x80 != 0 {
		i += int(body[i-1] & 0x7f)
	}
	if i < 0 {
		return fmt.Errorf("ldap StartTLS: malformed answer: % x", body)
	}
	if i+3 > len(body) || body[i] != 0x0a || body[i+1] != 1 {
		return fmt.Errorf("ldap StartTLS: malformed resultCode: % x", body)
	}
	if code := body[i+2]; code != 0 {
		return fmt.Errorf("ldap StartTLS refused: resultCode %d", code)
	}
	return nil
}
