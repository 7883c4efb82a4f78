package compose

import (
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/schema"
	"github.com/compose-spec/compose-go/v2/tree"
)

// Every rule names a real key of the specification (no typo silently leaves a key unsupported),
// and every key of a service has an explicit decision (a key compose-go adds later fails here
// until someone decides; until then Load reports it as an error).
func TestKeyRulesCoverTheSpecification(t *testing.T) {
	known := map[string]bool{}
	for _, p := range schema.AttributePaths() {
		known[p.String()] = true
	}
	explicit := map[string]bool{}
	for _, r := range KeyRules() {
		if !known[r.Path] {
			t.Errorf("rule %s names no key of the Compose specification", r.Path)
		}
		explicit[r.Path] = true
	}
	for _, p := range schema.AttributePaths() {
		parts := p.Parts()
		if len(parts) == 3 && parts[0] == "services" && parts[1] == tree.PathMatchAll && !explicit[p.String()] {
			t.Errorf("services key %s has no rule in KeyRules", parts[2])
		}
	}
}

func TestSupportedKeysTable(t *testing.T) {
	rows := map[string]KeySupport{}
	for _, k := range SupportedKeys() {
		rows[k.Path] = k.Support
	}
	for path, want := range map[string]KeySupport{
		"services.*.image":                              KeySupported,
		"services.*.devices":                            KeyUnsupported,
		"services.*.links":                              KeyIgnored,
		"services.*.build.ssh":                          KeyUnsupported,
		"services.*.volumes.[].bind.selinux":            KeyUnsupported,
		"networks.*.ipam.config.[].ip_range":            KeyUnsupported,
		"services.*.deploy.resources.reservations.cpus": KeyIgnored,
		"secrets": KeyUnsupported,
	} {
		got, ok := rows[path]
		if !ok {
			t.Errorf("%s not listed", path)
			continue
		}
		if got != want {
			t.Errorf("%s: %v, want %v", path, got, want)
		}
	}
	for path := range rows {
		if strings.HasPrefix(path, "jobs.") {
			t.Errorf("%s: nothing under jobs is listed", path)
		}
	}
}
