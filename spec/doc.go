// Package spec owns the stack file: it loads Compose Specification files through compose-go
// (merge, .env, interpolation, profiles, extends, include), converts them to stack's own typed
// model (Stack, Service, ...), validates what stack needs beyond compose-go with file:line:col
// positions taken from yaml.v3 nodes, and computes each service's canonical config hash.
// It never touches the host beyond reading the stack file and the files it names.
package spec
