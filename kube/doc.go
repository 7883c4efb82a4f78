// Package kube renders a loaded stack (spec.Stack) as Kubernetes objects, built from the
// official Go types (k8s.io/api), for `stack export k8s`. It owns the mapping from Compose
// semantics to Kubernetes and the report of every key that cannot be carried over.
// It is a pure conversion: it touches no host state and talks to no cluster.
package kube
