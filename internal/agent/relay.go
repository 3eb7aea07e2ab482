package agent

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"tlsfleet/internal/fleetapi"
	"tlsfleet/internal/tlspolicy"
)

// maxBundle bounds a download whose size the policy leaves at 0.
const maxBundle = 4 << 30

// bundleTimeout bounds one bundle download.
const bundleTimeout = 30 * time.Minute

func bundlesPath(dir string) string { return filepath.Join(dir, BundlesDir) }

// validSHA reports whether s is a bundle name: 64 lowercase hex digits.
func validSHA(s string) bool {
	return len(s) == 64 && strings.Trim(s, "0123456789abcdef") == ""
}

// fileStamp identifies a file's content cheaply (size and modification time), to hash each file once.
type fileStamp struct {
	size int64
	mod  time.Time
}

func stampOf(fi os.FileInfo) fileStamp { return fileStamp{fi.Size(), fi.ModTime()} }

// relayGUIDKey carries, in a download's context, the GUID the relay's certificate must name.
type relayGUIDKey struct{}

// newRelayClient is the client agents download bundles from relays with. A relay's certificate names its
// GUID, not its address, so the chain is checked against the fleet CA (ExtKeyUsage ServerAuth) without
// a host name, in VerifyConnection (which also runs on resumed sessions).
func newRelayClient(id *identity, legacyMax tlspolicy.Version) *http.Client {
	cfg := clientConfig(legacyMax)
	cfg.InsecureSkipVerify = true // replaced by VerifyConnection below
	cfg.Certificates = []tls.Certificate{id.client}
	cfg.ClientSessionCache = tls.NewLRUClientSessionCache(16)
	cfg.NextProtos = []string{"http/1.1"}
	chain := verifyFleetPeer(id.pool, x509.ExtKeyUsageServerAuth)
	dialer := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	return &http.Client{Transport: &http.Transport{
		// The relay must present the certificate of the GUID the policy names for its address (when the
		// policy names one): the request's context carries it to the handshake.
		DialTLSContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			raw, err := dialer.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			c := cfg.Clone()
			want, _ := ctx.Value(relayGUIDKey{}).(string)
			c.VerifyConnection = func(cs tls.ConnectionState) error {
				if err := chain(cs); err != nil {
					return err
				}
				if got := cs.PeerCertificates[0].Subject.CommonName; want != "" && got != want {
					return fmt.Errorf("the relay at %s presented the certificate of %s, not of the relay %s the policy names", addr, got, want)
				}
				return nil
			}
			tc := tls.Client(raw, c)
			if err := tc.HandshakeContext(ctx); err != nil {
				raw.Close()
				return nil, err
			}
			return tc, nil
		},
		TLSHandshakeTimeout:   15 * time.Second,
		ResponseHeaderTimeout: 30 * time.Second,
		MaxIdleConnsPerHost:   1,
		IdleConnTimeout:       2 * time.Minute,
	}}
}

func (s *session) kickSync() {
	select {
	case s.syncWake <- struct{}{}:
	default:
	}
}

// syncLoop fetches missing bundles whenever the policy changes or a heartbeat went through.
func (s *session) syncLoop() {
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-s.syncWake:
		}
		s.syncBundles(s.ctx)
	}
}

// syncBundles fetches every bundle of the policy that is not on disk: a relay mirrors it from the
// Manager, an agent downloads it from its relays in the policy's order.
func (s *session) syncBundles(ctx context.Context) {
	p := s.currentPolicy()
	if p == nil {
		return
	}
	dir := bundlesPath(s.a.o.Dir)
	for _, b := range p.Bundles {
		if ctx.Err() != nil {
			return
		}
		if _, err := os.Stat(filepath.Join(dir, b.SHA256)); err == nil {
			continue
		}
		if p.Relay != nil {
			url := "https://" + s.managerAddr() + fleetapi.PathBundles + b.SHA256
			if err := s.fetch(ctx, s.client, url, b, dir); err != nil {
				s.a.warn("relay: mirroring a bundle from the Manager failed; retrying at the next heartbeat", "bundle", b.Name, "sha256", b.SHA256, "err", err)
			} else {
				s.a.info("relay: bundle mirrored from the Manager", "bundle", b.Name, "sha256", b.SHA256, "size", b.Size)
			}
			continue
		}
		if len(p.Relays) == 0 {
			s.a.warn("the policy names no relay to download a bundle from", "bundle", b.Name, "sha256", b.SHA256)
			continue
		}
		var errs []string
		done := false
		for _, r := range p.Relays {
			url := "https://" + r + fleetapi.PathRelayBundles + b.SHA256
			err := s.fetch(context.WithValue(ctx, relayGUIDKey{}, p.RelayIDs[r]), s.relayClient, url, b, dir)
			if err == nil {
				s.a.info("bundle downloaded from a relay", "bundle", b.Name, "sha256", b.SHA256, "relay", r)
				done = true
				break
			}
			if ctx.Err() != nil {
				return
			}
			if s.a.legacyMax != 0 {
				host, _, _ := net.SplitHostPort(r)
				if line := ExplainRefusal("the relay "+r, s.a.legacyMax, err, ProbeLowestVersion(ctx, r, host, s.a.legacyMax)); line != "" {
					s.a.log.Warn(line)
				}
			}
			errs = append(errs, r+": "+err.Error())
		}
		if !done {
			s.a.warn("every relay failed to deliver a bundle; retrying at the next heartbeat", "bundle", b.Name, "sha256", b.SHA256, "errors", strings.Join(errs, "; "))
		}
	}
}

