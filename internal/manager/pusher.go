package manager

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"tlsfleet/internal/fleetapi"
)

// jobKind says what a call to an agent's port 4118 does.
type jobKind int

const (
	jobPush jobKind = iota // send policy now
	jobPoll                // ask for the status (manager-initiated), then push if the agent runs another policy
	jobCRL                 // put the current revocation list on a relay
)

// agentJob is a copy, taken under the fleet lock, of what a call to an agent needs.
type agentJob struct {
	kind           jobKind
	guid, addr, fp string
	policy         *fleetapi.Policy
}

// key is what at most one queued or running job may have: a CRL push does not wait behind a policy push
// to the same relay.
func (j agentJob) key() string {
	if j.kind == jobCRL {
		return "crl/" + j.guid
	}
	return j.guid
}

// pusher calls agents on their port 4118: a fixed pool of workers takes jobs from a bounded queue, and
// a computer has at most one job queued or running (a second push of the same policy is dropped; a
// newer one waits for the next sync). Each computer has its own connection pool, dropped after
// agentPoolIdle without a call, and at once when the computer leaves the fleet or is deactivated.
type pusher struct {
	log    *slog.Logger
	tlsCfg *tls.Config // the Manager's certificate and the fleet CA; ServerName set per agent
	ackFn  func(ctx context.Context, guid, fp string) error
	status func(guid, fp, serial string, crl *int64) // serial: the certificate the agent's 4118 presented; crl: the CRL it holds
	// crl returns the revocation list in force, as DER (nil: none yet); jobCRL sends what it returns when
	// the job runs, so a queued push never carries an outdated list.
	crl func() []byte

	jobs chan agentJob
	wg   sync.WaitGroup

	mu       sync.Mutex
	inFlight map[string]bool // job keys (GUIDs) with a job queued or running
	// again holds the CRL jobs asked for while one for the same relay was running: that one may have
	// read the list before the change, so it runs once more when it ends.
	again map[string]bool
	pools map[string]*agentPool
}

type agentPool struct {
	t        *http.Transport
	lastUsed time.Time
}

func newPusher(log *slog.Logger, cert func(*tls.CertificateRequestInfo) (*tls.Certificate, error), ca *x509.Certificate, ack func(ctx context.Context, guid, fp string) error,
	status func(guid, fp, serial string, crl *int64), crl func() []byte) *pusher {
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return &pusher{log: log, ackFn: ack, status: status, crl: crl,
		tlsCfg:   &tls.Config{RootCAs: pool, GetClientCertificate: cert, MinVersion: tls.VersionTLS12},
		jobs:     make(chan agentJob, pushQueue),
		inFlight: map[string]bool{}, again: map[string]bool{}, pools: map[string]*agentPool{}}
}

// run starts the workers and the pool sweeper; they stop with ctx.
func (p *pusher) run(ctx context.Context) {
	for range pushWorkers {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			for {
				select {
				case <-ctx.Done():
					return
				case j := <-p.jobs:
					p.do(ctx, j)
				}
			}
		}()
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		t := time.NewTicker(agentPoolIdle / 2)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case now := <-t.C:
				p.sweep(now)
			}
		}
	}()
}

// wait waits for the workers after their context ended, and closes every pool.
func (p *pusher) wait() {
	p.wg.Wait()
	p.mu.Lock()
	defer p.mu.Unlock()
	for guid, ap := range p.pools {
		ap.t.CloseIdleConnections()
		delete(p.pools, guid)
	}
}

// enqueue queues a job unless the computer has one already; a full queue drops it (the next sync, a
// second later, queues it again). It reports whether the job was queued.
func (p *pusher) enqueue(j agentJob) bool {
	p.mu.Lock()
	if p.inFlight[j.key()] {
		if j.kind == jobCRL {
			p.again[j.key()] = true
		}
		p.mu.Unlock()
		return false
	}
	p.inFlight[j.key()] = true
	p.mu.Unlock()
	select {
	case p.jobs <- j:
		return true
	default:
		p.mu.Lock()
		delete(p.inFlight, j.key())
		p.mu.Unlock()
		p.log.Warn("too many agent calls queued; this one waits for the next sync", "guid", j.guid, "queued", pushQueue)
		return false
	}
}

func (p *pusher) do(ctx context.Context, j agentJob) {
	for {
		p.call(ctx, j)
		p.mu.Lock()
		again := p.again[j.key()] && ctx.Err() == nil
		delete(p.again, j.key())
		if !again {
			delete(p.inFlight, j.key())
		}
		p.mu.Unlock()
		if !again {
			return
		}
	}
}

// call makes one agent call and logs a failure.
func (p *pusher) call(ctx context.Context, j agentJob) {
	var err error
	switch j.kind {
	case jobPoll:
		err = p.poll(ctx, j)
	case jobCRL:
		err = p.putCRL(ctx, j)
	default:
		err = p.push(ctx, j)
	}
	if err != nil && ctx.Err() == nil {
		p.log.Info("agent call failed; the agent gets its policy at its next heartbeat or poll", "guid", j.guid, "addr", j.addr, "err", err)
	}
}

