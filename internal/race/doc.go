// Package race says whether the binary was built with the race detector
// (go build -race): Enabled, one constant set by build tags (on.go,
// off.go).
//
// The detector changes what some code and tests may rely on: its
// runtime takes memory its own way (page-fault counts), its sync.Pool
// drops a random share of what is put back (allocation counts), it
// randomises the scheduler's run-next slot (counts of goroutine
// hand-offs), and it orders events by the syscall package's annotations,
// which raw system calls lack (internal/nfs uses net.Conn under it).
// Guards of such counts check them only without the detector; .ci/run
// runs them once without it.
package race
