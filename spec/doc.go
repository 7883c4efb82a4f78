// Package spec owns the stack file's model: stack's own typed Stack, Service, ... that every
// other package works from, each service's canonical config hash and field diff, the Problems
// a load reports with file:line:col, and Load: the cache of loaded stack files in front of the
// loader. Reading the files themselves (compose-go: merge, .env, interpolation, profiles,
// extends, include; validation with yaml.v3 node positions; conversion to the model) is
// spec/compose, which the stack CLI runs as the stack-load executable only when the cache
// misses, so spec and everything that imports it stay free of compose-go.
// It never touches the host beyond reading the stack file and the files it names.
package spec
