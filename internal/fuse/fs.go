package fuse

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	gofuse "github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"

	"github.com/regionfs/regionfs/internal/nfs/client"
	"github.com/regionfs/regionfs/internal/nfs/proto"
	"github.com/regionfs/regionfs/internal/nfs/rpc"
)

// Defaults of Options.
const (
	DefaultAttrTimeout   = time.Second
	DefaultEntryTimeout  = time.Second
	DefaultIOSize        = 1 << 20
	DefaultMaxDirtyBytes = 64 << 20
	DefaultReadAhead     = 4
	DefaultMaxInflight   = 4
)

// NoCache is the attribute or entry timeout that means "do not cache":
// go-fuse replaces a zero timeout in a reply with the mount's default
// (AttrTimeout, EntryTimeout), so a reply meaning zero says this.
const NoCache = time.Nanosecond

// noCache is NoCache inside the package.
const noCache = NoCache

// Options configure a file system.
type Options struct {
	Session *client.Session
	// Root is the handle of the mounted directory (MOUNT MNT).
	Root   proto.FH
	Logger *slog.Logger
	// AttrTimeout and EntryTimeout are how long the kernel (and this
	// package) may use attributes and names without asking the server
	// (0: the defaults; NoCache: ask every time).
	AttrTimeout, EntryTimeout time.Duration
	// IOSize is the size of READ and WRITE calls (the server's rtpref and
	// wtpref, at most 1 MiB).
	IOSize int
	// MaxDirtyBytes bounds the written but uncommitted data kept per file;
	// beyond it a writer waits for a COMMIT.
	MaxDirtyBytes int64
	// ReadAhead is how many IOSize pieces sequential reads fetch ahead.
	ReadAhead int
	// MaxInflight bounds the background WRITEs of the whole mount.
	MaxInflight int
	// Hostname is the AUTH_UNIX machine name (os.Hostname when empty).
	Hostname string
}

// FS is a mounted file system's state.
type FS struct {
	o    Options
	sess *client.Session
	log  *slog.Logger
	sem  chan struct{} // background WRITEs in flight
	// notify sends the kernel entry notifications (notify.go).
	notify *notifier
	// bufs are IOSize write buffers whose data is on the server
	// (written FILE_SYNC, or committed): reused, as fresh ones cost a
	// page fault per page at their first write, and the collector.
	bufs sync.Pool
	// noExclAttrs is the connection whose regionfs server answered that
	// it has no REGIONFS_CREATE (createExclusive).
	noExclAttrs atomic.Pointer[client.Conn]
	// noVisible is the connection whose regionfs server answered that
	// it has no REGIONFS_CREATE_VISIBLE (createExclusive).
	noVisible atomic.Pointer[client.Conn]
	// noClose is the connection whose regionfs server answered that it
	// has no REGIONFS_CLOSE (commitPipelined).
	noClose atomic.Pointer[client.Conn]
	// readCopied counts the bytes of file data Reads copied between an
	// NFS reply and their reply to the kernel (for tests: the chunks of
	// a sequential read go to the kernel as the replies brought them).
	readCopied atomic.Int64

	mu    sync.Mutex // guards the fields below; taken after a node's
	dirty map[*node]struct{}
	// removing are the nodes with an unlink or rename over them on its
	// way, by handle (node.removing); removed are the handles of the
	// last ones done, newest at removedNext-1 (openNamed).
	removing    map[string]*node
	removed     [64]string
	removedNext int
	// open are the nodes with open files, by handle, with the directory
	// each was opened in (openIn): while a file opened in a directory is
	// open, an unlink or a rename over a name in it asks the server
	// which file the name leads to and moves that file aside when it is
	// open (named: go-fuse's tree may be stale, and a file may have two
	// nodes), and an open of a gone file uses the node of the file its
	// name leads to that is open already (nodeOf), not a second one.
	open map[string][]openIn
}

// openIn is a node with open files, and the directory it was opened in.
type openIn struct {
	n, dir *node
}

// noteOpenLocked records n's first open (made in dir) or its last close.
// f.mu held.
func (f *FS) noteOpenLocked(n, dir *node, open bool) {
	k := string(n.fh)
	list := f.open[k]
	list = slices.DeleteFunc(list, func(o openIn) bool { return o.n == n })
	if open {
		list = append(list, openIn{n, dir})
	}
	if len(list) == 0 {
		delete(f.open, k)
	} else {
		f.open[k] = list
	}
}

// openNode is a node of the file fh with open files, preferring n, or nil.
func (f *FS) openNode(fh proto.FH, n *node) *node {
	f.mu.Lock()
	defer f.mu.Unlock()
	list := f.open[string(fh)]
	for _, o := range list {
		if o.n == n {
			return n
		}
	}
	if len(list) > 0 {
		return list[0].n
	}
	return nil
}

