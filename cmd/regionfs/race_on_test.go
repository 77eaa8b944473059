//go:build race

package main

// raceEnabled: the tests run under the race detector, whose runtime
// changes how the process takes memory (page-fault counts do not hold).
const raceEnabled = true
