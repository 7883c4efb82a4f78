package volumes

import "errors"

// Error categories, checked with errors.Is; every error this package returns that falls into one
// of them wraps the sentinel and says which volume or mount it is about.
var (
	ErrNotFound = errors.New("not found")
	ErrExists   = errors.New("already exists")
	ErrInvalid  = errors.New("invalid")
	ErrInUse    = errors.New("in use")
	// ErrRefused marks a mount that could hand the container a part of the host (the host's /,
	// /proc, the state root, a symlink leading out of the rootfs).
	ErrRefused = errors.New("refused")
)
