package fuse

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	gofuse "github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"
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

// killPoll is how often interrupted requests look at their callers, and
// watchIdle how many polls without a request the watcher waits before it
// stops (the next request starts it again).
const (
	killPoll  = 50 * time.Millisecond
	watchIdle = 20
)

// sigkillMask is SIGKILL's bit in /proc/TID/status's signal masks.
const sigkillMask = 1 << (9 - 1)

// killable is the mount's raw file system: go-fuse's node bridge with
// every request's cancel channel replaced by one closed only when the
// caller is killed. One watcher goroutine looks at the requests in flight
// every poll while there are any (a goroutine per request to wait on its
// cancel channel cost 12-15 % more CPU per open and close).
type killable struct {
	gofuse.RawFileSystem

	// dev is the mount's /dev/fuse descriptor (-1 when unknown), waiting
	// the fusectl file counting the kernel's requests of the mount
	// (/sys/fs/fuse/connections/N/waiting; "" when unknown, or when dev is
	// known), and gone is called once when the kernel has ended the
	// connection (see connGone).
	dev     int
	waiting string
	gone    func(inflight int)

	mu        sync.Mutex
	inflight  map[*guarded]struct{}
	watching  bool
	ended     bool      // the connection is gone: every request is cancelled
	lastCheck time.Time // of waiting
}

// guarded is a request in flight.
type guarded struct {
	cancel <-chan struct{} // go-fuse's: closed when the kernel interrupts the request
	tid    uint32          // go-fuse reuses the request's memory once it is answered
	out    chan struct{}   // the request's: closed when its caller is killed
	since  time.Time
}

func newKillable(raw gofuse.RawFileSystem) *killable {
	return &killable{RawFileSystem: raw, inflight: map[*guarded]struct{}{}, dev: -1}
}

// guard registers a request of caller whose go-fuse cancel channel is
// cancel; its out is the channel to give the file system instead. end
// it when the request is answered.
func (k *killable) guard(cancel <-chan struct{}, caller *gofuse.Caller) *guarded {
	g := &guarded{cancel: cancel, tid: caller.Pid, out: make(chan struct{}), since: time.Now()}
	k.mu.Lock()
	if k.ended {
		close(g.out)
		k.mu.Unlock()
		return g
	}
	k.inflight[g] = struct{}{}
	if !k.watching {
		k.watching = true
		go k.watch()
	}
	k.mu.Unlock()
	return g
}

func (k *killable) end(g *guarded) {
	k.mu.Lock()
	delete(k.inflight, g)
	k.mu.Unlock()
}

// watch looks at the interrupted requests in flight every poll and
// cancels those whose caller is killed, until no request has come for
// watchIdle polls.
func (k *killable) watch() {
	t := time.NewTicker(killPoll)
	defer t.Stop()
	var interrupted []*guarded
	for idle := 0; ; {
		<-t.C
		k.mu.Lock()
		if len(k.inflight) == 0 {
			if idle++; idle >= watchIdle {
				k.watching = false
				k.mu.Unlock()
				return
			}
		} else {
			idle = 0
		}
		interrupted = interrupted[:0]
		for g := range k.inflight {
			select {
			case <-g.cancel:
				interrupted = append(interrupted, g)
			default:
			}
		}
		k.mu.Unlock()
		if k.connGone() {
			return
		}
		for _, g := range interrupted {
			if !callerKilled(g.tid) {
				continue
			}
			k.mu.Lock()
			if _, ok := k.inflight[g]; ok {
				delete(k.inflight, g) // closed once
				close(g.out)
			}
			k.mu.Unlock()
		}
	}
}

// Requests whose caller no longer waits. When the kernel ends the FUSE
// connection (`echo 1 > /sys/fs/fuse/connections/N/abort`, `umount -f`,
// or the last user of a lazily unmounted mount gone), every request it had
// sent fails at once for its caller, but the mount's handlers of them go
// on: with the server unreachable they retried for ever, go-fuse's serve
// loop waited for them, and `regionfs mount` never exited. Once a request
// has been in flight for connCheck, the watcher asks the kernel whether
// the connection has ended, every connCheck:
//   - poll(2) of the mount's /dev/fuse descriptor (dev) says POLLERR once
//     the connection is aborted, whatever mounted or not (reads of it fail
//     with ENODEV from then on, which is how go-fuse's readers end). The
//     descriptor stays open while a request is in flight (go-fuse closes
//     it once its loops, which run the handlers, have ended), and the
//     request is looked at again after the poll.
//   - without it, fusectl: a handler in flight has not answered yet, so
//     the kernel counts its request among the connection's waiting ones
//     until it does; none counted, or the connection's directory gone,
//     means the connection has ended.
//
// Then every request is cancelled, gone is called (the mount closes its
// session, which ends its background work), and go-fuse's serve loop
// ends.

