package disk

import "golang.org/x/sys/unix"

// RefuseOpenat2 makes ReadWhole's openat2 calls fail with e, as a
// seccomp filter that does not know the system call makes them fail.
func (o *OS) RefuseOpenat2(e unix.Errno) { o.openat2Refused = e }
