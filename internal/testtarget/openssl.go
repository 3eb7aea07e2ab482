package testtarget

import (
	"bufio"
	"bytes"
	"context"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Fixed finite-field Diffie-Hellman groups (generator 2), so that a DHE target needs no slow
// `openssl dhparam` run: the 1024-bit MODP group 2 of RFC 2409 §6.2 and the 2048-bit MODP group 14 of
// RFC 3526 §3. Both primes are safe primes.
const (
	modp1024Hex = "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22514A08798E3404DD" +
		"EF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED" +
		"EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE65381FFFFFFFFFFFFFFFF"
	modp2048Hex = "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22514A08798E3404DD" +
		"EF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED" +
		"EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF0598DA48361C55D39A69163FA8FD24CF5F" +
		"83655D23DCA3AD961C62F356208552BB9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B" +
		"E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF6955817183995497CEA956AE515D2261898FA0510" +
		"15728E5A8AACAA68FFFFFFFFFFFFFFFF"
)

// DHPrime returns the fixed DH prime of the given size (1024 or 2048 bits), or nil.
func DHPrime(bits int) *big.Int {
	h := map[int]string{1024: modp1024Hex, 2048: modp2048Hex}[bits]
	if h == "" {
		return nil
	}
	p, _ := new(big.Int).SetString(h, 16)
	return p
}

// DHParamsPEM returns the fixed DH group of the given size as a PKCS#3 "DH PARAMETERS" PEM block, the
// format of `openssl dhparam` (and of s_server -dhparam and PostgreSQL's ssl_dh_params_file).
func DHParamsPEM(bits int) ([]byte, error) {
	p := DHPrime(bits)
	if p == nil {
		return nil, fmt.Errorf("testtarget: no fixed %d-bit DH group (have 1024 and 2048)", bits)
	}
	der, err := asn1.Marshal(struct{ P, G *big.Int }{p, big.NewInt(2)})
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "DH PARAMETERS", Bytes: der}), nil
}

// OpenSSLConfig describes an `openssl s_server` target.
type OpenSSLConfig struct {
	Name string
	Cert CertKind // default RSA2048
	// Versions is the contiguous range to enable, e.g. {"TLSv1.0", "TLSv1.2"} (only the lowest and the
	// highest entry matter); default TLSv1.2 and TLSv1.3. OpenSSL 3.0 has no SSLv3, and it completes a
	// TLS 1.0/1.1 handshake only at security level 0 (`@SECLEVEL=0` in Cipher): at level 1 it answers
	// internal_error ("no suitable signature algorithm"). The truth leaves such versions out.
	Versions []string
	// Cipher is the -cipher string for TLS 1.2 and older; empty means OpenSSL's default ("DEFAULT").
	Cipher string
	// Ciphersuites is the -ciphersuites list for TLS 1.3; empty means OpenSSL's default (the three
	// TLS_AES_128_GCM_SHA256, TLS_AES_256_GCM_SHA384, TLS_CHACHA20_POLY1305_SHA256).
	Ciphersuites string
	// ServerOrder passes -serverpref.
	ServerOrder bool
	// DHBits (1024 or 2048) passes -dhparam with a fixed group; 0 lets OpenSSL choose (the size of the
	// certificate's key for DHE, a size following the cipher strength for anonymous DH).
	DHBits int
	// ExtraArgs are appended to the s_server command line.
	ExtraArgs []string
}

// Preset s_server configurations.
var (
	// ModernConfig: TLS 1.2 and 1.3, RSA-2048, OpenSSL's default suites, client order.
	ModernConfig = OpenSSLConfig{Name: "modern", Versions: []string{TLSv12, TLSv13}}
	// LegacyConfig: TLS 1.0 to 1.2, every suite OpenSSL 3.0 has (ALL, anonymous DH included) at security
	// level 0, server order, RSA-2048, DHE with the fixed 2048-bit group.
	LegacyConfig = OpenSSLConfig{Name: "legacy", Versions: []string{TLSv10, TLSv12}, Cipher: "ALL:@SECLEVEL=0",
		ServerOrder: true, DHBits: 2048}
	// ECDSAConfig: ECDSA P-256 certificate, TLS 1.2 only, exactly two suites.
	ECDSAConfig = OpenSSLConfig{Name: "ecdsa", Cert: ECDSAP256, Versions: []string{TLSv12},
		Cipher: "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384"}
	// DHE1024Config: TLS 1.2 only, four DHE-RSA suites with the 1024-bit group (nmap: "dh 1024").
	DHE1024Config = OpenSSLConfig{Name: "dhe1024", Versions: []string{TLSv12},
		Cipher: "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-AES128-SHA256:DHE-RSA-AES128-SHA:@SECLEVEL=0",
		DHBits: 1024}
	// TLS13OnlyConfig: TLS 1.3 only, two suites.
	TLS13OnlyConfig = OpenSSLConfig{Name: "tls13only", Versions: []string{TLSv13},
		Ciphersuites: "TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"}
	// SHA1CertConfig: a SHA1-RSA signed RSA-2048 certificate, TLS 1.2 only, two suites (nmap: "Insecure
	// certificate signature (SHA1), score capped at F").
	SHA1CertConfig = OpenSSLConfig{Name: "sha1cert", Cert: RSA2048SHA1, Versions: []string{TLSv12},
		Cipher: "ECDHE-RSA-AES128-GCM-SHA256:AES128-SHA:@SECLEVEL=0"}
	// RSA1024Config: an RSA-1024 certificate (security level 1), TLS 1.2 only, two suites (nmap:
	// kex_info "rsa 1024").
	RSA1024Config = OpenSSLConfig{Name: "rsa1024", Cert: RSA1024, Versions: []string{TLSv12},
		Cipher: "ECDHE-RSA-AES128-GCM-SHA256:AES128-SHA:@SECLEVEL=1"}
)