// connCheck is how long a request is in flight before the watcher asks
// fusectl, and how often it asks.
const connCheck = time.Second

// connGone reports (once, after cancelling every request and calling
// gone) that the kernel has ended the connection.
func (k *killable) connGone() bool {
	now := time.Now()
	k.mu.Lock()
	waiting, dev := k.waiting, k.dev
	var old *guarded
	for g := range k.inflight {
		if now.Sub(g.since) >= connCheck {
			old = g
			break
		}
	}
	due := (dev >= 0 || waiting != "") && old != nil && now.Sub(k.lastCheck) >= connCheck
	if due {
		k.lastCheck = now
	}
	k.mu.Unlock()
	if !due {
		return false
	}
	if dev >= 0 {
		if !devEnded(dev) {
			return false
		}
	} else {
		b, err := os.ReadFile(waiting)
		if err == nil && strings.TrimSpace(string(b)) != "0" {
			return false
		}
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return false
		}
	}
	k.mu.Lock()
	if _, ok := k.inflight[old]; !ok {
		// Answered meanwhile: its request may have been the one counted.
		k.mu.Unlock()
		return false
	}
	k.ended = true
	n := len(k.inflight)
	for g := range k.inflight {
		close(g.out)
	}
	clear(k.inflight)
	k.watching = false
	k.mu.Unlock()
	if k.gone != nil {
		k.gone(n)
	}
	return true
}

// devEnded says whether poll(2) of a /dev/fuse descriptor says POLLERR:
// its connection has been ended (fuse_dev_poll).
func devEnded(fd int) bool {
	p := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	for {
		n, err := unix.Poll(p, 0)
		if err == unix.EINTR {
			continue
		}
		return err == nil && n == 1 && p[0].Revents&unix.POLLERR != 0
	}
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
	g := k.guard(cancel, &header.Caller)
	defer k.end(g)
	return k.RawFileSystem.Lookup(g.out, header, name, out)
}

func (k *killable) GetAttr(cancel <-chan struct{}, input *gofuse.GetAttrIn, out *gofuse.AttrOut) gofuse.Status {
	g := k.guard(cancel, &input.Caller)
	defer k.end(g)
	return k.RawFileSystem.GetAttr(g.out, input, out)
}

func (k *killable) SetAttr(cancel <-chan struct{}, input *gofuse.SetAttrIn, out *gofuse.AttrOut) gofuse.Status {
	g := k.guard(cancel, &input.Caller)
	defer k.end(g)
	return k.RawFileSystem.SetAttr(g.out, input, out)
}

func (k *killable) Mknod(cancel <-chan struct{}, input *gofuse.MknodIn, name string, out *gofuse.EntryOut) gofuse.Status {
	g := k.guard(cancel, &input.Caller)
	defer k.end(g)
	return k.RawFileSystem.Mknod(g.out, input, name, out)
}

func (k *killable) Mkdir(cancel <-chan struct{}, input *gofuse.MkdirIn, name string, out *gofuse.EntryOut) gofuse.Status {
	g := k.guard(cancel, &input.Caller)
	defer k.end(g)
	return k.RawFileSystem.Mkdir(g.out, input, name, out)
}

func (k *killable) Unlink(cancel <-chan struct{}, header *gofuse.InHeader, name string) gofuse.Status {
	g := k.guard(cancel, &header.Caller)
	defer k.end(g)
	return k.RawFileSystem.Unlink(g.out, header, name)
}

func (k *killable) Rmdir(cancel <-chan struct{}, header *gofuse.InHeader, name string) gofuse.Status {
	g := k.guard(cancel, &header.Caller)
	defer k.end(g)
	return k.RawFileSystem.Rmdir(g.out, header, name)
}

