package tlspolicy

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
)

// Observer is told about every ClientHello a listener receives, with the listener's decision, before the
// handshake goes on. It runs on the handshake path: keep it cheap and never block.
type Observer func(hello *tls.ClientHelloInfo, d Decision)

// ServerOptions are the parts of a listener's TLS configuration that do not come from the policy.
type ServerOptions struct {
	Certificate tls.Certificate
	ClientAuth  tls.ClientAuthType
	ClientCAs   *x509.CertPool
	// NextProtos are the ALPN protocols the listener wants. "h2" is dropped for handshakes whose
	// negotiated suite HTTP/2 forbids (RFC 9113 §9.2.2: TLS 1.2 needs an ephemeral AEAD suite).
	NextProtos []string
	Observer   Observer
	// VerifyConnection, when set, also decides every handshake that presents a client certificate or
	// resumes a session made with one (the fleet's revocation list): an error refuses it. It runs after
	// the policy's own checks of the peer's chain.
	VerifyConnection func(tls.ConnectionState) error
}

// Server holds a listener's current policy and serves it through GetConfigForClient, so that Update
// takes effect on the next handshake without a restart.
type Server struct {
	opts  ServerOptions
	cert  CertInfo
	state atomic.Pointer[serverState]
}

type serverState struct {
	policy *Policy
	// full offers NextProtos; noH2 offers NextProtos without h2. Key 0 holds the unpinned configs. When the
	// policy's versions have a gap (say TLSv1 and TLSv1.2 without TLSv1.1), MinVersion/MaxVersion cannot say
	// so, and a client whose best version falls into the gap gets a config pinned by negotiateVersion.
	full, noH2 map[Version]*tls.Config
	gap        bool
	// ticketKey encrypts the session tickets issued under this policy only: after Update, tickets from the
	// old policy no longer decrypt, so no session negotiated under it can be resumed past the new rules.
	ticketKey [32]byte
}

// NewServer builds a Server for a policy.
func NewServer(p *Policy, opts ServerOptions) (*Server, error) {
	if len(opts.Certificate.Certificate) == 0 {
		return nil, errors.New("tlspolicy: a listener needs a certificate")
	}
	ci, err := CertInfoOf(opts.Certificate)
	if err != nil {
		return nil, err
	}
	s := &Server{opts: opts, cert: ci}
	if err := s.Update(p); err != nil {
		return nil, err
	}
	return s, nil
}

// Cert describes the listener's certificate (for Layers.Cert).
func (s *Server) Cert() CertInfo { return s.cert }

// Policy returns the policy in force.
func (s *Server) Policy() *Policy { return s.state.Load().policy }

// Update swaps in a new policy; handshakes that start afterwards use it.
func (s *Server) Update(p *Policy) error {
	if p == nil {
		return errors.New("tlspolicy: nil policy")
	}
	if p.Cert != s.cert {
		return fmt.Errorf("tlspolicy: policy computed for a %s certificate, listener serves %s; pass Server.Cert() in Layers.Cert", p.Cert, s.cert)
	}
	st := &serverState{policy: p, full: map[Version]*tls.Config{}, noH2: map[Version]*tls.Config{}}
	if _, err := rand.Read(st.ticketKey[:]); err != nil {
		return fmt.Errorf("tlspolicy: session ticket key: %w", err)
	}
	for i := 1; i < len(p.Versions); i++ {
		st.gap = st.gap || p.Versions[i] != p.Versions[i-1]+1
	}
	noH2 := slices.DeleteFunc(slices.Clone(s.opts.NextProtos), func(p string) bool { return p == "h2" })
	keys := []Version{0}
	if st.gap {
		keys = append(keys, p.Versions...)
	}
	for _, v := range keys {
		for _, c := range []struct {
			m      map[Version]*tls.Config
			protos []string
		}{{st.full, s.opts.NextProtos}, {st.noH2, noH2}} {
			cfg := s.build(p, v, c.protos)
			cfg.SetSessionTicketKeys([][32]byte{st.ticketKey})
			c.m[v] = cfg
		}
	}
	s.state.Store(st)
	return nil
}

func (s *Server) build(p *Policy, pin Version, protos []string) *tls.Config {
	cfg := &tls.Config{
		MinVersion:       uint16(p.MinVersion()),
		MaxVersion:       uint16(p.MaxVersion()),
		CipherSuites:     append([]uint16{}, p.Suites...),
		CurvePreferences: append([]tls.CurveID{}, p.Groups...),
		Certificates:     []tls.Certificate{s.opts.Certificate},
		ClientAuth:       s.opts.ClientAuth,
		ClientCAs:        s.opts.ClientCAs,
		NextProtos:       protos,
	}
	if p.SignatureSchemes != nil {
		c := s.opts.Certificate
		c.SupportedSignatureAlgorithms = append([]tls.SignatureScheme{}, p.SignatureSchemes...)
		if len(c.SupportedSignatureAlgorithms) == 0 {
			c.SupportedSignatureAlgorithms = []tls.SignatureScheme{0xFFFF} // none Go can use: every signature fails
		}
		cfg.Certificates = []tls.Certificate{c}
	}
	if pin != 0 {
		cfg.MinVersion, cfg.MaxVersion = uint16(pin), uint16(pin)
	}
	if len(p.Versions) == 0 {
		// No version left: a config that accepts nothing Go can negotiate.
		cfg.MinVersion, cfg.MaxVersion = tls.VersionTLS13, tls.VersionTLS12
	}
	if len(cfg.CurvePreferences) == 0 {
		// An empty list would mean Go's defaults; a group no client offers means none.
		cfg.CurvePreferences = []tls.CurveID{0xFFFF}
	}
	cfg.VerifyConnection = s.verifyPeer(p)
	return cfg
}

