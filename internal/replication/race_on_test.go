//go:build race

package replication

// raceEnabled: the tests run under the race detector, which randomises the
// scheduler's choices: tests that count goroutine hand-offs do not check
// them then (7f6ad4d).
const raceEnabled = true
