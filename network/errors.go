package network

import "errors"

// Error categories, checked with errors.Is. Every error the package returns that falls in one
// of these wraps it and says what was being done to which object.
var (
	ErrNotFound  = errors.New("not found")
	ErrConflict  = errors.New("conflict")
	ErrInvalid   = errors.New("invalid")
	ErrExhausted = errors.New("no free address space")
)
