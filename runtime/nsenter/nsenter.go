// Package nsenter holds the C constructor that joins a running container's namespaces before
// the Go runtime starts, which joining a mount namespace requires (setns(2) refuses
// CLONE_NEWNS in a multithreaded process). It does nothing unless the runtime's exec helper
// env vars are set. Blank-import it only from cmd/stack and runtime integration tests.
package nsenter
