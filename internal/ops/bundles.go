package ops

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"tlsfleet/internal/pki"
	"tlsfleet/internal/store"
)

// MaxBundleSize bounds an update bundle.
const MaxBundleSize = 256 << 20

// BundlesDir is the install folder's subfolder that holds the bundles' bytes, named by SHA-256.
const BundlesDir = "bundles"

// CheckBundleName validates a bundle's name without the database.
func CheckBundleName(name string) error {
	return checkLabel("name", "a bundle name", strings.TrimSpace(name), MaxBundleName)
}

// BundleResult is what PublishBundle did.
type BundleResult struct {
	Name    string `json:"name"`
	SHA256  string `json:"sha256"`
	Size    int64  `json:"size"`
	Path    string `json:"path"`
	Changed bool   `json:"changed"`
	*ReleaseReport
}

// PublishBundle publishes an update bundle for the relays to mirror (a policy change): its bytes go to
// the install folder first, since a bundle the policies name must be there for the relays to fetch.
func (o *Ops) PublishBundle(ctx context.Context, name string, data []byte) (BundleResult, error) {
	name = strings.TrimSpace(name)
	if err := CheckBundleName(name); err != nil {
		return BundleResult{}, err
	}
	if len(data) == 0 || len(data) > MaxBundleSize {
		return BundleResult{}, invalid("file", "{field} has %d bytes; a bundle has 1 byte to 256 MiB (%d bytes)", len(data), MaxBundleSize)
	}
	if err := o.writable(); err != nil {
		return BundleResult{}, err
	}
	sum := sha256.Sum256(data)
	b := store.Bundle{SHA256: hex.EncodeToString(sum[:]), Name: name, Size: int64(len(data))}
	dir := o.folder.Path(BundlesDir)
	res := BundleResult{Name: b.Name, SHA256: b.SHA256, Size: b.Size, Path: filepath.Join(dir, b.SHA256), Changed: true}
	published, err := o.store.Bundles(ctx)
	if err != nil {
		return res, err
	}
	for _, p := range published {
		if p.SHA256 == b.SHA256 && p.Name == b.Name {
			res.Changed = false
		}
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return res, err
	}
	if err := pki.WriteFile(res.Path, data, 0o644); err != nil {
		return res, fmt.Errorf("write the bundle: %w", err)
	}
	if err := os.Chmod(res.Path, 0o644); err != nil {
		return res, err
	}
	if !res.Changed {
		return res, nil
	}
	before, err := o.sentPolicies(ctx)
	if err != nil {
		return res, err
	}
	if err := o.store.AddBundle(ctx, b); err != nil {
		return res, err
	}
	if res.ReleaseReport, err = o.releaseSince(ctx, before); err != nil {
		return res, fmt.Errorf("bundle %q published, but releasing the policies failed: %w; send them with dsm_c -action sendpolicy", name, err)
	}
	return res, nil
}
