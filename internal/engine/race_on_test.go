//go:build race

package engine

// raceEnabled: the tests run under the race detector, whose sync.Pool
// drops a random share of what is put back (allocation guards do not
// hold there).
const raceEnabled = true
