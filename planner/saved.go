package planner

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/stackrun/stack/spec"
)

// A saved plan (`stack plan -out FILE`) is a plan together with what it was computed from: the
// digests of the resolved stack (spec.Digests), the fingerprint and a description of the
// observed state, and the options. `stack apply FILE` loads the same stack again, observes the
// host, and goes on only when both are what they were; then the plan it computes is the saved
// one, action for action, and that is what it applies. Like terraform's saved plans, a saved
// plan is refused once anything it was made from moved.
const (
	SavedFormat  = "stack-saved-plan" // the "format" field: how a saved plan is told from other JSON
	SavedVersion = 1                  // the "version" field: the shape documented on Saved
)

// Saved is a saved plan file. Its JSON shape (version 1):
//
//	{
//	  "format": "stack-saved-plan",
//	  "version": 1,
//	  "created": "2026-01-02T15:04:05Z",
//	  "project": "demo",
//	  "source": {                        // how the stack was loaded (-f, --project-directory, ...)
//	    "files": ["/abs/stack.yaml"], "project_directory": "/abs", "env_files": [], "profiles": []
//	  },
//	  "options": {"services": [], "no_deps": false, "remove_orphans": false, "force_recreate": false,
//	    "no_recreate": false, "no_start": false, "build": false, "scale": {}, "pull": ""},
//	  "desired": {"project": "sha256:...", "service:web": "sha256:...", "network:default": "sha256:..."},
//	  "fingerprint": "sha256:...",       // Fingerprint of the observed state, images limited to the stack's
//	  "observed": ["container:web:1 0123456789ab running ...", "network:default demo_default", ...],
//	  "plan": { ... },                   // the plan, in the shape of `stack plan --format json`
//	  "checksum": "sha256:..."           // of this document with "checksum": ""
//	}
type Saved struct {
	Format      string            `json:"format"`
	Version     int               `json:"version"`
	Created     string            `json:"created"`
	Project     string            `json:"project"`
	Source      Source            `json:"source"`
	Options     savedOptions      `json:"options"`
	Desired     map[string]string `json:"desired"`
	Fingerprint string            `json:"fingerprint"`
	Observed    []string          `json:"observed"`
	Plan        jsonPlan          `json:"plan"`
	Checksum    string            `json:"checksum"`
}

// Source says how the stack file(s) of a saved plan were loaded, so that applying it loads the
// same ones. The planner only carries it.
type Source struct {
	Files            []string `json:"files"`
	ProjectDirectory string   `json:"project_directory"`
	EnvFiles         []string `json:"env_files"`
	Profiles         []string `json:"profiles"`
}

type savedOptions struct {
	Services      []string       `json:"services"`
	NoDeps        bool           `json:"no_deps"`
	RemoveOrphans bool           `json:"remove_orphans"`
	ForceRecreate bool           `json:"force_recreate"`
	NoRecreate    bool           `json:"no_recreate"`
	NoStart       bool           `json:"no_start"`
	Build         bool           `json:"build"`
	Scale         map[string]int `json:"scale"`
	Pull          string         `json:"pull"`
}

// NewSaved makes the saved form of p, which Compute made from desired, observed and opts.
// Plans of down are not saved: down works from the records alone.
func NewSaved(p *Plan, desired *spec.Stack, observed Observed, opts Options, src Source, now time.Time) (*Saved, error) {
	if p.Down || opts.Down || desired == nil {
		return nil, fmt.Errorf("%w: only plans of up can be saved", ErrInvalid)
	}
	if p.Fingerprint != Fingerprint(observed) || p.Project != desired.Name {
		return nil, fmt.Errorf("%w: the plan was not made from this stack and observed state", ErrInvalid)
	}
	observed = imagesOf(observed, desired)
	s := &Saved{
		Format: SavedFormat, Version: SavedVersion, Created: now.UTC().Format(time.RFC3339),
		Project: p.Project, Source: src,
		Options: savedOptions{
			Services: opts.Services, NoDeps: opts.NoDeps, RemoveOrphans: opts.RemoveOrphans,
			ForceRecreate: opts.ForceRecreate, NoRecreate: opts.NoRecreate, NoStart: opts.NoStart,
			Build: opts.Build, Scale: opts.Scale, Pull: opts.Pull,
		},
		Desired:     spec.Digests(desired),
		Fingerprint: Fingerprint(observed),
		Observed:    Describe(observed),
		Plan:        p.shape(),
	}
	// Empty lists and maps are written as [] and {} so that a decoded file re-encodes the same.
	if s.Source.Files == nil {
		s.Source.Files = []string{}
	}
	if s.Source.EnvFiles == nil {
		s.Source.EnvFiles = []string{}
	}
	if s.Source.Profiles == nil {
		s.Source.Profiles = []string{}
	}
	if s.Options.Services == nil {
		s.Options.Services = []string{}
	}
	if s.Options.Scale == nil {
		s.Options.Scale = map[string]int{}
	}
	if s.Observed == nil {
		s.Observed = []string{}
	}
	sum, err := s.sum()
	if err != nil {
		return nil, err
	}
	s.Checksum = sum
	return s, nil
}