// openIn reports whether a file opened in dir (or in a directory not
// known) is open.
func (f *FS) openIn(dir *node) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, list := range f.open {
		for _, o := range list {
			if o.dir == dir || o.dir == nil {
				return true
			}
		}
	}
	return false
}

// noteRemovedLocked records that this mount unlinked the file of fh, or
// renamed another over it (removed it, or moved it aside: sillyRename).
// f.mu held.
func (f *FS) noteRemovedLocked(fh proto.FH) {
	f.removed[f.removedNext] = string(fh)
	f.removedNext = (f.removedNext + 1) % len(f.removed)
}

// wasRemoved reports whether this mount recently unlinked the file of fh
// or renamed another over it, from the name it had.
func (f *FS) wasRemoved(fh proto.FH) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, r := range f.removed {
		if r == string(fh) {
			return true
		}
	}
	return false
}

// New returns the file system of o; mount it with Mount.
func New(o Options) *FS {
	if o.AttrTimeout <= 0 {
		o.AttrTimeout = DefaultAttrTimeout
	}
	if o.EntryTimeout <= 0 {
		o.EntryTimeout = DefaultEntryTimeout
	}
	if o.IOSize <= 0 || o.IOSize > DefaultIOSize {
		o.IOSize = DefaultIOSize
	}
	if o.MaxDirtyBytes <= 0 {
		o.MaxDirtyBytes = DefaultMaxDirtyBytes
	}
	if o.ReadAhead <= 0 {
		o.ReadAhead = DefaultReadAhead
	}
	if o.MaxInflight <= 0 {
		o.MaxInflight = DefaultMaxInflight
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Hostname == "" {
		o.Hostname, _ = os.Hostname()
	}
	return &FS{o: o, sess: o.Session, log: o.Logger, sem: make(chan struct{}, o.MaxInflight), dirty: map[*node]struct{}{}, removing: map[string]*node{}, open: map[string][]openIn{}, notify: newNotifier()}
}

// Root is the root node to give to fs.Mount.
func (f *FS) Root() fs.InodeEmbedder { return &node{f: f, fh: f.o.Root} }

// MountOptions are the FUSE options regionfs mounts with; name is the
// source shown in /proc/mounts (fs-…:/path).
func (f *FS) MountOptions(name string) *fs.Options {
	at, et := f.o.AttrTimeout, f.o.EntryTimeout
	neg := time.Duration(0)
	return &fs.Options{
		AttrTimeout:     &at,
		EntryTimeout:    &et,
		NegativeTimeout: &neg,
		// Mode 0000 is a mode (open(O_CREAT) with 0 makes one); go-fuse
		// showed it as 0644, 0755 for a directory.
		NullPermissions: true,
		MountOptions: gofuse.MountOptions{
			AllowOther:    true,
			FsName:        name,
			Name:          "regionfs",
			MaxWrite:      f.o.IOSize,
			MaxReadAhead:  f.o.IOSize,
			MaxBackground: 64,
			DirectMount:   true,
			// Reads answer from memory (ReadResultData): splicing them
			// gains nothing, and go-fuse's attempt sizes a pipe for the
			// reply plus a page, which a 1 MiB read overflows (it logged
			// "trySplice: … max pipe size" at every read) before it fell
			// back to writev anyway.
			DisableSplice: true,
			// The server clears setuid and setgid when an unprivileged
			// caller writes, truncates or a file changes owner. Without
			// this the kernel asks for it with a SETATTR of the mode, as
			// the caller, which a caller who does not own the file may
			// not make: its write or truncate failed with EPERM.
			ExtraCapabilities: gofuse.CAP_HANDLE_KILLPRIV,
			Options:           []string{"default_permissions"},
		},
	}
}

// Mount mounts f on dir with opts (MountOptions, perhaps changed) and
// serves it in the background; Wait on the returned server, or Unmount
// it. Unlike fs.Mount, a signal to a caller ends its request only when
// it is fatal (interrupt.go).
//
// When the kernel ends the connection while requests are in flight (an
// abort through fusectl or umount -f, a lazy unmount), they are cancelled
// and the session is closed (interrupt.go): the serve loop ends even when
// the server cannot be reached, and so does Wait.
func (f *FS) Mount(dir string, opts *fs.Options) (*gofuse.Server, error) {
	k := newKillable(fs.NewNodeFS(f.Root(), opts))
	k.gone = func(inflight int) {
		f.log.Error("the kernel ended the FUSE connection (aborted, or unmounted) while the mount was still answering it; ending its requests and closing the NFS session",
			"requests_in_flight", inflight)
		f.sess.Close()
	}
	// The mount's /dev/fuse descriptor (go-fuse keeps it to itself) is the
	// one that NewServer opens (or receives from fusermount): the
	// process's mounts are made one at a time, so that it is the only new
	// one.
	mountMu.Lock()
	before, listed := fuseDevFDs()
	srv, err := gofuse.NewServer(k, dir, &opts.MountOptions)
	if err != nil {
		mountMu.Unlock()
		return nil, err
	}
	after, listedAfter := fuseDevFDs()
	mountMu.Unlock()
	var dev []int
	for _, fd := range after {
		if !slices.Contains(before, fd) {
			dev = append(dev, fd)
		}
	}
	if listed && listedAfter && len(dev) == 1 {
		k.dev = dev[0]
	}
	go srv.Serve()
	if err := srv.WaitMount(); err != nil {
		// The serve loop ends by itself: the mount it serves is gone.
		return nil, err
	}
	var st syscall.Stat_t
	if err := syscall.Stat(dir, &st); err == nil && k.dev < 0 {
		// fusectl names a connection by its device number.
		p := fmt.Sprintf("%s/%d/waiting", fusectlDir, uint64(unix.Major(st.Dev))<<20|uint64(unix.Minor(st.Dev)))
		if _, err := os.Stat(p); err == nil {
			k.mu.Lock()
			k.waiting = p
			k.mu.Unlock()
		} else {
			f.log.Warn("neither the mount's /dev/fuse descriptor nor fusectl found: an aborted connection is noticed only once its requests end",
				"new_fuse_fds", len(dev), "err", err)
		}
	}
	return srv, nil
}

// fusectlDir is where fusectl is mounted (tests move it).
var fusectlDir = "/sys/fs/fuse/connections"

// mountMu makes the process's mounts one at a time (Mount).
var mountMu sync.Mutex

// fuseDevFDs lists the process's descriptors open on /dev/fuse; false
// when /proc cannot tell.
func fuseDevFDs() ([]int, bool) {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return nil, false
	}
	var fds []int
	for _, e := range ents {
		fd, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if target, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil && target == "/dev/fuse" {
			fds = append(fds, fd)
		}
	}
	return fds, true
}

