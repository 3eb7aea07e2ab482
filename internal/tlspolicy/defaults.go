package tlspolicy

import (
	"strings"
	"sync"
)

// Defaults of a new install live in this file.

// DefaultDisabledAlgorithms is the jdk.tls.disabledAlgorithms value of JDK 17 (17.0.15), which the Manager
// writes into a new install's java.security. It already disables TLSv1 and TLSv1.1, so a new install
// accepts only TLS 1.2 and 1.3.
const DefaultDisabledAlgorithms = "SSLv3, TLSv1, TLSv1.1, DTLSv1.0, RC4, DES, MD5withRSA, DH keySize < 1024, EC keySize < 224, 3DES_EDE_CBC, anon, NULL, ECDH"

// DefaultJavaSecurityContent is the java.security file the Manager writes on first start.
const DefaultJavaSecurityContent = `# java.security — TLS algorithm restrictions for every port of this tlsfleet Manager (4119 and 4120).
#
# tlsfleet reads jdk.tls.disabledAlgorithms with the JDK's grammar and meaning: protocol names (SSLv3,
# TLSv1, TLSv1.1), algorithm names matched against the parts of a cipher-suite name (RC4, DES, 3DES_EDE_CBC,
# anon, NULL, ECDH, ...), signature algorithms (MD5withRSA) and key-size constraints (DH keySize < 1024,
# EC keySize < 224, RSA keySize < 2048). Changes take effect within two seconds; no restart is needed.
#
# To let early-TLS clients (TLS 1.0 and 1.1) connect, remove TLSv1 and TLSv1.1 from the line below.
# Run "tlsfleet policy --dir <install folder>" to see what each entry does on each port.
jdk.tls.disabledAlgorithms=SSLv3, TLSv1, TLSv1.1, DTLSv1.0, RC4, DES, \
    MD5withRSA, DH keySize < 1024, EC keySize < 224, 3DES_EDE_CBC, anon, NULL, \
    ECDH
`

// jdkDefaultEntries are the entries of DefaultDisabledAlgorithms, as written.
func jdkDefaultEntries() []string {
	var out []string
	for _, e := range strings.Split(DefaultDisabledAlgorithms, ",") {
		out = append(out, strings.TrimSpace(e))
	}
	return out
}

var (
	defaultJSOnce sync.Once
	defaultJS     *JavaSecurity
)

// DefaultJavaSecurity returns the parsed default java.security.
func DefaultJavaSecurity() *JavaSecurity {
	defaultJSOnce.Do(func() {
		js, err := ParseJavaSecurity("java.security (default)", []byte(DefaultJavaSecurityContent))
		if err != nil {
			panic("tlspolicy: default java.security does not parse: " + err.Error())
		}
		defaultJS = js
	})
	return defaultJS
}
