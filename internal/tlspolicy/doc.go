// Package tlspolicy turns the three places where tlsfleet's TLS behaviour is configured — the JDK-style
// java.security file, the Manager's configuration.properties and the fleet settings stored in the database —
// into one effective policy per listener, explains which layer removed what, and builds the hot-swappable
// *tls.Config that each listener serves.
//
// Names and identifiers (protocol versions, the IANA cipher-suite registry, key-exchange groups) live in
// versions.go, suites.go and groups.go; parsers in properties.go, javasecurity.go and configprops.go; the
// layering in effective.go (types and helpers) and explain.go (its stages); when a policy would leave a
// port unable to complete any handshake, and the text that says so, in lockout.go; the prediction of a
// listener's answer to a ClientHello in evaluate.go; and the server configuration in serverconfig.go.
//
// java.security means what it means to JDK 17 (jdkmatch.go); jdk_test.go checks that against a real JDK 17
// TLS server, and every deliberate difference is printed as a note saying what the JDK would do.
package tlspolicy