// verifyPeer is the configuration's VerifyConnection, which, unlike VerifyPeerCertificate, also runs
// when a session is resumed: java.security's rules for the peer's chain, then the listener's own hook.
func (s *Server) verifyPeer(p *Policy) func(tls.ConnectionState) error {
	rules, hook := p.PeerRules, s.opts.VerifyConnection
	if s.opts.ClientAuth == tls.NoClientCert {
		rules = nil
	}
	if len(rules) == 0 && hook == nil {
		return nil
	}
	return func(cs tls.ConnectionState) error {
		if len(rules) > 0 {
			if err := checkPeerChain(rules, cs.PeerCertificates, cs.VerifiedChains); err != nil {
				return err
			}
		}
		if hook != nil && len(cs.PeerCertificates) > 0 {
			return hook(cs)
		}
		return nil
	}
}

// TLSConfig returns the listener's configuration: every handshake reads the current policy through
// GetConfigForClient.
func (s *Server) TLSConfig() *tls.Config {
	return &tls.Config{
		MinVersion:         tls.VersionTLS10,
		Certificates:       []tls.Certificate{s.opts.Certificate},
		NextProtos:         s.opts.NextProtos,
		GetConfigForClient: s.configForClient,
	}
}

func (s *Server) configForClient(hello *tls.ClientHelloInfo) (*tls.Config, error) {
	st := s.state.Load()
	d := Evaluate(st.policy, hello)
	useH2 := d.Accepted && (d.Version == TLSv1_3 || http2Suite(d.Suite))
	cfgs := st.noH2
	if useH2 {
		cfgs = st.full
	}
	key := Version(0)
	if st.gap {
		_, key = negotiateVersion(st.policy, clientVersionsOf(hello))
	}
	cfg := cfgs[key]
	if d.Accepted && !alpnAgrees(cfg.NextProtos, hello.SupportedProtos) {
		why := fmt.Sprintf("client asks only for %s; port %d offers %s", strings.Join(hello.SupportedProtos, ", "), st.policy.Listener.Port, strings.Join(cfg.NextProtos, ", "))
		if !useH2 && slices.Contains(s.opts.NextProtos, "h2") {
			why += fmt.Sprintf(" (HTTP/2 cannot run over %s %s)", d.Version, SuiteName(d.Suite))
		}
		d = Decision{Alert: "no_application_protocol", Reason: why}
	}
	if s.opts.Observer != nil {
		s.opts.Observer(hello, d)
	}
	if st.policy.CertError != "" {
		return nil, errors.New(st.policy.CertError)
	}
	return cfg, nil
}

// alpnAgrees mirrors Go's ALPN negotiation: it fails only when both sides list protocols, none is common,
// and it is not an HTTP/1.1 client meeting an h2 server (which Go lets through without ALPN).
func alpnAgrees(ours, client []string) bool {
	if len(ours) == 0 || len(client) == 0 {
		return true
	}
	for _, o := range ours {
		for _, c := range client {
			if o == c || o == "h2" && c == "http/1.1" {
				return true
			}
		}
	}
	return false
}

// http2Suite reports whether HTTP/2 may run over a TLS 1.2 suite: ephemeral key exchange and AEAD.
func http2Suite(id uint16) bool {
	s, ok := SuiteByID(id)
	return ok && s.ForwardSecret() && s.AEAD()
}

// CertInfoOf describes a certificate's key and signature.
func CertInfoOf(c tls.Certificate) (CertInfo, error) {
	leaf := c.Leaf
	if leaf == nil {
		var err error
		if leaf, err = x509.ParseCertificate(c.Certificate[0]); err != nil {
			return CertInfo{}, fmt.Errorf("tlspolicy: parse certificate: %w", err)
		}
	}
	fam, bits := keyOf(leaf.PublicKey)
	if fam == "" {
		return CertInfo{}, fmt.Errorf("tlspolicy: unsupported certificate key %T", leaf.PublicKey)
	}
	return CertInfo{KeyAlgorithm: fam, KeyBits: bits, SignatureAlgorithm: leaf.SignatureAlgorithm.String()}, nil
}

func keyOf(pub any) (string, int) {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return "RSA", k.N.BitLen()
	case *ecdsa.PublicKey:
		return "EC", k.Curve.Params().BitSize
	case ed25519.PublicKey:
		return "Ed25519", 255
	}
	return "", 0
}

// checkPeerChain applies java.security's key and signature rules to a peer's chain, except to the trust
// anchor at its end (as the JDK does).
func checkPeerChain(rules []DisabledEntry, peer []*x509.Certificate, chains [][]*x509.Certificate) error {
	chain := peer
	if len(chains) > 0 {
		chain = chains[0]
		if len(chain) > 1 {
			chain = chain[:len(chain)-1]
		}
	}
	for _, c := range chain {
		fam, bits := keyOf(c.PublicKey)
		for _, e := range rules {
			if e.forbidsKey(fam, bits) {
				return fmt.Errorf("peer certificate %q has a %s %d key, which java.security entry %q forbids", c.Subject.CommonName, fam, bits, e.Text)
			}
			if e.forbidsCertSignature(c.SignatureAlgorithm.String(), "TLSClient") {
				return fmt.Errorf("peer certificate %q is signed with %s, which java.security entry %q forbids", c.Subject.CommonName, c.SignatureAlgorithm, e.Text)
			}
		}
	}
	return nil
}
