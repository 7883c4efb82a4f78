// Package kube renders a loaded stack (spec.Stack) as Kubernetes objects for `stack export k8s`.
// The objects are kube's own small structs (objects.go) that write what the official Go types
// (k8s.io/api) would; the tests check that against k8s.io/api, which only they import. It owns
// the mapping from Compose semantics to Kubernetes and the report of every key that cannot be
// carried over. It is a pure conversion: it touches no host state and talks to no cluster.
package kube
