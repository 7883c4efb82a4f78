// Package image owns stack's image store under <state root>/images: content-addressed blobs
// (sha256, verified on write), image records (references -> manifest and config digests),
// layers unpacked once each into a directory keyed by chain ID and shared by every image that
// has them, pulling from OCI distribution registries, loading and saving docker-archive and OCI
// archives, the overlay mount that gives a container its rootfs, and container defaults
// derived from an image config.
//
// It unpacks layers itself (go-containerregistry only fetches and describes them), resolving
// every path inside the layer directory. It must not start containers or know about services.
package image

import "errors"

// Error categories, checked with errors.Is.
var (
	ErrNotFound       = errors.New("not found")
	ErrInvalidLayer   = errors.New("invalid layer")
	ErrInUse          = errors.New("in use")
	ErrInvalid        = errors.New("invalid")
	ErrDigestMismatch = errors.New("digest mismatch")
)
