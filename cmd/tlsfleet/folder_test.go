package main

import (
	"bufio"
	"bytes"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"tlsfleet/internal/install"
	"tlsfleet/internal/ops"
	"tlsfleet/internal/pki"
	"tlsfleet/internal/store"
	"tlsfleet/internal/testtarget"
)

// A second `tlsfleet manager` on a folder another one runs on, with other ports, exits 1 naming the
// running one's PID.
func TestSecondManagerRefused(t *testing.T) {
	bin := buildBinary(t)
	dir := filepath.Join(t.TempDir(), "manager")
	args := func() []string {
		return []string{"manager", "--dir", dir, "--console-port", strconv.Itoa(testtarget.FreePort(t)),
			"--heartbeat-port", strconv.Itoa(testtarget.FreePort(t)), "--listen", "127.0.0.1"}
	}
	first := exec.Command(bin, args()...)
	out, err := first.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { first.Process.Kill(); first.Wait() })
	up := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "tlsfleet Manager is running") {
				up <- true
			}
		}
		close(up)
	}()
	select {
	case ok := <-up:
		if !ok {
			t.Fatal("the first Manager exited before it ran")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the first Manager did not start")
	}
	second := exec.Command(bin, args()...)
	var b bytes.Buffer
	second.Stdout, second.Stderr = &b, &b
	err = second.Run()
	if code := second.ProcessState.ExitCode(); code != 1 || !strings.Contains(b.String(), "another Manager (PID "+strconv.Itoa(first.Process.Pid)+",") {
		t.Errorf("the second Manager: exit %d (%v)\n%s\nwant exit 1 naming PID %d", code, err, b.String(), first.Process.Pid)
	}
}

// `tlsfleet policy --dir` describes the install's own certificate: after a rotation to RSA it reports
// an RSA key and the ECDHE_RSA suites.
func TestPolicySeesRotatedCert(t *testing.T) {
	dir := t.TempDir()
	if _, err := install.Init(dir, 4119, 4120); err != nil {
		t.Fatal(err)
	}
	ca, err := pki.LoadCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ca.LoadOrCreateServer(dir, pki.ECDSAP256, nil); err != nil {
		t.Fatal(err)
	}
	policy := func() string {
		t.Helper()
		var stdout, stderr bytes.Buffer
		if err := run(t.Context(), []string{"policy", "--dir", dir, "--port", "4119"}, &stdout, &stderr); err != nil {
			t.Fatalf("policy: %v\n%s", err, stderr.String())
		}
		return stdout.String()
	}
	if got := policy(); !strings.Contains(got, "EC 256") || !strings.Contains(got, "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256") {
		t.Fatalf("before the rotation:\n%s", got)
	}
	folder, err := install.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	db, err := store.Open(t.Context(), folder.DBPath)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := ops.New(db, folder, nil).RotateManagerCert(t.Context(), ops.CertRequest{Key: "rsa"}); err != nil {
		t.Fatal(err)
	}
	got := policy()
	if !strings.Contains(got, "RSA 2048") || !strings.Contains(got, "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256") || strings.Contains(got, "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256\n") {
		t.Errorf("after the rotation to RSA:\n%s", got)
	}
}