// SetKernelReadahead sets the kernel's readahead for the mount on dir
// (the read_ahead_kb of its backing device, root only) to ReadAhead
// pieces of IOSize. A FUSE mount starts at 128 KiB, so the kernel asks
// for sequential data 128 KiB at a time, one request after the other;
// with a larger window it asks for IOSize pieces ahead, several at once.
func (f *FS) SetKernelReadahead(dir string) error {
	var st syscall.Stat_t
	if err := syscall.Stat(dir, &st); err != nil {
		return err
	}
	kb := f.o.IOSize * f.o.ReadAhead >> 10
	p := fmt.Sprintf("/sys/class/bdi/%d:%d/read_ahead_kb", unix.Major(st.Dev), unix.Minor(st.Dev))
	return os.WriteFile(p, []byte(strconv.Itoa(kb)+"\n"), 0o644)
}

// Switched is the session's OnSwitch: after a failover to another copy of
// the data, every write not committed before it is lost. Each file with
// such writes fails its next fsync/close with EIO, and is logged.
func (f *FS) Switched(epoch uint64) {
	f.mu.Lock()
	nodes := make([]*node, 0, len(f.dirty))
	for n := range f.dirty {
		nodes = append(nodes, n)
	}
	f.mu.Unlock()
	for _, n := range nodes {
		n.loseUncommitted(epoch)
	}
}

// SyncAll writes back and commits every file's data (at unmount). It
// returns the first error.
func (f *FS) SyncAll(ctx context.Context) error {
	f.mu.Lock()
	nodes := make([]*node, 0, len(f.dirty))
	for n := range f.dirty {
		nodes = append(nodes, n)
	}
	f.mu.Unlock()
	var errs []error
	for _, n := range nodes {
		if errno := n.commit(ctx); errno != 0 {
			errs = append(errs, fmt.Errorf("%s: %w", n.path(), errno))
		}
	}
	return errors.Join(errs...)
}

// writeBuf returns an empty IOSize write buffer.
func (f *FS) writeBuf() []byte {
	if b, ok := f.bufs.Get().(*[]byte); ok {
		return (*b)[:0]
	}
	return make([]byte, 0, f.o.IOSize)
}

// reuse takes back a write buffer from writeBuf whose data is on the
// server and referenced nowhere else any more (others are left to the
// collector).
func (f *FS) reuse(b []byte) {
	if cap(b) == f.o.IOSize {
		b = b[:0]
		f.bufs.Put(&b)
	}
}

func (f *FS) markDirty(n *node, dirty bool) {
	f.mu.Lock()
	if dirty {
		f.dirty[n] = struct{}{}
	} else {
		delete(f.dirty, n)
	}
	f.mu.Unlock()
}

// client returns a client with the credential of the calling process:
// its uid, gid and supplementary groups.
func (f *FS) client(ctx context.Context) *client.Client {
	return f.sess.Client(f.auth(ctx))
}