// Modern starts ModernConfig.
func Modern(t testing.TB) *Target { t.Helper(); return OpenSSL(t, ModernConfig) }

// Legacy starts LegacyConfig.
func Legacy(t testing.TB) *Target { t.Helper(); return OpenSSL(t, LegacyConfig) }

// ECDSA starts ECDSAConfig.
func ECDSA(t testing.TB) *Target { t.Helper(); return OpenSSL(t, ECDSAConfig) }

// DHE1024 starts DHE1024Config.
func DHE1024(t testing.TB) *Target { t.Helper(); return OpenSSL(t, DHE1024Config) }

// TLS13Only starts TLS13OnlyConfig.
func TLS13Only(t testing.TB) *Target { t.Helper(); return OpenSSL(t, TLS13OnlyConfig) }

// opensslProtocol maps a version to s_server's -min_protocol/-max_protocol spelling and to the flag
// that makes `openssl ciphers` list the suites of that version.
var opensslProtocol = map[string]struct{ proto, flag string }{
	TLSv10: {"TLSv1", "-tls1"},
	TLSv11: {"TLSv1.1", "-tls1_1"},
	TLSv12: {"TLSv1.2", "-tls1_2"},
	TLSv13: {"TLSv1.3", "-tls1_3"},
}

// versionRange expands {lowest, ..., highest} to every version in between.
func versionRange(vs []string) ([]string, error) {
	lo, hi := len(AllVersions), -1
	for _, v := range vs {
		i := versionIndex(v)
		if i < 0 {
			return nil, fmt.Errorf("unknown protocol version %q (want one of %v)", v, AllVersions)
		}
		lo, hi = min(lo, i), max(hi, i)
	}
	if hi < 0 {
		return nil, errors.New("no protocol version")
	}
	return AllVersions[lo : hi+1], nil
}

// OpenSSL starts `openssl s_server` as cfg describes on a free loopback port and returns it with the
// truth worked out by `openssl ciphers -s` for each version (suites the certificate cannot serve left
// out). The server serves one connection at a time until the test ends.
func OpenSSL(t testing.TB, cfg OpenSSLConfig) *Target {
	t.Helper()
	bin := RequireTool(t, "openssl")
	if cfg.Cert == "" {
		cfg.Cert = RSA2048
	}
	if cfg.Versions == nil {
		cfg.Versions = []string{TLSv12, TLSv13}
	}
	if cfg.Name == "" {
		cfg.Name = "openssl"
	}
	versions, err := versionRange(cfg.Versions)
	if err != nil {
		t.Fatalf("testtarget %s: %v", cfg.Name, err)
	}
	if versions[0] == SSLv3 {
		t.Fatalf("testtarget %s: OpenSSL 3 has no SSLv3; use FakeSSLv3", cfg.Name)
	}
	dir := t.TempDir()
	cert, err := writeCert(cfg.Cert, dir)
	if err != nil {
		t.Fatal(err)
	}
	tg := &Target{Name: cfg.Name, ServerOrder: cfg.ServerOrder, CertKey: cert.Key, CertSig: cert.Sig, Cert: cert}
	tg.Versions, tg.Suites, err = OpenSSLTruth(bin, versions, cfg.Cipher, cfg.Ciphersuites, cert.OpenSSLAuth)
	if err != nil {
		t.Fatalf("testtarget %s: %v", cfg.Name, err)
	}

	args := []string{"s_server", "-cert", cert.CertFile, "-key", cert.KeyFile, "-quiet",
		"-min_protocol", opensslProtocol[versions[0]].proto, "-max_protocol", opensslProtocol[versions[len(versions)-1]].proto}
	if cfg.Cipher != "" {
		args = append(args, "-cipher", cfg.Cipher)
	}
	if cfg.Ciphersuites != "" {
		args = append(args, "-ciphersuites", cfg.Ciphersuites)
	}
	if cfg.ServerOrder {
		args = append(args, "-serverpref")
	}
	if cfg.DHBits != 0 {
		p, err := DHParamsPEM(cfg.DHBits)
		if err != nil {
			t.Fatal(err)
		}
		f := filepath.Join(dir, fmt.Sprintf("dh%d.pem", cfg.DHBits))
		if err := os.WriteFile(f, p, 0o644); err != nil {
			t.Fatal(err)
		}
		args = append(args, "-dhparam", f)
		for _, v := range tg.Versions {
			for _, s := range tg.Suites[v] {
				if strings.HasPrefix(s, "TLS_DHE_") || strings.HasPrefix(s, "TLS_DH_anon_") {
					tg.DHBits = cfg.DHBits
				}
			}
		}
	}
	args = append(args, cfg.ExtraArgs...)
	tg.Addr = startProcess(t, cfg.Name, nil, func(port int) *exec.Cmd {
		return exec.Command(bin, append(args, "-accept", fmt.Sprintf("127.0.0.1:%d", port))...)
	})
	return tg
}

