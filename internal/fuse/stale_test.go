package fuse

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/regionfs/regionfs/internal/nfs/client"
	"github.com/regionfs/regionfs/internal/nfs/proto"
)

// TestOpenAfterRenameOverElsewhere: a file the mount has listed is renamed
// over by another client; opening its path through the mount reads the
// new file. The open of the old one fails with ESTALE, and the kernel
// looks the path up again once: that lookup was answered from the
// directory's last listing, with the old file again, and the open failed
// with ESTALE. The mount now forgets the listing when a file it held is
// gone.
func TestOpenAfterRenameOverElsewhere(t *testing.T) {
	m := newMount(t)
	c := m.sess.Client(client.Unix("t", 0, 0))
	put := func(name, data string) {
		mode := uint32(0o644)
		cr, err := c.Create(context.Background(), m.f.o.Root, name, proto.Unchecked, proto.Sattr{Mode: &mode})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Write(context.Background(), cr.FH, 0, []byte(data), proto.FileSync); err != nil {
			t.Fatal(err)
		}
	}
	put("target", "old contents")
	put("tmp", "new contents")
	if _, err := os.ReadDir(m.dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(m.dir, "target")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Rename(context.Background(), m.f.o.Root, "tmp", m.f.o.Root, "target"); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(m.dir, "target"))
	if err != nil || string(got) != "new contents" {
		t.Fatalf("open of a path renamed over by another client: %q, %v; want the new contents", got, err)
	}
}

// stormVersion is the contents of version i of a renamed-over file.
func stormVersion(i int) string {
	return fmt.Sprintf("version %06d %s\n", i, strings.Repeat("x", 100+i%3000))
}

// renameStorm opens and reads path from readers goroutines while replace
// puts versions 1..renames in its place; it returns the opens and reads
// that failed with ESTALE (a read of an open file that another client
// removed may: NFSv3 servers drop a file at its last unlink). Every read
// must see one whole version.
func renameStorm(t *testing.T, path string, renames, readers int, replace func(i int) error) (reads, staleOpens, staleReads int64) {
	t.Helper()
	var stop atomic.Bool
	var nReads, nStaleOpen, nStaleRead atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, readers+1)
	for r := range readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				nReads.Add(1)
				f, err := os.Open(path)
				if errors.Is(err, syscall.ESTALE) {
					nStaleOpen.Add(1)
					continue
				}
				if err != nil {
					errs <- fmt.Errorf("reader %d: open: %w", r, err)
					return
				}
				b, err := io.ReadAll(f)
				f.Close()
				if errors.Is(err, syscall.ESTALE) {
					nStaleRead.Add(1)
					continue
				}
				if err != nil {
					errs <- fmt.Errorf("reader %d: read: %w", r, err)
					return
				}
				var i int
				if _, err := fmt.Sscanf(string(b), "version %d", &i); err != nil || string(b) != stormVersion(i) {
					errs <- fmt.Errorf("reader %d read a torn or unknown version (%d bytes: %.20q)", r, len(b), b)
					return
				}
			}
		}()
	}
	for i := 1; i <= renames; i++ {
		if err := replace(i); err != nil {
			errs <- err
			break
		}
	}
	stop.Store(true)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	return nReads.Load(), nStaleOpen.Load(), nStaleRead.Load()
}

// stormRenames is how many times the rename storms replace their file;
// REGIONFS_STORM_RENAMES sets another count (to run them longer).
func stormRenames(t *testing.T, def int) int {
	if v := os.Getenv("REGIONFS_STORM_RENAMES"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			t.Fatalf("REGIONFS_STORM_RENAMES: %v", err)
		}
		return n
	}
	return def
}

