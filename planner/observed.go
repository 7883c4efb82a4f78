// Package planner owns the decision of what to do: it compares the desired stack (spec.Stack)
// with what the engine observed on the host (Observed) and returns a Plan, an ordered graph of
// actions each with a kind, a resource id, a reason and the actions it depends on. It is a pure
// function: it does no I/O, asks nobody anything and knows no file formats; the engine fills
// Observed and executes the Plan. The Plan has one text rendering and one versioned JSON shape.
package planner

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/stackrun/stack/spec"
)

// ContainerStatus is the live state of a recorded container.
type ContainerStatus string

const (
	StatusCreated      ContainerStatus = "created"      // created, user process not started
	StatusRunning      ContainerStatus = "running"      // running under its monitor
	StatusExited       ContainerStatus = "exited"       // stopped or exited; ExitCode says how
	StatusUnsupervised ContainerStatus = "unsupervised" // process alive but its monitor is gone
	StatusMissing      ContainerStatus = "missing"      // recorded, but the runtime has no such container
)

// Container is one container of the project as recorded by the engine (identified by the
// project label in its record, never by its name).
type Container struct {
	ID      string
	Project string
	Service string
	Number  int    // replica number, from 1
	Hash    string // config hash of the service it was created from
	// Config is the full resolved service the container was created from; the planner diffs it
	// against the desired service to name the changed fields. May be nil for foreign records.
	Config      *spec.Service
	ImageDigest string // digest of the image it was created from
	Status      ContainerStatus
	ExitCode    int
	Restart     spec.RestartPolicy // the policy it was created with
	Health      string             // "", "starting", "healthy", "unhealthy"
	Created     time.Time
}

// Network is a network of the project that exists on the host.
type Network struct {
	Key  string // key in the stack file
	Name string // actual name
}

// Volume is a named volume of the project that exists on the host.
type Volume struct {
	Key  string
	Name string
}

// Observed is what the engine found on the host for one project.
type Observed struct {
	Project    string
	Containers []Container
	Networks   []Network
	Volumes    []Volume
	Images     map[string]string // image reference -> digest of the local image, for images present
}

// Fingerprint is a digest of everything in o the planner decides on. A plan records it; the
// engine refuses to apply a plan whose fingerprint no longer matches the host.
func Fingerprint(o Observed) string {
	var lines []string
	for _, c := range o.Containers {
		lines = append(lines, fmt.Sprintf("c %s %s %s %d %s %s %s %d %s",
			c.ID, c.Project, c.Service, c.Number, c.Hash, c.ImageDigest, c.Status, c.ExitCode, c.Restart.Name))
	}
	for _, n := range o.Networks {
		lines = append(lines, "n "+n.Key+" "+n.Name)
	}
	for _, v := range o.Volumes {
		lines = append(lines, "v "+v.Key+" "+v.Name)
	}
	for ref, d := range o.Images {
		lines = append(lines, "i "+ref+" "+d)
	}
	slices.Sort(lines)
	sum := sha256.Sum256([]byte(o.Project + "\n" + strings.Join(lines, "\n")))
	return "sha256:" + hex.EncodeToString(sum[:])
}