// OpenSSLTruth lists, per version, the IANA names of the suites an OpenSSL 3 server configured with the
// cipher string and TLS 1.3 ciphersuites accepts with a certificate whose OpenSSL authentication is auth
// ("RSA" or "ECDSA"), in the server's preference order. It runs `openssl ciphers -stdname -v -s -tls1_2
// [-ciphersuites ...] CIPHER` per version. Versions below TLS 1.2 count only at security level 0 (see
// OpenSSLConfig.Versions). openssl is the binary's path.
func OpenSSLTruth(openssl string, versions []string, cipher, ciphersuites, auth string) ([]string, map[string][]string, error) {
	if cipher == "" {
		cipher = "DEFAULT"
	}
	var got []string
	suites := map[string][]string{}
	for _, v := range versions {
		p, ok := opensslProtocol[v]
		if !ok {
			return nil, nil, fmt.Errorf("OpenSSL cannot serve %s", v)
		}
		if versionIndex(v) < versionIndex(TLSv12) && secLevel(cipher) > 0 {
			continue
		}
		args := []string{"ciphers", "-stdname", "-v", "-s", p.flag}
		if ciphersuites != "" {
			args = append(args, "-ciphersuites", ciphersuites)
		}
		out, err := exec.Command(openssl, append(args, cipher)...).CombinedOutput()
		if err != nil {
			return nil, nil, fmt.Errorf("openssl %s: %v: %s", strings.Join(args, " "), err, out)
		}
		for _, c := range parseOpenSSLCiphers(out) {
			if (v == TLSv13) != (c.MinVersion == TLSv13) {
				continue
			}
			if c.Auth != auth && c.Auth != "None" && c.Auth != "any" {
				continue
			}
			suites[v] = append(suites[v], c.IANA)
		}
		if len(suites[v]) > 0 {
			got = append(got, v)
		}
	}
	return got, suites, nil
}

var secLevelRE = regexp.MustCompile(`@SECLEVEL=(\d)`)

// secLevel returns the security level a cipher string sets (the last @SECLEVEL=n), or the default: 2 on
// Debian 12, whose OpenSSL is built with that default (its openssl.cnf sets none). Level 2 refuses
// RSA-1024 certificates ("ee key too small") and 1024-bit DH groups ("dh key too small") at startup.
func secLevel(cipher string) int {
	m := secLevelRE.FindAllStringSubmatch(cipher, -1)
	if m == nil {
		return 2
	}
	n, _ := strconv.Atoi(m[len(m)-1][1])
	return n
}

// OpenSSLCipher is one line of `openssl ciphers -stdname -v`.
type OpenSSLCipher struct {
	IANA, OpenSSL, MinVersion, Kx, Auth, Enc, Mac string
}

// parseOpenSSLCiphers parses lines like
// "TLS_DHE_RSA_WITH_AES_128_CBC_SHA - DHE-RSA-AES128-SHA SSLv3 Kx=DH Au=RSA Enc=AES(128) Mac=SHA1".
func parseOpenSSLCiphers(out []byte) []OpenSSLCipher {
	var cs []OpenSSLCipher
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 8 || f[1] != "-" {
			continue
		}
		c := OpenSSLCipher{IANA: f[0], OpenSSL: f[2], MinVersion: f[3]}
		if c.MinVersion == "TLSv1" {
			c.MinVersion = TLSv10
		}
		for _, kv := range f[4:] {
			k, v, _ := strings.Cut(kv, "=")
			switch k {
			case "Kx":
				c.Kx = v
			case "Au":
				c.Auth = v
			case "Enc":
				c.Enc = v
			case "Mac":
				c.Mac = v
			}
		}
		cs = append(cs, c)
	}
	return cs
}