func (f *FS) auth(ctx context.Context) rpc.OpaqueAuth {
	c, ok := gofuse.FromContext(ctx)
	if !ok {
		return client.Unix(f.o.Hostname, 0, 0)
	}
	var groups []uint32
	if c.Uid != 0 {
		groups = procGroups(c.Pid)
	}
	return client.Unix(f.o.Hostname, c.Uid, c.Gid, groups...)
}

// procGroups reads a process's supplementary groups (at most 16, the
// AUTH_UNIX limit).
func procGroups(pid uint32) []uint32 {
	fd, err := os.Open("/proc/" + strconv.FormatUint(uint64(pid), 10) + "/status")
	if err != nil {
		return nil
	}
	defer fd.Close()
	sc := bufio.NewScanner(fd)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "Groups:")
		if !ok {
			continue
		}
		var out []uint32
		for _, g := range strings.Fields(rest) {
			if v, err := strconv.ParseUint(g, 10, 32); err == nil && len(out) < rpc.MaxGroups {
				out = append(out, uint32(v))
			}
		}
		return out
	}
	return nil
}

// errno maps a client error to the errno the kernel gets.
func errno(err error) syscall.Errno {
	if err == nil {
		return 0
	}
	var st proto.Status
	if errors.As(err, &st) {
		switch st {
		case proto.ErrPerm:
			return syscall.EPERM
		case proto.ErrNoEnt:
			return syscall.ENOENT
		case proto.ErrNXIO:
			return syscall.ENXIO
		case proto.ErrAcces:
			return syscall.EACCES
		case proto.ErrExist:
			return syscall.EEXIST
		case proto.ErrXDev:
			return syscall.EXDEV
		case proto.ErrNoDev:
			return syscall.ENODEV
		case proto.ErrNotDir:
			return syscall.ENOTDIR
		case proto.ErrIsDir:
			return syscall.EISDIR
		case proto.ErrInval, proto.ErrBadType:
			return syscall.EINVAL
		case proto.ErrFBig:
			return syscall.EFBIG
		case proto.ErrNoSpc:
			return syscall.ENOSPC
		case proto.ErrROFS:
			return syscall.EROFS
		case proto.ErrMLink:
			return syscall.EMLINK
		case proto.ErrNameTooLong:
			return syscall.ENAMETOOLONG
		case proto.ErrNotEmpty:
			return syscall.ENOTEMPTY
		case proto.ErrDQuot:
			return syscall.EDQUOT
		case proto.ErrStale, proto.ErrBadHandle:
			return syscall.ESTALE
		case proto.ErrNotSupp:
			return syscall.ENOTSUP
		case proto.ErrJukebox:
			return syscall.EAGAIN
		}
		return syscall.EIO
	}
	var e syscall.Errno
	if errors.As(err, &e) {
		return e
	}
	if errors.Is(err, context.Canceled) {
		return syscall.EINTR
	}
	return syscall.EIO
}

// typeBits is the S_IF* of an NFS file type.
func typeBits(t proto.FileType) uint32 {
	switch t {
	case proto.TypeDir:
		return syscall.S_IFDIR
	case proto.TypeLnk:
		return syscall.S_IFLNK
	case proto.TypeBlk:
		return syscall.S_IFBLK
	case proto.TypeChr:
		return syscall.S_IFCHR
	case proto.TypeSock:
		return syscall.S_IFSOCK
	case proto.TypeFIFO:
		return syscall.S_IFIFO
	}
	return syscall.S_IFREG
}

// fillAttr converts NFS attributes.
func fillAttr(a *proto.Attr, out *gofuse.Attr) {
	out.Ino = a.FileID
	out.Size = a.Size
	out.Blocks = (a.Used + 511) / 512
	out.Blksize = 4096
	out.Mode = typeBits(a.Type) | a.Mode&0o7777
	out.Nlink = a.Nlink
	out.Uid, out.Gid = a.UID, a.GID
	out.Rdev = uint32(a.RdevMajor<<8 | a.RdevMinor&0xff | (a.RdevMinor&^0xff)<<12)
	out.Atime, out.Atimensec = uint64(a.Atime.Sec), a.Atime.Nsec
	out.Mtime, out.Mtimensec = uint64(a.Mtime.Sec), a.Mtime.Nsec
	out.Ctime, out.Ctimensec = uint64(a.Ctime.Sec), a.Ctime.Nsec
}

// stableAttr identifies a node to go-fuse: the file id, and a generation
// from the handle (a reused inode number is another node).
func stableAttr(fh proto.FH, a *proto.Attr) fs.StableAttr {
	h := fnv.New64a()
	h.Write(fh)
	return fs.StableAttr{Mode: typeBits(a.Type), Ino: a.FileID, Gen: h.Sum64()}
}
