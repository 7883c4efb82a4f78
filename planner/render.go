package planner

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// Summary counts what a plan does.
type Summary struct {
	Pull          int `json:"pull"`           // images pulled
	Build         int `json:"build"`          // images built
	Create        int `json:"create"`         // containers, networks, volumes created (pulls and builds not counted)
	Recreate      int `json:"recreate"`       // containers replaced
	MaybeRecreate int `json:"maybe_recreate"` // containers replaced only if a condition holds at apply time
	Start         int `json:"start"`          // existing containers started
	Stop          int `json:"stop"`           // containers stopped for good
	Remove        int `json:"remove"`         // containers, networks, volumes removed
	Unchanged     int `json:"unchanged"`      // containers left as they are
}

// Summary counts the plan's changes.
func (p *Plan) Summary() Summary {
	var s Summary
	for _, a := range p.Actions {
		switch a.Kind {
		case PullImage:
			s.Pull++
		case BuildImage:
			s.Build++
		case CreateContainer, CreateNetwork, CreateVolume:
			s.Create++
		case RecreateContainer:
			if a.OnlyIf != nil {
				s.MaybeRecreate++
			} else {
				s.Recreate++
			}
		case StartContainer:
			if a.Container != "" {
				s.Start++
			}
		case StopContainer:
			s.Stop++
		case RemoveContainer, RemoveNetwork, RemoveVolume, RemoveImage:
			s.Remove++
		}
	}
	s.Unchanged = len(p.Unchanged)
	return s
}

// WriteText writes the plan's one text rendering, terraform-like:
//
//	Plan for project "demo" (up):
//	  + create container:web:1 (new)
//	      after: create network:default, pull image:nginx
//	  ~ recreate container:db:1 (environment changed (environment.A))
//	  - remove container:old:1 (orphan)
//	  = unchanged container:cache:1 (running)
//	  ! a warning
//	Plan: 1 to create, 1 to recreate, 1 to remove, 1 unchanged.
func (p *Plan) WriteText(w io.Writer) error {
	var b strings.Builder
	verb := "up"
	if p.Down {
		verb = "down"
	}
	fmt.Fprintf(&b, "Plan for project %q (%s):\n", p.Project, verb)
	for _, a := range p.Actions {
		fmt.Fprintf(&b, "  %s %s %s (%s)\n", a.Kind.symbol(), a.Kind.Verb(), a.Resource, a.Reason)
		if a.Container != "" && a.Kind != StartContainer {
			fmt.Fprintf(&b, "      container: %s\n", shortID(a.Container))
		}
		if len(a.DependsOn) > 0 {
			fmt.Fprintf(&b, "      after: %s\n", strings.Join(a.DependsOn, ", "))
		}
		for _, wt := range a.Waits {
			opt := ""
			if !wt.Required {
				opt = " (optional)"
			}
			fmt.Fprintf(&b, "      waits: %s %s%s\n", wt.Service, wt.Condition, opt)
		}
		if c := a.OnlyIf; c != nil {
			var why []string
			if c.ImageChanged {
				why = append(why, "the image digest changes")
			}
			for _, id := range c.Recreated {
				why = append(why, id+" runs")
			}
			fmt.Fprintf(&b, "      only if: %s\n", strings.Join(why, " or "))
		}
		if a.DestroyFirst {
			b.WriteString("      old container removed first (fixed name or address)\n")
		}
	}
	for _, u := range p.Unchanged {
		fmt.Fprintf(&b, "  = unchanged %s (%s)\n", u.Resource, u.Reason)
	}
	for _, wn := range p.Warnings {
		fmt.Fprintf(&b, "  ! %s\n", wn)
	}
	b.WriteString(p.summaryLine())
	b.WriteByte('\n')
	_, err := io.WriteString(w, b.String())
	return err
}

func (p *Plan) summaryLine() string {
	s := p.Summary()
	if p.Empty() {
		return fmt.Sprintf("No changes. %d unchanged.", s.Unchanged)
	}
	var parts []string
	for _, c := range []struct {
		n    int
		what string
	}{{s.Pull, "pull"}, {s.Build, "build"}, {s.Create, "create"}, {s.Recreate, "recreate"}, {s.MaybeRecreate, "recreate if changed"}, {s.Start, "start"}, {s.Stop, "stop"}, {s.Remove, "remove"}} {
		if c.n > 0 {
			parts = append(parts, fmt.Sprintf("%d to %s", c.n, c.what))
		}
	}
	if len(parts) == 0 {
		parts = append(parts, fmt.Sprintf("%d actions", len(p.Actions)))
	}
	return fmt.Sprintf("Plan: %s, %d unchanged.", strings.Join(parts, ", "), s.Unchanged)
}

