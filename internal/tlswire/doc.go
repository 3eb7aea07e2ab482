// Package tlswire reads and writes TLS handshake bytes by hand, for the scanner: it builds ClientHellos
// with any versions, cipher-suite IDs and extensions (including ones Go's crypto/tls will not send), and
// parses what a server answers — ServerHello, HelloRetryRequest, Alert, Certificate, ServerKeyExchange —
// without completing a handshake or doing any cryptography. Every parser takes untrusted bytes and is
// fuzzed.
package tlswire
