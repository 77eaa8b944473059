package fuse

import (
	"bytes"
	"os"
	"strconv"
	"time"

	gofuse "github.com/hanwen/go-fuse/v2/fuse"
)

// Interrupts.
//
// The kernel sends FUSE_INTERRUPT for a request when the thread waiting
// on it gets any signal it does not ignore, and go-fuse then closes the
// request's cancel channel (the Done of the context our nodes get). A Go
// program gets SIGURG all the time (the runtime preempts goroutines with
// it), so a mount that honoured every interrupt failed a Go program's
// stat, open or read with EINTR at random, which the program never
// retries. A hard NFS mount lets only a fatal signal end a call waiting
// for the server, and so does the mount: after an interrupt the request
// goes on, and is cancelled only once its caller is being killed. The
// kernel marks every fatal signal by making SIGKILL pending on each of
// the process's threads, and one thread cannot leave while its request is
// answered, so that is what is watched for (/proc/TID/status), every
// killPoll until the request ends.

// killPoll is how often an interrupted request looks at its caller.
const killPoll = 50 * time.Millisecond

// sigkillMask is SIGKILL's bit in /proc/TID/status's signal masks.
const sigkillMask = 1 << (9 - 1)

// killable is the mount's raw file system: go-fuse's node bridge with
// every request's cancel channel replaced by one closed only when the
// caller is killed.
type killable struct {
	gofuse.RawFileSystem
	// killed reports whether the thread tid (as FUSE numbers it) is being
	// killed or is gone.
	killed func(tid uint32) bool
	poll   time.Duration
}

func newKillable(raw gofuse.RawFileSystem) *killable {
	return &killable{RawFileSystem: raw, killed: callerKilled, poll: killPoll}
}

// guard returns the cancel channel to give the request of caller in
// place of cancel, and the function to call when the request is done.
func (k *killable) guard(cancel <-chan struct{}, caller *gofuse.Caller) (<-chan struct{}, func()) {
	tid := caller.Pid // go-fuse reuses the request's memory once it is answered
	out, end := make(chan struct{}), make(chan struct{})
	go func() {
		select {
		case <-end:
			return
		case <-cancel:
		}
		t := time.NewTicker(k.poll)
		defer t.Stop()
		for {
			if k.killed(tid) {
				close(out)
				return
			}
			select {
			case <-end:
				return
			case <-t.C:
			}
		}
	}()
	return out, func() { close(end) }
}

// callerKilled reads the thread's pending signals. A caller FUSE could
// not name (pid 0: another pid namespace) or whose status cannot be read
// is taken as killed: its interrupt is honoured, as before.
func callerKilled(tid uint32) bool {
	if tid == 0 {
		return true
	}
	b, err := os.ReadFile("/proc/" + strconv.FormatUint(uint64(tid), 10) + "/status")
	if err != nil {
		return true
	}
	k, ok := sigkillPending(b)
	return k || !ok
}

// sigkillPending reports whether a /proc/TID/status text shows SIGKILL
// pending on the thread or its process; ok is false when it carries
// neither mask.
func sigkillPending(status []byte) (killed, ok bool) {
	for line := range bytes.Lines(status) {
		name, val, found := bytes.Cut(bytes.TrimSpace(line), []byte(":"))
		if !found || (string(name) != "SigPnd" && string(name) != "ShdPnd") {
			continue
		}
		m, err := strconv.ParseUint(string(bytes.TrimSpace(val)), 16, 64)
		if err != nil {
			return false, false
		}
		ok = true
		if m&sigkillMask != 0 {
			return true, true
		}
	}
	return false, ok
}

// The requests that wait on the server. SetLkw is left as go-fuse has
// it: a lock wait may last forever, and a signal ends it (EINTR), as on
// a local file system. Forget and ReleaseDir have no cancel channel.

func (k *killable) Lookup(cancel <-chan struct{}, header *gofuse.InHeader, name string, out *gofuse.EntryOut) gofuse.Status {
	cancel, end := k.guard(cancel, &header.Caller)
	defer end()
	return k.RawFileSystem.Lookup(cancel, header, name, out)
}

func (k *killable) GetAttr(cancel <-chan struct{}, input *gofuse.GetAttrIn, out *gofuse.AttrOut) gofuse.Status {
	cancel, end := k.guard(cancel, &input.Caller)
	defer end()
	return k.RawFileSystem.GetAttr(cancel, input, out)
}

func (k *killable) SetAttr(cancel <-chan struct{}, input *gofuse.SetAttrIn, out *gofuse.AttrOut) gofuse.Status {
	cancel, end := k.guard(cancel, &input.Caller)
	defer end()
	return k.RawFileSystem.SetAttr(cancel, input, out)
}

