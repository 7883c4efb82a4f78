package planner

import (
	"fmt"

	"github.com/stackrun/stack/spec"
)

// Kind is what an action does.
type Kind int

const (
	PullImage Kind = iota + 1
	BuildImage
	CreateNetwork
	CreateVolume
	CreateContainer
	StartContainer
	StopContainer
	RemoveContainer
	// RecreateContainer replaces a container: the new one is created first, then the old one is
	// stopped and removed (unless DestroyFirst), so a failing create leaves the old one running.
	// Starting the new one is a separate StartContainer action.
	RecreateContainer
	RemoveNetwork
	RemoveVolume
	// RemoveImage removes an image of the project's services after down (--rmi); an image
	// that containers of another project still use is kept, with a warning.
	RemoveImage
)

var kindNames = map[Kind][2]string{
	PullImage:         {"pull", "image"},
	BuildImage:        {"build", "image"},
	CreateNetwork:     {"create", "network"},
	CreateVolume:      {"create", "volume"},
	CreateContainer:   {"create", "container"},
	StartContainer:    {"start", "container"},
	StopContainer:     {"stop", "container"},
	RemoveContainer:   {"remove", "container"},
	RecreateContainer: {"recreate", "container"},
	RemoveNetwork:     {"remove", "network"},
	RemoveVolume:      {"remove", "volume"},
	RemoveImage:       {"remove", "image"},
}

// String names the kind: "pull image", "create container", "remove network".
func (k Kind) String() string {
	if n, ok := kindNames[k]; ok {
		return n[0] + " " + n[1]
	}
	return "unknown"
}

// Verb is the first word of String; with the resource id it makes the action id
// ("create container:web:1").
func (k Kind) Verb() string {
	if n, ok := kindNames[k]; ok {
		return n[0]
	}
	return "unknown"
}

// MarshalText makes kinds appear by name in JSON.
func (k Kind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// UnmarshalText reads a kind written by MarshalText ("create container").
func (k *Kind) UnmarshalText(b []byte) error {
	for kind, n := range kindNames {
		if n[0]+" "+n[1] == string(b) {
			*k = kind
			return nil
		}
	}
	return fmt.Errorf("%w: unknown action kind %q", ErrInvalid, b)
}

// symbol is the one-character change marker of the text rendering.
func (k Kind) symbol() string {
	switch k {
	case RecreateContainer:
		return "~"
	case StopContainer, RemoveContainer, RemoveNetwork, RemoveVolume, RemoveImage:
		return "-"
	}
	return "+"
}

// rank orders independent actions in the rendering: images, networks, volumes, then
// containers, then removals of networks and volumes.
func (k Kind) rank() int {
	switch k {
	case PullImage, BuildImage:
		return 0
	case CreateNetwork:
		return 1
	case CreateVolume:
		return 2
	case RemoveNetwork:
		return 4
	case RemoveVolume:
		return 5
	case RemoveImage:
		return 6
	}
	return 3
}

// Wait is a depends_on condition the engine checks before starting a container: every
// container of Service must meet Condition (spec.ConditionStarted, ...). When Required is false a
// service without containers is skipped.
type Wait struct {
	Service   string `json:"service"`
	Condition string `json:"condition"`
	Required  bool   `json:"required"`
}

// Condition makes an action depend on what is known only at apply time. It holds when the
// image digest after the pull or build differs from the one the container was created from
// (ImageChanged), or when any of the listed conditional actions actually ran (Recreated).
// An action whose condition does not hold is not needed: the engine skips it.
type Condition struct {
	ImageChanged bool     `json:"image_changed,omitempty"`
	Recreated    []string `json:"recreated,omitempty"`
}

// Action is one step of a plan.
type Action struct {
	ID        string   // unique in the plan: "<kind> <resource>", e.g. "start container:web:1"
	Kind      Kind     //
	Resource  string   // container:web:1, network:default, volume:data, image:<ref>
	Reason    string   // short lower-case words: "new", "environment changed (environment.A)", ...
	DependsOn []string // ids of actions that must finish first

	// What the engine needs to execute it.
	Service      *spec.Service // desired service (create, recreate, start, pull, build); for stop and remove the recorded one (may be nil)
	Number       int           // replica number for container actions
	Container    string        // id of the existing container (start, stop, remove, recreate: the old one)
	Image        string        // image reference (pull, build, remove)
	Network      *spec.Network // create or remove network
	Volume       *spec.Volume  // create or remove volume
	Waits        []Wait        // start: depends_on conditions to meet first
	DestroyFirst bool          // recreate: the old container must go before the new is created (container_name, fixed address)
	OnlyIf       *Condition    // nil: always; else only when the condition holds at apply time
}

// Unchanged is a container the plan leaves as it is, with why ("running", "exited (0)").
type Unchanged struct {
	Resource  string `json:"resource"`
	Container string `json:"container"`
	Reason    string `json:"reason"`
}

// Plan is the result of Compute: the actions in a deterministic topological order.
type Plan struct {
	Project     string
	Down        bool
	Fingerprint string // Fingerprint(observed) the plan was made from
	Actions     []*Action
	Unchanged   []Unchanged
	Warnings    []string // things the plan leaves alone but the user should know (orphans)
}

// Empty reports whether applying the plan would change nothing.
func (p *Plan) Empty() bool { return len(p.Actions) == 0 }

// Action returns the action with the given id, or nil.
func (p *Plan) Action(id string) *Action {
	for _, a := range p.Actions {
		if a.ID == id {
			return a
		}
	}
	return nil
}
