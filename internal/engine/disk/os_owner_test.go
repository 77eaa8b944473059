//go:build !386

// go-fuse (the test's squashing mount) does not build for 32-bit x86,
// where .ci/run vets this package's raw system calls.

package disk

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"

	"github.com/regionfs/regionfs/internal/testkit"
)

// Owners in TestCreateNotOwner: the daemon's and the one a squashing
// mount gives every file.
const (
	daemonUID = 65534
	squashUID = 65533
)

// squashNode is a loopback directory whose files all show squashUID as
// their owner, whoever created them: what a client sees of an all_squash
// NFS export or a mount with a forced uid.
type squashNode struct{ *gofs.LoopbackNode }

func (n *squashNode) WrapChild(_ context.Context, ops gofs.InodeEmbedder) gofs.InodeEmbedder {
	return &squashNode{ops.(*gofs.LoopbackNode)}
}

func squash(a *fuse.Attr) { a.Uid, a.Gid = squashUID, squashUID }

func (n *squashNode) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	ch, errno := n.LoopbackNode.Lookup(ctx, name, out)
	squash(&out.Attr)
	return ch, errno
}

func (n *squashNode) Create(ctx context.Context, name string, flags, mode uint32, out *fuse.EntryOut) (*gofs.Inode, gofs.FileHandle, uint32, syscall.Errno) {
	ch, fh, ff, errno := n.LoopbackNode.Create(ctx, name, flags, mode, out)
	squash(&out.Attr)
	return ch, fh, ff, errno
}

func (n *squashNode) Mkdir(ctx context.Context, name string, mode uint32, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	ch, errno := n.LoopbackNode.Mkdir(ctx, name, mode, out)
	squash(&out.Attr)
	return ch, errno
}

func (n *squashNode) Getattr(ctx context.Context, f gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	errno := n.LoopbackNode.Getattr(ctx, f, out)
	squash(&out.Attr)
	return errno
}

func (n *squashNode) Setattr(ctx context.Context, f gofs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	errno := n.LoopbackNode.Setattr(ctx, f, in, out)
	squash(&out.Attr)
	return errno
}

// squashMount mounts a squashing loopback of a new directory (FUSE,
// served by this process) and returns the mount point, which every user
// can reach.
func squashMount(t *testing.T) string {
	t.Helper()
	if _, err := os.Stat("/dev/fuse"); err != nil || os.Geteuid() != 0 {
		testkit.Missing(t, "the test mounts FUSE as root and drops to another uid (/dev/fuse: %v, euid %d)", err, os.Geteuid())
	}
	base := t.TempDir()
	backing, mnt := filepath.Join(base, "backing"), filepath.Join(base, "mnt")
	for _, d := range []string{backing, mnt} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// The test's temporary directories are 0700: the daemon's uid must
	// reach the mount point.
	for d := base; d != filepath.Dir(d) && d != os.TempDir(); d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	lb, err := gofs.NewLoopbackRoot(backing)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := gofs.Mount(mnt, &squashNode{lb.(*gofs.LoopbackNode)}, &gofs.Options{
		MountOptions: fuse.MountOptions{FsName: "squash", Name: "regionfs-test", DirectMount: true},
	})
	if err != nil {
		t.Fatalf("mount: %v", err)
	}
	t.Cleanup(func() {
		if err := srv.Unmount(); err != nil {
			t.Errorf("unmount: %v", err)
		}
	})
	return mnt
}

// asDaemon runs fn on a thread whose file-system uid is daemonUID: its
// calls are checked as those of a daemon running as that user (changing
// the fsuid from 0 clears the thread's CAP_FOWNER and CAP_DAC_OVERRIDE).
// The thread ends with fn's goroutine.
func asDaemon(t *testing.T, fn func()) {
	t.Helper()
	done := make(chan struct{})
	var setErr error
	go func() {
		defer close(done)
		runtime.LockOSThread() // never unlocked: the thread exits with the goroutine
		unix.Setfsuid(daemonUID)
		if got, _ := unix.SetfsuidRetUid(-1); got != daemonUID {
			setErr = os.ErrPermission
			return
		}
		fn()
	}()
	<-done
	if setErr != nil {
		t.Fatalf("setfsuid(%d) did not take", daemonUID)
	}
}

// TestCreateNotOwner: a daemon not running as root stores its blocks in
// a directory whose files it does not own once created (an all_squash
// NFS export, a uid-forcing mount; here a FUSE mount that shows another
// owner). Create opened its files with O_NOATIME, which only a file's
// owner may set: every Create failed with EPERM after the file was
// created, so every block Put failed and left an empty temporary file.
// Create now opens such files without it; what it writes reads back
// through File and Held alike, and a failed Create leaves no file.
func TestCreateNotOwner(t *testing.T) {
	mnt := squashMount(t)
	o, err := NewOS(mnt)
	if err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte("block "), 1000)
	asDaemon(t, func() {
		for i, name := range []string{"a.tmp", "b.tmp"} {
			f, err := o.Create(name)
			if err != nil {
				t.Errorf("Create %s (#%d) as uid %d on a directory whose files are uid %d's: %v", name, i+1, daemonUID, squashUID, err)
				return
			}
			if _, err := f.Write(data); err != nil {
				t.Error(err)
				return
			}
			if err := f.Sync(); err != nil {
				t.Error(err)
				return
			}
			h := f.(*osFile).Hold(name, int64(len(data)))
			got, _, err := h.ReadWhole(nil, false)
			if err != nil || !bytes.Equal(got, data) {
				t.Errorf("held %s read back %d bytes, %v; want %d bytes", name, len(got), err, len(data))
			}
			if err := h.Close(); err != nil {
				t.Error(err)
			}
			got, _, err = o.ReadWhole(name, nil)
			if err != nil || !bytes.Equal(got, data) {
				t.Errorf("ReadWhole %s: %d bytes, %v; want %d bytes", name, len(got), err, len(data))
			}
		}
		if _, err := o.Create("a.tmp"); !os.IsExist(err) {
			t.Errorf("Create of an existing name: %v, want it to exist", err)
		}
	})
	st, err := os.Stat(filepath.Join(mnt, "a.tmp"))
	if err != nil {
		t.Fatal(err)
	}
	if sys := st.Sys().(*syscall.Stat_t); sys.Uid != squashUID {
		t.Fatalf("a created file is owned by %d, want %d: the mount does not squash and the test proves nothing", sys.Uid, squashUID)
	}
	entries, err := o.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if len(names) != 2 || names[0] != "a.tmp" || names[1] != "b.tmp" {
		t.Errorf("directory holds %q, want the two files created", names)
	}
}
