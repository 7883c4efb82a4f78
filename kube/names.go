package kube

import (
	"fmt"
	"strings"
)

// dnsLabel maps a Compose name (letters, digits, '_', '-', '.') to a DNS-1123 label, the form
// Kubernetes requires for object and Service names: lower case, '-' for anything else, at most
// 63 characters, starting and ending with an alphanumeric.
func dnsLabel(name string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(name) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
	}
	s := strings.Trim(b.String(), "-")
	if len(s) > 63 {
		s = strings.TrimRight(s[:63], "-")
	}
	return s
}

// nameMap assigns each Compose name its DNS label and fails when two names collide after the
// mapping (web_1 and web-1), since one would silently replace the other in the cluster.
func nameMap(kind string, names []string) (map[string]string, error) {
	out := make(map[string]string, len(names))
	owner := make(map[string]string, len(names))
	for _, n := range names {
		l := dnsLabel(n)
		if l == "" {
			return nil, fmt.Errorf("%s %q has no characters a Kubernetes name can keep", kind, n)
		}
		if prev, ok := owner[l]; ok {
			return nil, fmt.Errorf("%ss %q and %q both become %q in Kubernetes; rename one", kind, prev, n, l)
		}
		owner[l] = n
		out[n] = l
	}
	return out, nil
}
