//go:build !race

package blocks_test

// raceEnabled: the tests run under the race detector (see race_on_test.go).
const raceEnabled = false