// sum is the checksum of s: sha256 of its compact JSON with an empty checksum field.
func (s *Saved) sum() (string, error) {
	c := *s
	c.Checksum = ""
	data, err := json.Marshal(&c)
	if err != nil {
		return "", fmt.Errorf("encode saved plan: %w", err)
	}
	h := sha256.Sum256(data)
	return "sha256:" + hex.EncodeToString(h[:]), nil
}

// Encode writes s as indented JSON.
func (s *Saved) Encode() ([]byte, error) {
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode saved plan: %w", err)
	}
	return append(data, '\n'), nil
}

// IsSaved reports whether data looks like a saved plan, of any version: a JSON object whose
// "format" is SavedFormat. It tells `stack up FILE` a plan from a service name.
func IsSaved(data []byte) bool {
	var probe struct {
		Format string `json:"format"`
	}
	return json.Unmarshal(data, &probe) == nil && probe.Format == SavedFormat
}

// DecodeSaved reads a saved plan, refusing (ErrInvalid, with the reason) anything that is not
// an intact saved plan of this version: other JSON, another version, a damaged or edited file.
func DecodeSaved(data []byte) (*Saved, error) {
	var probe struct {
		Format  string `json:"format"`
		Version int    `json:"version"`
	}
	if err := json.Unmarshal(data, &probe); err != nil {
		return nil, savedError(fmt.Sprintf("not a saved plan (not valid JSON: %v)", err))
	}
	if probe.Format != SavedFormat {
		return nil, savedError(fmt.Sprintf("not a saved plan (no \"format\": %q; stack plan -out FILE writes one)", SavedFormat))
	}
	if probe.Version != SavedVersion {
		return nil, savedError(fmt.Sprintf("version %d; this stack reads saved plans of version %d only: plan again with this stack", probe.Version, SavedVersion))
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var s Saved
	if err := dec.Decode(&s); err != nil {
		return nil, savedError(fmt.Sprintf("damaged: %v", err))
	}
	switch {
	case s.Project == "" || s.Plan.Project != s.Project:
		return nil, savedError("damaged: no project, or the plan is for another one")
	case s.Fingerprint == "" || s.Plan.Fingerprint == "" || s.Desired == nil:
		return nil, savedError("damaged: what the plan was made from is not recorded")
	case s.Plan.Mode != "up":
		return nil, savedError(fmt.Sprintf("damaged: mode %q (only plans of up are saved)", s.Plan.Mode))
	}
	sum, err := s.sum()
	if err != nil {
		return nil, err
	}
	if sum != s.Checksum {
		return nil, savedError("changed after stack plan wrote it (checksum mismatch): plan again")
	}
	return &s, nil
}

// savedError is why a file is not a usable saved plan; it is in the ErrInvalid category.
type savedError string

func (e savedError) Error() string        { return string(e) }
func (e savedError) Is(target error) bool { return target == ErrInvalid }

// PlanOptions are the options the plan was computed with.
func (s *Saved) PlanOptions() Options {
	o := s.Options
	opts := Options{
		Services: o.Services, NoDeps: o.NoDeps, RemoveOrphans: o.RemoveOrphans, ForceRecreate: o.ForceRecreate,
		NoRecreate: o.NoRecreate, NoStart: o.NoStart, Build: o.Build, Pull: o.Pull,
	}
	if len(o.Services) == 0 {
		opts.Services = nil
	}
	if len(o.Scale) > 0 {
		opts.Scale = maps.Clone(o.Scale)
	}
	return opts
}

// DesiredChanges names what differs between the stack the plan was made from and desired:
// "service web changed", "volume cache added"; none when they are the same.
func (s *Saved) DesiredChanges(desired *spec.Stack) []string {
	now := spec.Digests(desired)
	var out []string
	for _, k := range slices.Sorted(maps.Keys(mergeKeys(s.Desired, now))) {
		what := strings.Replace(k, ":", " ", 1)
		was, ok1 := s.Desired[k]
		is, ok2 := now[k]
		switch {
		case !ok1:
			out = append(out, what+" added")
		case !ok2:
			out = append(out, what+" removed")
		case was != is:
			out = append(out, what+" changed")
		}
	}
	return out
}

func mergeKeys(a, b map[string]string) map[string]bool {
	out := map[string]bool{}
	for k := range a {
		out[k] = true
	}
	for k := range b {
		out[k] = true
	}
	return out
}

// ObservedChanges names what differs between the state the plan was made from and observed
// ("gone: container:web:1 0123456789ab running ...", "new: ..."); none when the fingerprints
// match. Of the images present only those desired's services use count: a plan of up looks at
// no other, so pulling an unrelated image does not make a saved plan stale.
func (s *Saved) ObservedChanges(observed Observed, desired *spec.Stack) []string {
	observed = imagesOf(observed, desired)
	if Fingerprint(observed) == s.Fingerprint {
		return nil
	}
	was := map[string]bool{}
	for _, l := range s.Observed {
		was[l] = true
	}
	var out []string
	now := Describe(observed)
	is := map[string]bool{}
	for _, l := range now {
		is[l] = true
	}
	for _, l := range s.Observed {
		if !is[l] {
			out = append(out, "gone: "+l)
		}
	}
	for _, l := range now {
		if !was[l] {
			out = append(out, "new: "+l)
		}
	}
	if len(out) == 0 {
		out = append(out, "the recorded state of the project's containers differs")
	}
	return out
}

// Differs compares p, computed now, with the saved plan: "" when they are the same plan,
// else the first difference. The plans' fingerprints, which cover every image present, are
// left to ObservedChanges, which counts only the images the stack uses.
func (s *Saved) Differs(p *Plan) string {
	now := p.shape()
	was := s.Plan
	now.Fingerprint, was.Fingerprint = "", ""
	a, errA := json.Marshal(was)
	b, errB := json.Marshal(now)
	if errA != nil || errB != nil {
		return "cannot compare the plans"
	}
	if string(a) == string(b) {
		return ""
	}
	for i := range max(len(s.Plan.Actions), len(now.Actions)) {
		switch {
		case i >= len(s.Plan.Actions):
			return "now also " + now.Actions[i].ID
		case i >= len(now.Actions):
			return "no longer " + s.Plan.Actions[i].ID
		}
		x, _ := json.Marshal(s.Plan.Actions[i])
		y, _ := json.Marshal(now.Actions[i])
		if string(x) != string(y) {
			return fmt.Sprintf("saved %s (%s), now %s (%s)", s.Plan.Actions[i].ID, s.Plan.Actions[i].Reason, now.Actions[i].ID, now.Actions[i].Reason)
		}
	}
	return "the unchanged containers or warnings differ"
}

// imagesOf is o with only the images that desired's services use.
func imagesOf(o Observed, desired *spec.Stack) Observed {
	if desired == nil {
		return o
	}
	images := map[string]string{}
	for _, svc := range desired.Services {
		if d, ok := o.Images[svc.Image]; ok {
			images[svc.Image] = d
		}
	}
	o.Images = images
	return o
}

// Describe is the observed state as sorted lines a person can read, one per container, network,
// volume and image; a saved plan keeps them to say what changed on the host.
func Describe(o Observed) []string {
	var out []string
	for _, c := range o.Containers {
		status := string(c.Status)
		if c.Status == StatusExited {
			status = fmt.Sprintf("exited (%d)", c.ExitCode)
		}
		out = append(out, fmt.Sprintf("%s %s %s (project %s, config %s, image %s, restart %s)",
			ContainerResource(c.Service, c.Number), shortID(c.ID), status, c.Project, short(c.Hash), short(c.ImageDigest), c.Restart.Name))
	}
	for _, n := range o.Networks {
		out = append(out, "network:"+n.Key+" "+n.Name)
	}
	for _, v := range o.Volumes {
		out = append(out, "volume:"+v.Key+" "+v.Name)
	}
	for ref, d := range o.Images {
		out = append(out, "image:"+ref+" "+short(d))
	}
	slices.Sort(out)
	return out
}

// short is the first 12 hex digits of a digest or hash ("" stays "").
func short(d string) string {
	d = strings.TrimPrefix(d, "sha256:")
	return d[:min(12, len(d))]
}