// client calls one agent with the Manager's certificate; the agent must present the certificate the
// fleet CA issued to its GUID.
func (p *pusher) client(guid string) *http.Client {
	p.mu.Lock()
	defer p.mu.Unlock()
	ap := p.pools[guid]
	if ap == nil {
		cfg := p.tlsCfg.Clone()
		cfg.ServerName = guid
		ap = &agentPool{t: &http.Transport{TLSClientConfig: cfg, MaxIdleConnsPerHost: 1, IdleConnTimeout: agentIdleConn}}
		p.pools[guid] = ap
	}
	ap.lastUsed = time.Now()
	return &http.Client{Timeout: agentCallTimeout, Transport: ap.t}
}

// sweep drops the pools not used for agentPoolIdle.
func (p *pusher) sweep(now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for guid, ap := range p.pools {
		if now.Sub(ap.lastUsed) > agentPoolIdle && !p.busy(guid) {
			ap.t.CloseIdleConnections()
			delete(p.pools, guid)
		}
	}
}

// forget drops the pools of computers that left the fleet or are deactivated (live maps GUID to
// "active").
func (p *pusher) forget(live map[string]bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for guid, ap := range p.pools {
		if !live[guid] && !p.busy(guid) {
			ap.t.CloseIdleConnections()
			delete(p.pools, guid)
		}
	}
}

// busy reports whether a computer has a job queued or running (p.mu held).
func (p *pusher) busy(guid string) bool {
	return p.inFlight[guid] || p.inFlight[agentJob{kind: jobCRL, guid: guid}.key()]
}

// poolCount is how many connection pools are open (tests).
func (p *pusher) poolCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.pools)
}

// push sends a policy to an agent's port 4118 ("send policy now") and records the acknowledgement.
func (p *pusher) push(ctx context.Context, j agentJob) error {
	b, err := json.Marshal(j.policy)
	if err != nil {
		return fmt.Errorf("encode the policy: %w", err)
	}
	if ok, err := p.put(ctx, j, fleetapi.PathPolicy, "application/json", b, "push", "agent refused the pushed policy"); !ok {
		return err
	}
	if err := p.ackFn(ctx, j.guid, j.fp); err != nil {
		if errors.Is(err, context.Canceled) {
			return err
		}
		p.log.Error("policy pushed, but recording the acknowledgement failed; the next heartbeat reports it", "guid", j.guid, "fingerprint", j.fp, "err", err)
		return nil
	}
	p.log.Info("policy pushed", "guid", j.guid, "fingerprint", j.fp)
	return nil
}

// poll asks an agent for its status and pushes its released policy when the agent runs another.
func (p *pusher) poll(ctx context.Context, j agentJob) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+j.addr+fleetapi.PathStatus, nil)
	if err != nil {
		return err
	}
	resp, err := p.client(j.guid).Do(req)
	if err != nil {
		return fmt.Errorf("status: %w", err)
	}
	var s fleetapi.Status
	err = json.NewDecoder(io.LimitReader(resp.Body, fleetapi.MaxBody)).Decode(&s)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || err != nil {
		p.log.Warn("agent status unreadable", "guid", j.guid, "status", resp.Status, "err", err)
		return nil
	}
	serial := ""
	if resp.TLS != nil && len(resp.TLS.PeerCertificates) > 0 {
		serial = resp.TLS.PeerCertificates[0].SerialNumber.Text(16)
	}
	p.status(j.guid, s.PolicyFingerprint, serial, s.CRLNumber)
	if j.policy != nil && s.PolicyFingerprint != j.fp {
		return p.push(ctx, j)
	}
	return nil
}

// putCRL puts the current revocation list on a relay's port 4118, so that its 4122 refuses a
// deactivated computer at once.
func (p *pusher) putCRL(ctx context.Context, j agentJob) error {
	der := p.crl()
	if der == nil {
		return nil
	}
	if ok, err := p.put(ctx, j, fleetapi.PathCRL, fleetapi.CRLContentType, der, "CRL push (the relay fetches it at its next heartbeat)", "relay refused the pushed CRL"); !ok {
		return err
	}
	p.log.Info("CRL pushed to a relay", "guid", j.guid, "bytes", len(der))
	return nil
}

// put PUTs body to path on an agent's port 4118. It reports whether the agent took it; a refusal is
// logged as refused (with the agent's answer) and is no error: retrying would not change the answer.
func (p *pusher) put(ctx context.Context, j agentJob, path, contentType string, body []byte, what, refused string) (bool, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, "https://"+j.addr+path, bytes.NewReader(body))
	if err != nil {
		return false, err
	}
	req.Header.Set("Content-Type", contentType)
	resp, err := p.client(j.guid).Do(req)
	if err != nil {
		return false, fmt.Errorf("%s: %w", what, err)
	}
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		p.log.Warn(refused, "guid", j.guid, "status", resp.Status, "answer", string(bytes.TrimSpace(msg)))
		return false, nil
	}
	return true, nil
}