// JSONVersion is the version of the JSON shape written by WriteJSON. It changes only when a
// field changes meaning or disappears; new fields may be added within a version.
const JSONVersion = 1

// JSON shape (version 1):
//
//	{
//	  "version": 1,
//	  "project": "demo",
//	  "mode": "up" | "down",
//	  "fingerprint": "sha256:...",      // of the observed state the plan was made from
//	  "actions": [ {                     // in execution order (topological)
//	      "id": "create container:web:1",
//	      "kind": "create container",     // Kind.String()
//	      "resource": "container:web:1",
//	      "reason": "new",
//	      "depends_on": ["create network:default"],
//	      "service": "web", "number": 1,  // container actions
//	      "config_hash": "...",           // create, recreate, start: of the desired service
//	      "container": "<id>",            // existing container acted on
//	      "image": "nginx:1",             // pull/build
//	      "waits": [{"service": "db", "condition": "service_healthy", "required": true}],
//	      "destroy_first": true,
//	      "only_if": {"image_changed": true, "recreated": ["recreate container:db:1"]}
//	  } ],
//	  "unchanged": [ {"resource": "container:db:1", "container": "<id>", "reason": "running"} ],
//	  "warnings": ["..."],
//	  "summary": {"pull": 0, "build": 0, "create": 1, "recreate": 0, "maybe_recreate": 0, "start": 0, "stop": 0, "remove": 0, "unchanged": 1}
//	}
type jsonPlan struct {
	Version     int          `json:"version"`
	Project     string       `json:"project"`
	Mode        string       `json:"mode"`
	Fingerprint string       `json:"fingerprint"`
	Actions     []jsonAction `json:"actions"`
	Unchanged   []Unchanged  `json:"unchanged"`
	Warnings    []string     `json:"warnings"`
	Summary     Summary      `json:"summary"`
}

type jsonAction struct {
	ID           string     `json:"id"`
	Kind         Kind       `json:"kind"`
	Resource     string     `json:"resource"`
	Reason       string     `json:"reason"`
	DependsOn    []string   `json:"depends_on"`
	Service      string     `json:"service,omitempty"`
	Number       int        `json:"number,omitempty"`
	ConfigHash   string     `json:"config_hash,omitempty"`
	Container    string     `json:"container,omitempty"`
	Image        string     `json:"image,omitempty"`
	Waits        []Wait     `json:"waits,omitempty"`
	DestroyFirst bool       `json:"destroy_first,omitempty"`
	OnlyIf       *Condition `json:"only_if,omitempty"`
}

// WriteJSON writes the plan in the versioned JSON shape documented above, indented.
func (p *Plan) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(p.shape())
}

// shape is the plan in its JSON shape.
func (p *Plan) shape() jsonPlan {
	out := jsonPlan{
		Version:     JSONVersion,
		Project:     p.Project,
		Mode:        "up",
		Fingerprint: p.Fingerprint,
		Actions:     []jsonAction{},
		Unchanged:   p.Unchanged,
		Warnings:    p.Warnings,
		Summary:     p.Summary(),
	}
	if p.Down {
		out.Mode = "down"
	}
	if out.Unchanged == nil {
		out.Unchanged = []Unchanged{}
	}
	if out.Warnings == nil {
		out.Warnings = []string{}
	}
	for _, a := range p.Actions {
		ja := jsonAction{ID: a.ID, Kind: a.Kind, Resource: a.Resource, Reason: a.Reason, DependsOn: a.DependsOn,
			Number: a.Number, Container: a.Container, Image: a.Image, Waits: a.Waits, DestroyFirst: a.DestroyFirst, OnlyIf: a.OnlyIf}
		if ja.DependsOn == nil {
			ja.DependsOn = []string{}
		}
		if parts := strings.Split(a.Resource, ":"); len(parts) == 3 && parts[0] == "container" {
			ja.Service = parts[1]
		}
		switch a.Kind {
		case CreateContainer, RecreateContainer, StartContainer:
			if a.Service != nil {
				ja.ConfigHash = a.Service.Hash
			}
		}
		out.Actions = append(out.Actions, ja)
	}
	return out
}

// Equal reports whether two plans would do the same: same project, mode, fingerprint and the
// same actions (ids, reasons, dependencies, waits, conditions) in the same order. `stack apply
// FILE` recomputes the plan and refuses to go on unless it equals the saved one.
func (p *Plan) Equal(q *Plan) bool {
	a, errA := json.Marshal(p.shape())
	b, errB := json.Marshal(q.shape())
	return errA == nil && errB == nil && string(a) == string(b)
}
