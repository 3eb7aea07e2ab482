// Package scan enumerates what a TLS server accepts — protocol versions, cipher suites with their key
// exchange, cipher preference, compression and named groups — by sending hand-built ClientHellos and
// reading only as far as the server's first flight. No handshake is completed and no cryptography is
// done. Suites are graded exactly as nmap's ssl-enum-ciphers grades them, so that the two tools agree.
package scan
