package fuse

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/regionfs/regionfs/internal/engine"
	"github.com/regionfs/regionfs/internal/nfs/client"
	"github.com/regionfs/regionfs/internal/testkit"
)

// fullDisk is a space guard whose disk is full while full is set, as
// the region's guard is below its floor.
type fullDisk struct{ full atomic.Bool }

func (d *fullDisk) Admit(int64) error { return d.Check(0) }

func (d *fullDisk) Check(int64) error {
	if d.full.Load() {
		return errors.New("free space below the floor (test)")
	}
	return nil
}

// TestFsyncOnFullDisk (issue 9, the same class in the FUSE client): data
// written, then the disk fills before it is committed. Its fsync fails
// with ENOSPC, and so does every retry while the disk is full — the
// client never reports the data stable — and once space is back the
// next fsync writes it again and succeeds, with a later overwrite of
// part of it still on top. Before, the client dropped the data at the
// first failure (the background write's or the COMMIT's) and the second
// fsync answered 0 for data the server did not have.
func TestFsyncOnFullDisk(t *testing.T) {
	disk := &fullDisk{}
	m := newMountSpace(t, disk)
	const size = 3 << 20
	want := make([]byte, size)
	rand.NewChaCha8([32]byte{9}).Read(want)
	path := filepath.Join(m.dir, "f")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(want); err != nil {
		t.Fatal(err)
	}
	// The disk fills before the data is committed: whether the writes
	// were still in flight (they fail) or buffered UNSTABLE on the server
	// (its write-back fails), the data is not stored.
	disk.full.Store(true)
	for try := range 3 {
		if err := f.Sync(); !errors.Is(err, syscall.ENOSPC) {
			t.Fatalf("fsync %d on a full disk: %v, want ENOSPC", try+1, err)
		}
	}
	// Space is back; an overwrite of the first bytes is newer than the
	// data kept for resending and must stay on top of it.
	disk.full.Store(false)
	patch := bytes.Repeat([]byte{0xab}, 4096)
	if _, err := f.WriteAt(patch, 0); err != nil {
		t.Fatal(err)
	}
	copy(want, patch)
	if err := f.Sync(); err != nil {
		t.Fatalf("fsync once space is back: %v", err)
	}
	if err := f.Sync(); err != nil {
		t.Fatalf("second fsync once space is back: %v", err)
	}
	got := m.serverContent(t, "f")
	if !bytes.Equal(got, want) {
		d := firstDiff(got, want)
		t.Fatalf("the server holds %d bytes (first difference at %d: %x, want %x), want %d", len(got), d, got[d:min(d+8, len(got))], want[d:min(d+8, len(want))], len(want))
	}
	if err := f.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
}

// serverContent reads a file of the root directory from the engine,
// below the NFS server and the kernel's page cache.
func (m *testMount) serverContent(t *testing.T, name string) []byte {
	t.Helper()
	ctx := context.Background()
	root := engine.RootCred
	a, err := m.fs.Lookup(ctx, root, engine.RootIno, name)
	if err != nil {
		t.Fatal(err)
	}
	var out []byte
	for {
		data, eof, _, err := m.fs.Read(ctx, root, a.Ino, uint64(len(out)), 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, data...)
		if eof || len(data) == 0 {
			return out
		}
	}
}

// TestResendKeepsWriteOrder: data written UNSTABLE, the server restarts
// (a new write verifier), then part of it is overwritten: at fsync the
// client resends what the old verifier covered, and the newer overwrite
// stays on top. Before, only the ranges of the old verifier were resent,
// after the overwrite, and fsync reported success with the overwrite
// replaced by the older data.
func TestResendKeepsWriteOrder(t *testing.T) {
	m := newMount(t)
	want := make([]byte, 2<<20)
	rand.NewChaCha8([32]byte{5}).Read(want)
	f, err := os.Create(filepath.Join(m.dir, "f"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(want); err != nil {
		t.Fatal(err)
	}
	// The two pieces are on their way to the server (UNSTABLE): wait
	// until it has them, then restart it (it writes them to the engine
	// as it stops, and starts with another verifier).
	c := m.sess.Client(client.Unix("t", 0, 0))
	lr, err := c.Lookup(context.Background(), m.f.o.Root, "f")
	if err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, "the server to hold both pieces", time.Minute, func() bool {
		for _, off := range []int{0, 1 << 20} {
			r, err := c.Read(context.Background(), lr.FH, uint64(off), 4096)
			if err != nil || !bytes.Equal(r.Data, want[off:off+4096]) {
				return false
			}
		}
		return true
	})
	time.Sleep(100 * time.Millisecond) // for the replies to reach the client
	m.stopServer()
	m.startServer()
	patch := bytes.Repeat([]byte{0x5a}, 8192)
	if _, err := f.WriteAt(patch, 4096); err != nil {
		t.Fatal(err)
	}
	copy(want[4096:], patch)
	if err := f.Sync(); err != nil {
		t.Fatalf("fsync after the server restarted: %v", err)
	}
	got := m.serverContent(t, "f")
	if !bytes.Equal(got, want) {
		d := firstDiff(got, want)
		t.Fatalf("the server holds %d bytes, first difference at %d (%x, want %x)", len(got), d, got[d:min(d+8, len(got))], want[d:min(d+8, len(want))])
	}
}
