//go:build !race

package nfs

// raceEnabled: the race detector is on. Connections then read and write
// through net.Conn, not with raw system calls (rawSocket): the detector
// takes the ordering of a request after the reply before it from the
// annotations of the syscall package's calls, and raw calls have none
// (a test that sets server state after a reply was reported as a race).
// In tests: sync.Pool drops a random share of what is put back, so
// pooled buffers are allocated again.
const raceEnabled = false
