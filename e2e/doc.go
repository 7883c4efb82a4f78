// Package e2e holds end-to-end tests: they build the stack binary, run it as a user would
// (up, ps, plan, down on the stack files under examples/) with a temporary state root, and
// check what a user sees: pages served through published ports, state kept in volumes,
// containers recreated only when their service changed, nothing left on the host after down.
// The tests need root and skip, saying so, without it.
package e2e
