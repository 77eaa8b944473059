//go:build race

package nfs

// raceEnabled: the race detector is on (sync.Pool drops a random share
// of what is put back, so pooled buffers are allocated again).
const raceEnabled = true