// fetch downloads one bundle into dir, keeping it only when its size and SHA-256 match the policy.
func (s *session) fetch(ctx context.Context, client *http.Client, url string, b fleetapi.Bundle, dir string) error {
	stamp, err := fetchBundle(ctx, client, url, b, dir)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.verified[b.SHA256] = stamp
	s.mu.Unlock()
	return nil
}

// fetchBundle streams url into a temporary file in dir while hashing it, and renames it to its SHA-256
// only when size and hash match.
func fetchBundle(ctx context.Context, client *http.Client, url string, b fleetapi.Bundle, dir string) (fileStamp, error) {
	if !validSHA(b.SHA256) {
		return fileStamp{}, fmt.Errorf("bundle %q: bad SHA-256 %q", b.Name, b.SHA256)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fileStamp{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, bundleTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fileStamp{}, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return fileStamp{}, unwrapURL(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		raw, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fileStamp{}, fmt.Errorf("%s: %s", resp.Status, errorMessage(raw))
	}
	limit := b.Size
	if limit <= 0 {
		limit = maxBundle
	}
	f, err := os.CreateTemp(dir, ".partial-"+b.SHA256[:16]+"-*")
	if err != nil {
		return fileStamp{}, err
	}
	keep := false
	defer func() {
		if !keep {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return fileStamp{}, fmt.Errorf("download: %w", err)
	}
	switch {
	case n > limit:
		return fileStamp{}, fmt.Errorf("sent more than %d bytes: discarded", limit)
	case b.Size > 0 && n != b.Size:
		return fileStamp{}, fmt.Errorf("sent %d bytes, the policy says %d: discarded", n, b.Size)
	}
	if sum := hex.EncodeToString(h.Sum(nil)); sum != b.SHA256 {
		return fileStamp{}, fmt.Errorf("sent a bundle whose SHA-256 is %s, not %s: discarded", sum, b.SHA256)
	}
	if err := f.Sync(); err != nil {
		return fileStamp{}, err
	}
	if err := f.Chmod(0o644); err != nil {
		return fileStamp{}, err
	}
	if err := f.Close(); err != nil {
		return fileStamp{}, err
	}
	final := filepath.Join(dir, b.SHA256)
	if err := os.Rename(f.Name(), final); err != nil {
		return fileStamp{}, err
	}
	keep = true
	fi, err := os.Stat(final)
	if err != nil {
		return fileStamp{}, err
	}
	return stampOf(fi), nil
}

// relayHandler serves the relay port: GET /bundles/SHA256.
func (s *session) relayHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+fleetapi.PathRelayBundles+"{sha}", s.serveBundle)
	return mux
}

// serveBundle serves a bundle after checking (once per file version) that its content still has its
// SHA-256; a corrupted file is removed, mirrored again, and refused with 404 so that the agent tries its
// next relay.
func (s *session) serveBundle(w http.ResponseWriter, r *http.Request) {
	// The handshake lets anyone in (so that scanners and the page's openssl check see the relay's TLS);
	// bundles go only to the fleet's computers, and not to deactivated ones.
	if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 {
		writeError(w, http.StatusUnauthorized, "bundles are for this fleet's computers: present the agent certificate")
		return
	}
	if err := s.checkRevoked(*r.TLS); err != nil { // a connection kept alive across a revocation
		s.a.warn("relay: refused a revoked certificate", "err", err, "client", r.RemoteAddr)
		writeError(w, http.StatusForbidden, "%v", err)
		return
	}
	if p := s.currentPolicy(); p != nil && p.Relay != nil && slices.Contains(p.Relay.Denied, r.TLS.PeerCertificates[0].Subject.CommonName) {
		s.a.warn("relay: refused a deactivated computer", "guid", r.TLS.PeerCertificates[0].Subject.CommonName, "client", r.RemoteAddr)
		writeError(w, http.StatusForbidden, "computer %s is deactivated", r.TLS.PeerCertificates[0].Subject.CommonName)
		return
	}
	sha := r.PathValue("sha")
	if !validSHA(sha) {
		writeError(w, http.StatusNotFound, "%q is not a bundle name (64 lowercase hex digits)", sha)
		return
	}
	path := filepath.Join(bundlesPath(s.a.o.Dir), sha)
	f, err := os.Open(path)
	if err != nil {
		writeError(w, http.StatusNotFound, "bundle %s is not on this relay", sha)
		return
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		writeError(w, http.StatusNotFound, "bundle %s is not on this relay", sha)
		return
	}
	s.mu.Lock()
	ok := s.verified[sha] == stampOf(fi)
	s.mu.Unlock()
	if !ok {
		h := sha256.New()
		if _, err := io.Copy(h, f); err != nil {
			writeError(w, http.StatusInternalServerError, "reading bundle %s: %v", sha, err)
			return
		}
		if sum := hex.EncodeToString(h.Sum(nil)); sum != sha {
			s.a.error("relay: a bundle on disk is corrupted: removed, mirroring it again", "sha256", sha, "content_sha256", sum)
			os.Remove(path)
			s.mu.Lock()
			delete(s.verified, sha)
			s.mu.Unlock()
			s.kickSync()
			writeError(w, http.StatusNotFound, "bundle %s is corrupted on this relay: try another relay", sha)
			return
		}
		s.mu.Lock()
		s.verified[sha] = stampOf(fi)
		s.mu.Unlock()
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			writeError(w, http.StatusInternalServerError, "%v", err)
			return
		}
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	http.ServeContent(w, r, "", fi.ModTime(), f)
}