func (k *killable) Mknod(cancel <-chan struct{}, input *gofuse.MknodIn, name string, out *gofuse.EntryOut) gofuse.Status {
	cancel, end := k.guard(cancel, &input.Caller)
	defer end()
	return k.RawFileSystem.Mknod(cancel, input, name, out)
}

func (k *killable) Mkdir(cancel <-chan struct{}, input *gofuse.MkdirIn, name string, out *gofuse.EntryOut) gofuse.Status {
	cancel, end := k.guard(cancel, &input.Caller)
	defer end()
	return k.RawFileSystem.Mkdir(cancel, input, name, out)
}

func (k *killable) Unlink(cancel <-chan struct{}, header *gofuse.InHeader, name string) gofuse.Status {
	cancel, end := k.guard(cancel, &header.Caller)
	defer end()
	return k.RawFileSystem.Unlink(cancel, header, name)
}

func (k *killable) Rmdir(cancel <-chan struct{}, header *gofuse.InHeader, name string) gofuse.Status {
	cancel, end := k.guard(cancel, &header.Caller)
	defer end()
	return k.RawFileSystem.Rmdir(cancel, header, name)
}

func (k *killable) Rename(cancel <-chan struct{}, input *gofuse.RenameIn, oldName, newName string) gofuse.Status {
	cancel, end := k.guard(cancel, &input.Caller)
	defer end()
	return k.RawFileSystem.Rename(cancel, input, oldName, newName)
}

func (k *killable) Link(cancel <-chan struct{}, input *gofuse.LinkIn, name string, out *gofuse.EntryOut) gofuse.Status {
	cancel, end := k.guard(cancel, &input.Caller)
	defer end()
	return k.RawFileSystem.Link(cancel, input, name, out)
}

func (k *killable) Symlink(cancel <-chan struct{}, header *gofuse.InHeader, target, name string, out *gofuse.EntryOut) gofuse.Status {
	cancel, end := k.guard(cancel, &header.Caller)
	defer end()
	return k.RawFileSystem.Symlink(cancel, header, target, name, out)
}

func (k *killable) Readlink(cancel <-chan struct{}, header *gofuse.InHeader) ([]byte, gofuse.Status) {
	cancel, end := k.guard(cancel, &header.Caller)
	defer end()
	return k.RawFileSystem.Readlink(cancel, header)
}

func (k *killable) Access(cancel <-chan struct{}, input *gofuse.AccessIn) gofuse.Status {
	cancel, end := k.guard(cancel, &input.Caller)
	defer end()
	return k.RawFileSystem.Access(cancel, input)
}

func (k *killable) GetXAttr(cancel <-chan struct{}, header *gofuse.InHeader, attr string, dest []byte) (uint32, gofuse.Status) {
	cancel, end := k.guard(cancel, &header.Caller)
	defer end()
	return k.RawFileSystem.GetXAttr(cancel, header, attr, dest)
}

func (k *killable) ListXAttr(cancel <-chan struct{}, header *gofuse.InHeader, dest []byte) (uint32, gofuse.Status) {
	cancel, end := k.guard(cancel, &header.Caller)
	defer end()
	return k.RawFileSystem.ListXAttr(cancel, header, dest)
}

func (k *killable) SetXAttr(cancel <-chan struct{}, input *gofuse.SetXAttrIn, attr string, data []byte) gofuse.Status {
	cancel, end := k.guard(cancel, &input.Caller)
	defer end()
	return k.RawFileSystem.SetXAttr(cancel, input, attr, data)
}

func (k *killable) RemoveXAttr(cancel <-chan struct{}, header *gofuse.InHeader, attr string) gofuse.Status {
	cancel, end := k.guard(cancel, &header.Caller)
	defer end()
	return k.RawFileSystem.RemoveXAttr(cancel, header, attr)
}

func (k *killable) Create(cancel <-chan struct{}, input *gofuse.CreateIn, name string, out *gofuse.CreateOut) gofuse.Status {
	cancel, end := k.guard(cancel, &input.Caller)
	defer end()
	return k.RawFileSystem.Create(cancel, input, name, out)
}

func (k *killable) Tmpfile(cancel <-chan struct{}, input *gofuse.CreateIn, out *gofuse.CreateOut) gofuse.Status {
	cancel, end := k.guard(cancel, &input.Caller)
	defer end()
	return k.RawFileSystem.Tmpfile(cancel, input, out)
}

func (k *killable) Open(cancel <-chan struct{}, input *gofuse.OpenIn, out *gofuse.OpenOut) gofuse.Status {
	cancel, end := k.guard(cancel, &input.Caller)
	defer end()
	return k.RawFileSystem.Open(cancel, input, out)
}

func (k *killable) Read(cancel <-chan struct{}, input *gofuse.ReadIn, buf []byte) (gofuse.ReadResult, gofuse.Status) {
	cancel, end := k.guard(cancel, &input.Caller)
	defer end()
	return k.RawFileSystem.Read(cancel, input, buf)
}