func (k *killable) Rename(cancel <-chan struct{}, input *gofuse.RenameIn, oldName, newName string) gofuse.Status {
	g := k.guard(cancel, &input.Caller)
	defer k.end(g)
	return k.RawFileSystem.Rename(g.out, input, oldName, newName)
}

func (k *killable) Link(cancel <-chan struct{}, input *gofuse.LinkIn, name string, out *gofuse.EntryOut) gofuse.Status {
	g := k.guard(cancel, &input.Caller)
	defer k.end(g)
	return k.RawFileSystem.Link(g.out, input, name, out)
}

func (k *killable) Symlink(cancel <-chan struct{}, header *gofuse.InHeader, target, name string, out *gofuse.EntryOut) gofuse.Status {
	g := k.guard(cancel, &header.Caller)
	defer k.end(g)
	return k.RawFileSystem.Symlink(g.out, header, target, name, out)
}

func (k *killable) Readlink(cancel <-chan struct{}, header *gofuse.InHeader) ([]byte, gofuse.Status) {
	g := k.guard(cancel, &header.Caller)
	defer k.end(g)
	return k.RawFileSystem.Readlink(g.out, header)
}

func (k *killable) Access(cancel <-chan struct{}, input *gofuse.AccessIn) gofuse.Status {
	g := k.guard(cancel, &input.Caller)
	defer k.end(g)
	return k.RawFileSystem.Access(g.out, input)
}

func (k *killable) GetXAttr(cancel <-chan struct{}, header *gofuse.InHeader, attr string, dest []byte) (uint32, gofuse.Status) {
	g := k.guard(cancel, &header.Caller)
	defer k.end(g)
	return k.RawFileSystem.GetXAttr(g.out, header, attr, dest)
}

func (k *killable) ListXAttr(cancel <-chan struct{}, header *gofuse.InHeader, dest []byte) (uint32, gofuse.Status) {
	g := k.guard(cancel, &header.Caller)
	defer k.end(g)
	return k.RawFileSystem.ListXAttr(g.out, header, dest)
}

func (k *killable) SetXAttr(cancel <-chan struct{}, input *gofuse.SetXAttrIn, attr string, data []byte) gofuse.Status {
	g := k.guard(cancel, &input.Caller)
	defer k.end(g)
	return k.RawFileSystem.SetXAttr(g.out, input, attr, data)
}

func (k *killable) RemoveXAttr(cancel <-chan struct{}, header *gofuse.InHeader, attr string) gofuse.Status {
	g := k.guard(cancel, &header.Caller)
	defer k.end(g)
	return k.RawFileSystem.RemoveXAttr(g.out, header, attr)
}

func (k *killable) Create(cancel <-chan struct{}, input *gofuse.CreateIn, name string, out *gofuse.CreateOut) gofuse.Status {
	g := k.guard(cancel, &input.Caller)
	defer k.end(g)
	return k.RawFileSystem.Create(g.out, input, name, out)
}

func (k *killable) Tmpfile(cancel <-chan struct{}, input *gofuse.CreateIn, out *gofuse.CreateOut) gofuse.Status {
	g := k.guard(cancel, &input.Caller)
	defer k.end(g)
	return k.RawFileSystem.Tmpfile(g.out, input, out)
}

func (k *killable) Open(cancel <-chan struct{}, input *gofuse.OpenIn, out *gofuse.OpenOut) gofuse.Status {
	g := k.guard(cancel, &input.Caller)
	defer k.end(g)
	return k.RawFileSystem.Open(g.out, input, out)
}

func (k *killable) Read(cancel <-chan struct{}, input *gofuse.ReadIn, buf []byte) (gofuse.ReadResult, gofuse.Status) {
	g := k.guard(cancel, &input.Caller)
	defer k.end(g)
	return k.RawFileSystem.Read(g.out, input, buf)
}

func (k *killable) Lseek(cancel <-chan struct{}, input *gofuse.LseekIn, out *gofuse.LseekOut) gofuse.Status {
	g := k.guard(cancel, &input.Caller)
	defer k.end(g)
	return k.RawFileSystem.Lseek(g.out, input, out)
}

func (k *killable) GetLk(cancel <-chan struct{}, input *gofuse.LkIn, out *gofuse.LkOut) gofuse.Status {
	g := k.guard(cancel, &input.Caller)
	defer k.end(g)
	return k.RawFileSystem.GetLk(g.out, input, out)
}

