package spec

import (
	"errors"
)

// The stack-load executable runs compose-go for the CLI, so that the stack binary links neither
// compose-go nor its JSON schema compiler. The CLI writes one LoaderRequest as JSON to its
// stdin and reads one LoaderResponse from its stdout; the loader's stderr is the CLI's.

// Loader operations.
const (
	LoaderOpLoad          = "load"           // the stack: LoaderResponse.Loaded
	LoaderOpProject       = "project"        // compose-go's normalized project, as stack config prints it: Output
	LoaderOpSupportedKeys = "supported-keys" // the supported-keys table of the README: Output
)

// LoaderRequest asks the loader for one operation on the stack file(s) of Options.
type LoaderRequest struct {
	Op      string
	Options Options
	Format  string `json:",omitempty"` // project: yaml or json
}

// LoaderResponse is the loader's answer: Loaded (load) or Output (project, supported-keys),
// and Loaded.Stack for project too; or Error.
type LoaderResponse struct {
	Loaded *Loaded      `json:",omitempty"`
	Output []byte       `json:",omitempty"`
	Error  *LoaderError `json:",omitempty"`
}

// LoaderError carries a load's error across the process boundary, keeping what callers test
// for: the Problems of an invalid file, and ErrNoStackFile.
type LoaderError struct {
	Problems    Problems `json:",omitempty"`
	Message     string   `json:",omitempty"`
	NoStackFile bool     `json:",omitempty"`
}

// NewLoaderError is the LoaderError of err.
func NewLoaderError(err error) *LoaderError {
	var ps Problems
	if errors.As(err, &ps) && len(ps) > 0 {
		return &LoaderError{Problems: ps}
	}
	return &LoaderError{Message: err.Error(), NoStackFile: errors.Is(err, ErrNoStackFile)}
}

// Err is the error e stands for: a Problems list, an error that is ErrNoStackFile, or one with
// the loader's message.
func (e *LoaderError) Err() error {
	switch {
	case len(e.Problems) > 0:
		return e.Problems
	case e.NoStackFile:
		return &noStackFileError{msg: e.Message}
	default:
		return errors.New(e.Message)
	}
}

type noStackFileError struct{ msg string }

func (e *noStackFileError) Error() string { return e.msg }
func (e *noStackFileError) Unwrap() error { return ErrNoStackFile }
