// Package compose reads stack files for spec: it loads Compose Specification files through
// compose-go (merge, .env, interpolation, profiles, extends, include), converts them to spec's
// model, validates what stack needs beyond compose-go with file:line:col positions taken from
// yaml.v3 nodes, and sets each service's config hash. It is the only package that imports
// compose-go; the stack CLI runs it in the stack-load executable (Serve), tests in process (Load).
package compose