func (k *killable) SetLk(cancel <-chan struct{}, input *gofuse.LkIn) gofuse.Status {
	g := k.guard(cancel, &input.Caller)
	defer k.end(g)
	return k.RawFileSystem.SetLk(g.out, input)
}

func (k *killable) Release(cancel <-chan struct{}, input *gofuse.ReleaseIn) {
	g := k.guard(cancel, &input.Caller)
	defer k.end(g)
	k.RawFileSystem.Release(g.out, input)
}

func (k *killable) Write(cancel <-chan struct{}, input *gofuse.WriteIn, data []byte) (uint32, gofuse.Status) {
	g := k.guard(cancel, &input.Caller)
	defer k.end(g)
	return k.RawFileSystem.Write(g.out, input, data)
}

func (k *killable) Writev(cancel <-chan struct{}, input *gofuse.WriteIn, data [][]byte) (uint32, gofuse.Status) {
	g := k.guard(cancel, &input.Caller)
	defer k.end(g)
	return k.RawFileSystem.Writev(g.out, input, data)
}

func (k *killable) CopyFileRange(cancel <-chan struct{}, input *gofuse.CopyFileRangeIn) (uint32, gofuse.Status) {
	g := k.guard(cancel, &input.Caller)
	defer k.end(g)
	return k.RawFileSystem.CopyFileRange(g.out, input)
}

func (k *killable) Ioctl(cancel <-chan struct{}, input *gofuse.IoctlIn, inbuf []byte, output *gofuse.IoctlOut, outbuf []byte) gofuse.Status {
	g := k.guard(cancel, &input.Caller)
	defer k.end(g)
	return k.RawFileSystem.Ioctl(g.out, input, inbuf, output, outbuf)
}

func (k *killable) Flush(cancel <-chan struct{}, input *gofuse.FlushIn) gofuse.Status {
	g := k.guard(cancel, &input.Caller)
	defer k.end(g)
	return k.RawFileSystem.Flush(g.out, input)
}

func (k *killable) Fsync(cancel <-chan struct{}, input *gofuse.FsyncIn) gofuse.Status {
	g := k.guard(cancel, &input.Caller)
	defer k.end(g)
	return k.RawFileSystem.Fsync(g.out, input)
}

func (k *killable) Fallocate(cancel <-chan struct{}, input *gofuse.FallocateIn) gofuse.Status {
	g := k.guard(cancel, &input.Caller)
	defer k.end(g)
	return k.RawFileSystem.Fallocate(g.out, input)
}

func (k *killable) OpenDir(cancel <-chan struct{}, input *gofuse.OpenIn, out *gofuse.OpenOut) gofuse.Status {
	g := k.guard(cancel, &input.Caller)
	defer k.end(g)
	return k.RawFileSystem.OpenDir(g.out, input, out)
}

func (k *killable) ReadDir(cancel <-chan struct{}, input *gofuse.ReadIn, out *gofuse.DirEntryList) gofuse.Status {
	g := k.guard(cancel, &input.Caller)
	defer k.end(g)
	return k.RawFileSystem.ReadDir(g.out, input, out)
}

func (k *killable) ReadDirPlus(cancel <-chan struct{}, input *gofuse.ReadIn, out *gofuse.DirEntryList) gofuse.Status {
	g := k.guard(cancel, &input.Caller)
	defer k.end(g)
	return k.RawFileSystem.ReadDirPlus(g.out, input, out)
}

func (k *killable) FsyncDir(cancel <-chan struct{}, input *gofuse.FsyncIn) gofuse.Status {
	g := k.guard(cancel, &input.Caller)
	defer k.end(g)
	return k.RawFileSystem.FsyncDir(g.out, input)
}

func (k *killable) StatFs(cancel <-chan struct{}, header *gofuse.InHeader, out *gofuse.StatfsOut) gofuse.Status {
	g := k.guard(cancel, &header.Caller)
	defer k.end(g)
	return k.RawFileSystem.StatFs(g.out, header, out)
}

func (k *killable) Statx(cancel <-chan struct{}, input *gofuse.StatxIn, out *gofuse.StatxOut) gofuse.Status {
	g := k.guard(cancel, &input.Caller)
	defer k.end(g)
	return k.RawFileSystem.Statx(g.out, input, out)
}