var (
	opensslNamesOnce sync.Once
	opensslToIANA    map[string]string
	ianaToOpenSSL    map[string]string
)

func loadOpenSSLNames() {
	opensslNamesOnce.Do(func() {
		opensslToIANA, ianaToOpenSSL = map[string]string{}, map[string]string{}
		out, err := exec.Command("openssl", "ciphers", "-stdname", "-v", "ALL:COMPLEMENTOFALL:@SECLEVEL=0").Output()
		if err != nil {
			return
		}
		for _, c := range parseOpenSSLCiphers(out) {
			opensslToIANA[c.OpenSSL] = c.IANA
			ianaToOpenSSL[c.IANA] = c.OpenSSL
		}
	})
}

// OpenSSLToIANA maps an OpenSSL suite name ("ECDHE-RSA-AES128-GCM-SHA256") to its IANA name, using
// `openssl ciphers -stdname` once per process; names it does not know (and IANA names) come back as is.
func OpenSSLToIANA(name string) string {
	loadOpenSSLNames()
	if n, ok := opensslToIANA[name]; ok {
		return n
	}
	return name
}

// IANAToOpenSSL maps an IANA suite name to OpenSSL's name (TLS 1.3 suites have the same name in both),
// or "" when the local OpenSSL does not know the suite.
func IANAToOpenSSL(name string) string {
	loadOpenSSLNames()
	return ianaToOpenSSL[name]
}

// tailBuffer keeps the last max bytes written to it (a server's stderr, for error messages).
type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
	max int
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if len(b.buf) > b.max {
		b.buf = slices.Clone(b.buf[len(b.buf)-b.max:])
	}
	return len(p), nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}

// startProcess starts the command newCmd makes for a free port and waits until it accepts connections,
// retrying with another port (up to 5 times) when the process dies first, e.g. because it lost the port
// to someone else. Its stdin is a pipe that stays open (s_server must not see EOF), its output is kept
// for error messages, and cleanup sends it stopSig (SIGKILL when nil), waits up to 5 s, kills it and
// reaps it. It returns "127.0.0.1:port".
func startProcess(t testing.TB, name string, stopSig os.Signal, newCmd func(port int) *exec.Cmd) string {
	t.Helper()
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		port := FreePort(t)
		cmd := newCmd(port)
		out := &tailBuffer{max: 16 << 10}
		cmd.Stdout, cmd.Stderr = out, out
		cmd.WaitDelay = 2 * time.Second // children left holding the output pipe must not block Wait
		stdin, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatalf("testtarget %s: %v", name, err)
		}
		exited := make(chan struct{})
		go func() {
			cmd.Wait()
			close(exited)
		}()
		stop := func() {
			if stopSig != nil {
				cmd.Process.Signal(stopSig)
				select {
				case <-exited:
				case <-time.After(5 * time.Second):
				}
			}
			cmd.Process.Kill()
			<-exited
			stdin.Close()
		}
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		err = waitAccepting(addr, exited, 20*time.Second)
		if err == nil {
			t.Cleanup(stop)
			return addr
		}
		stop()
		lastErr = fmt.Errorf("%s: %w\n%s", strings.Join(cmd.Args, " "), err, out.String())
		if !errors.Is(err, errExited) {
			break
		}
	}
	t.Fatalf("testtarget %s: %v", name, lastErr)
	return ""
}

// SClient runs `openssl s_client -brief` against addr with the given extra arguments (e.g. "-tls1_2",
// "-cipher", "AES128-SHA", "-starttls", "postgres") and returns the negotiated protocol (TLSv1.0 ...
// TLSv1.3) and cipher (OpenSSL's name), both "" when the handshake failed, and the combined output.
func SClient(ctx context.Context, addr string, args ...string) (protocol, cipher string, out string, err error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "openssl", append([]string{"s_client", "-brief", "-connect", addr}, args...)...)
	cmd.Stdin = strings.NewReader("") // EOF: s_client closes right after the handshake
	b, err := cmd.CombinedOutput()
	out = string(b)
	for line := range strings.Lines(out) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "Protocol version: "); ok {
			protocol = v
			if v == "TLSv1" {
				protocol = TLSv10
			}
		}
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "Ciphersuite: "); ok {
			cipher = v
		}
	}
	if ctx.Err() != nil {
		return "", "", out, ctx.Err()
	}
	if protocol != "" {
		err = nil // s_client may exit non-zero after a handshake (e.g. an alert at close)
	}
	return protocol, cipher, out, errOrNil(err)
}

func errOrNil(err error) error {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return nil // a refused handshake: the caller looks at protocol and cipher
	}
	return err
}
