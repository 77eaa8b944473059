//go:build race

package blocks_test

// raceEnabled: the tests run under the race detector; the system-call
// guard does not check its count then (.ci/run runs it without).
const raceEnabled = true