// TestRenameStormReaders: readers open and read a path that a writer of
// the same mount keeps replacing (write a temporary file, rename it over
// the path). Every open succeeds and every read sees a whole version,
// old or new, never ESTALE, as on a local file system (qa11's rig saw
// 1-4 in ~1 200 renames; 6-12 reads of open files here before c00ced8).
// An open whose file was renamed over failed with ESTALE, which the
// kernel retries once; one in 3 000-9 000 lost the race again, and the
// application saw ESTALE: the mount now opens the file the name leads
// to itself (openNamed). A read of an open file still failed with ESTALE
// now and then (CI on 5e25f35: 2 in 28 033 reads; here 1-2 per 6 000-8 000
// renames under -race and load): the rename over the name looked at the
// node go-fuse's tree held under it, a second and closed node of the open
// file, and dropped the file; an open failed twice when its look-up fell
// between the open file's move aside and the rename. The mount now asks
// the server which file the name leads to while a file of the directory
// is open (named), and an open waits for a rename over its name that is
// on its way (awaitReplace).
func TestRenameStormReaders(t *testing.T) {
	m := newMount(t)
	target := filepath.Join(m.dir, "target")
	if err := os.WriteFile(target, []byte(stormVersion(0)), 0o644); err != nil {
		t.Fatal(err)
	}
	// The versions are written in batches and renamed over the path one
	// after the other: a rename per round trip, so that the kernel's
	// retry of an open loses the race too now and then.
	const batch = 50
	tmp := func(i int) string { return filepath.Join(m.dir, fmt.Sprintf("tmp%d", i%batch)) }
	renames := stormRenames(t, 2000)
	reads, staleOpens, staleReads := renameStorm(t, target, renames, 3, func(i int) error {
		if i%batch == 1 {
			for j := i; j < i+batch; j++ {
				if err := os.WriteFile(tmp(j), []byte(stormVersion(j)), 0o644); err != nil {
					return err
				}
			}
		}
		return os.Rename(tmp(i), target)
	})
	t.Logf("%d renames, %d reads, %d ESTALE at open, %d reading", renames, reads, staleOpens, staleReads)
	if staleOpens+staleReads > 0 {
		t.Errorf("%d opens and %d reads of %d failed with ESTALE", staleOpens, staleReads, reads)
	}
}

// TestRenameStormOtherClient: readers open and read a path through the
// mount while another NFS client keeps renaming files over it. The
// kernel's entry for the name leads to a file the server has dropped for
// up to EntryTimeout; an open of it failed with ESTALE, and so did the
// kernel's one retry whenever the file it looked up was renamed over
// before its open (20-33 % of the opens here). An open now mostly
// succeeds with the file the name leads to (openNamed, goneAttr). A read of an open file may still fail with
// ESTALE: the other client's rename drops the file on the server, which
// NFSv3 gives no way to prevent.
func TestRenameStormOtherClient(t *testing.T) {
	m := newMount(t)
	ctx := context.Background()
	other := client.NewSession(client.SessionOptions{
		Logger: logger(t),
		Dial: func(ctx context.Context) (client.Dialed, error) {
			var d net.Dialer
			nc, err := d.DialContext(ctx, "tcp", m.addr)
			if err != nil {
				return client.Dialed{}, err
			}
			return client.Dialed{Conn: client.NewConn(nc), Addr: m.addr}, nil
		},
	})
	defer other.Close()
	c := other.Client(client.Unix("other", 0, 0))
	root := m.f.o.Root
	put := func(name string, i int) error {
		mode := uint32(0o644)
		cr, err := c.Create(ctx, root, name, proto.Unchecked, proto.Sattr{Mode: &mode})
		if err != nil {
			return err
		}
		_, err = c.Write(ctx, cr.FH, 0, []byte(stormVersion(i)), proto.FileSync)
		return err
	}
	if err := put("target", 0); err != nil {
		t.Fatal(err)
	}
	renames := stormRenames(t, 2000)
	reads, staleOpens, staleReads := renameStorm(t, filepath.Join(m.dir, "target"), renames, 3, func(i int) error {
		tmp := fmt.Sprintf("tmp%d", i%4)
		if err := put(tmp, i); err != nil {
			return err
		}
		_, err := c.Rename(ctx, root, tmp, root, "target")
		return err
	})
	t.Logf("%d renames, %d reads, %d ESTALE at open, %d reading (allowed)", renames, reads, staleOpens, staleReads)
	// Not zero yet: an open whose file is gone while the mount's tree
	// holds another file under the name that the other client renamed
	// over too still fails with ESTALE twice now and then (0.4-1.5 % of
	// the opens here, 20-33 % before openNamed and goneAttr).
	if staleOpens*20 > reads {
		t.Errorf("%d of %d opens failed with ESTALE (more than 5 %%)", staleOpens, reads)
	}
}