func (k *killable) Lseek(cancel <-chan struct{}, input *gofuse.LseekIn, out *gofuse.LseekOut) gofuse.Status {
	cancel, end := k.guard(cancel, &input.Caller)
	defer end()
	return k.RawFileSystem.Lseek(cancel, input, out)
}

func (k *killable) GetLk(cancel <-chan struct{}, input *gofuse.LkIn, out *gofuse.LkOut) gofuse.Status {
	cancel, end := k.guard(cancel, &input.Caller)
	defer end()
	return k.RawFileSystem.GetLk(cancel, input, out)
}

func (k *killable) SetLk(cancel <-chan struct{}, input *gofuse.LkIn) gofuse.Status {
	cancel, end := k.guard(cancel, &input.Caller)
	defer end()
	return k.RawFileSystem.SetLk(cancel, input)
}

func (k *killable) Release(cancel <-chan struct{}, input *gofuse.ReleaseIn) {
	cancel, end := k.guard(cancel, &input.Caller)
	defer end()
	k.RawFileSystem.Release(cancel, input)
}

func (k *killable) Write(cancel <-chan struct{}, input *gofuse.WriteIn, data []byte) (uint32, gofuse.Status) {
	cancel, end := k.guard(cancel, &input.Caller)
	defer end()
	return k.RawFileSystem.Write(cancel, input, data)
}

func (k *killable) Writev(cancel <-chan struct{}, input *gofuse.WriteIn, data [][]byte) (uint32, gofuse.Status) {
	cancel, end := k.guard(cancel, &input.Caller)
	defer end()
	return k.RawFileSystem.Writev(cancel, input, data)
}

func (k *killable) CopyFileRange(cancel <-chan struct{}, input *gofuse.CopyFileRangeIn) (uint32, gofuse.Status) {
	cancel, end := k.guard(cancel, &input.Caller)
	defer end()
	return k.RawFileSystem.CopyFileRange(cancel, input)
}

func (k *killable) Ioctl(cancel <-chan struct{}, input *gofuse.IoctlIn, inbuf []byte, output *gofuse.IoctlOut, outbuf []byte) gofuse.Status {
	cancel, end := k.guard(cancel, &input.Caller)
	defer end()
	return k.RawFileSystem.Ioctl(cancel, input, inbuf, output, outbuf)
}

func (k *killable) Flush(cancel <-chan struct{}, input *gofuse.FlushIn) gofuse.Status {
	cancel, end := k.guard(cancel, &input.Caller)
	defer end()
	return k.RawFileSystem.Flush(cancel, input)
}

func (k *killable) Fsync(cancel <-chan struct{}, input *gofuse.FsyncIn) gofuse.Status {
	cancel, end := k.guard(cancel, &input.Caller)
	defer end()
	return k.RawFileSystem.Fsync(cancel, input)
}

func (k *killable) Fallocate(cancel <-chan struct{}, input *gofuse.FallocateIn) gofuse.Status {
	cancel, end := k.guard(cancel, &input.Caller)
	defer end()
	return k.RawFileSystem.Fallocate(cancel, input)
}

func (k *killable) OpenDir(cancel <-chan struct{}, input *gofuse.OpenIn, out *gofuse.OpenOut) gofuse.Status {
	cancel, end := k.guard(cancel, &input.Caller)
	defer end()
	return k.RawFileSystem.OpenDir(cancel, input, out)
}

func (k *killable) ReadDir(cancel <-chan struct{}, input *gofuse.ReadIn, out *gofuse.DirEntryList) gofuse.Status {
	cancel, end := k.guard(cancel, &input.Caller)
	defer end()
	return k.RawFileSystem.ReadDir(cancel, input, out)
}

func (k *killable) ReadDirPlus(cancel <-chan struct{}, input *gofuse.ReadIn, out *gofuse.DirEntryList) gofuse.Status {
	cancel, end := k.guard(cancel, &input.Caller)
	defer end()
	return k.RawFileSystem.ReadDirPlus(cancel, input, out)
}

func (k *killable) FsyncDir(cancel <-chan struct{}, input *gofuse.FsyncIn) gofuse.Status {
	cancel, end := k.guard(cancel, &input.Caller)
	defer end()
	return k.RawFileSystem.FsyncDir(cancel, input)
}

func (k *killable) StatFs(cancel <-chan struct{}, header *gofuse.InHeader, out *gofuse.StatfsOut) gofuse.Status {
	cancel, end := k.guard(cancel, &header.Caller)
	defer end()
	return k.RawFileSystem.StatFs(cancel, header, out)
}

func (k *killable) Statx(cancel <-chan struct{}, input *gofuse.StatxIn, out *gofuse.StatxOut) gofuse.Status {
	cancel, end := k.guard(cancel, &input.Caller)
	defer end()
	return k.RawFileSystem.Statx(cancel, input, out)
}
