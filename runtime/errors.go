package runtime

import "errors"

// Error categories, checked with errors.Is. Every error the runtime returns wraps at most one.
var (
	ErrNotFound   = errors.New("not found")
	ErrExists     = errors.New("already exists")
	ErrInvalid    = errors.New("invalid")
	ErrNotRunning = errors.New("not running")
	ErrConflict   = errors.New("conflict")
)

// StepError is a failure of the container init or the exec helper, naming the setup step
// that failed ("mount /proc", "pivot_root", "set capabilities", ...).
type StepError struct {
	Step string `json:"step"`
	Msg  string `json:"error"`
}

func (e *StepError) Error() string { return e.Step + ": " + e.Msg }
