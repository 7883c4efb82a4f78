package image

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// PushOptions says how to push.
type PushOptions struct {
	// Insecure lists registries (host or host:port) to reach over plain HTTP; localhost and
	// 127.0.0.1 registries always are.
	Insecure []string
	// Keychain supplies credentials; nil means the docker config.json keychain.
	Keychain authn.Keychain
	// Transport carries the requests; nil means http.DefaultTransport.
	Transport http.RoundTripper
}

// PushReport says what a push did.
type PushReport struct {
	Ref            string   `json:"ref"`
	ManifestDigest string   `json:"manifest_digest"`
	Uploaded       []string `json:"uploaded"` // digests of the blobs sent (layers, config)
}

// Push uploads the local image ref to the registry ref names, under that name. Blobs the
// registry already has (checked with HEAD first, or mounted from another repository of the
// same registry) are not uploaded again.
func (s *Store) Push(ctx context.Context, ref string, opts PushOptions) (*PushReport, error) {
	rec, err := s.Get(ref)
	if err != nil {
		return nil, err
	}
	r, err := ParseRef(ref, opts.Insecure)
	if err != nil {
		return nil, err
	}
	img, err := s.V1(rec)
	if err != nil {
		return nil, err
	}
	kc := opts.Keychain
	if kc == nil {
		kc = authn.DefaultKeychain
	}
	base := opts.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	ct := &uploadCounter{base: base}
	if err := remote.Write(r, img, remote.WithContext(ctx), remote.WithAuthFromKeychain(kc), remote.WithTransport(ct)); err != nil {
		return nil, fmt.Errorf("push %s: %w", ref, err)
	}
	d, err := img.Digest()
	if err != nil {
		return nil, err
	}
	return &PushReport{Ref: r.Name(), ManifestDigest: d.String(), Uploaded: ct.digests()}, nil
}

// uploadCounter records the blobs a push completes: the final PUT of an upload session
// carries the blob's digest in its query.
type uploadCounter struct {
	base http.RoundTripper
	mu   sync.Mutex
	got  []string
}

func (u *uploadCounter) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := u.base.RoundTrip(req)
	if err == nil && req.Method == http.MethodPut && strings.Contains(req.URL.Path, "/blobs/uploads/") && resp.StatusCode/100 == 2 {
		if d := req.URL.Query().Get("digest"); d != "" {
			u.mu.Lock()
			u.got = append(u.got, d)
			u.mu.Unlock()
		}
	}
	return resp, err
}

func (u *uploadCounter) digests() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]string{}, u.got...)
}
