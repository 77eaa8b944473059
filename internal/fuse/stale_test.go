package fuse

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
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

// TestRenameStormReaders: readers open and read a path that a writer of
// the same mount keeps replacing (write a temporary file, rename it over
// the path). Every read sees a whole version, old or new, never ESTALE
// (qa11's rig saw 1-4 in ~1 200 renames; 6-12 reads of open files here).
func TestRenameStormReaders(t *testing.T) {
	m := newMount(t)
	const renames, readers = 1200, 2
	target := filepath.Join(m.dir, "target")
	version := func(i int) string { return fmt.Sprintf("version %06d %s\n", i, strings.Repeat("x", 100+i%3000)) }
	if err := os.WriteFile(target, []byte(version(0)), 0o644); err != nil {
		t.Fatal(err)
	}
	var stop atomic.Bool
	var reads, stale, staleOpen atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, readers+1)
	for r := range readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				reads.Add(1)
				f, err := os.Open(target)
				if errors.Is(err, syscall.ESTALE) {
					stale.Add(1)
					staleOpen.Add(1)
					continue
				}
				if err != nil {
					errs <- fmt.Errorf("reader %d: %w", r, err)
					return
				}
				b, err := io.ReadAll(f)
				f.Close()
				if errors.Is(err, syscall.ESTALE) {
					stale.Add(1)
					continue
				}
				if err != nil {
					errs <- fmt.Errorf("reader %d: %w", r, err)
					return
				}
				var i int
				if _, err := fmt.Sscanf(string(b), "version %d", &i); err != nil || string(b) != version(i) {
					errs <- fmt.Errorf("reader %d read a torn or unknown version (%d bytes)", r, len(b))
					return
				}
			}
		}()
	}
	for i := 1; i <= renames; i++ {
		tmp := filepath.Join(m.dir, fmt.Sprintf("tmp%d", i%4))
		if err := os.WriteFile(tmp, []byte(version(i)), 0o644); err != nil {
			errs <- err
			break
		}
		if err := os.Rename(tmp, target); err != nil {
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
	t.Logf("%d renames, %d reads, %d ESTALE (%d at open)", renames, reads.Load(), stale.Load(), staleOpen.Load())
	// An open that loses the race twice (its file renamed over, and the
	// file the kernel's one retry found renamed over too) still fails
	// with ESTALE: seen once in ~9 000 reads under -race. A read of an
	// open file never does.
	if n := stale.Load() - staleOpen.Load(); n > 0 {
		t.Errorf("%d of %d reads of an open file failed with ESTALE", n, reads.Load())
	}
}
