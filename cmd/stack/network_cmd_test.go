package main

import (
	"testing"

	"github.com/stackrun/stack/engine"
	"github.com/stackrun/stack/network"
)

func TestContainerOf(t *testing.T) {
	lbl := func(p, s, n string) map[string]string {
		return map[string]string{engine.LabelProject: p, engine.LabelService: s, engine.LabelNumber: n}
	}
	all := []*network.Network{{Name: "p_default", Attachments: map[string]*network.Attachment{
		"c1": {Labels: lbl("p", "web", "1")},
		"c2": {Labels: lbl("p", "web", "2")},
		"c3": {Labels: lbl("q", "web", "1")},
	}}}
	for _, tc := range []struct {
		project, service string
		n                int
		want             string
	}{{"p", "web", 1, "c1"}, {"p", "web", 2, "c2"}, {"q", "web", 1, "c3"}, {"p", "db", 1, ""}} {
		if got := containerOf(all, tc.project, tc.service, tc.n); got != tc.want {
			t.Errorf("containerOf(%s, %s, %d) = %q, want %q", tc.project, tc.service, tc.n, got, tc.want)
		}
	}
}
