package disk_test

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"sync"
	"testing"

	"github.com/regionfs/regionfs/internal/engine/disk"
)

// TestOSCloseWhileUsed closes (or holds) a file of OS.Create while other
// goroutines read and write it, and opens other files at once, which take
// the closed descriptor's number: every call on the closed file either
// happened before the close or fails with fs.ErrClosed, and no read or
// write reaches the file that reused the number (the data race on the
// descriptor since it is a bare one, 378653d).
func TestOSCloseWhileUsed(t *testing.T) {
	d, err := disk.NewOS(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	const size = 512
	mine := bytes.Repeat([]byte{'a'}, size)
	other := bytes.Repeat([]byte{'b'}, size)
	for i := range 200 {
		name := fmt.Sprintf("f%d", i)
		f, err := d.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Write(mine); err != nil {
			t.Fatal(err)
		}
		hold := i%2 == 1
		var wg sync.WaitGroup
		start := make(chan struct{})
		errs := make(chan error, 4)
		for range 2 {
			wg.Go(func() {
				<-start
				buf := make([]byte, size)
				for range 50 {
					n, err := f.ReadAt(buf, 0)
					if err != nil {
						if !errors.Is(err, fs.ErrClosed) {
							errs <- fmt.Errorf("read after close: %v, want fs.ErrClosed", err)
						}
						return
					}
					if !bytes.Equal(buf[:n], mine) {
						errs <- fmt.Errorf("read %q from another file", buf[:n])
						return
					}
				}
			})
		}
		wg.Go(func() {
			<-start
			for range 20 {
				if _, err := f.Write([]byte{'a'}); err != nil {
					if !errors.Is(err, fs.ErrClosed) {
						errs <- fmt.Errorf("write after close: %v, want fs.ErrClosed", err)
					}
					return
				}
			}
		})
		var others []disk.File
		wg.Go(func() {
			<-start
			if hold {
				if err := f.(interface {
					Hold(string, int64) *disk.Held
				}).Hold(name, size).Close(); err != nil {
					errs <- fmt.Errorf("held close: %v", err)
				}
			} else if err := f.Close(); err != nil {
				errs <- fmt.Errorf("close: %v", err)
			}
			// The closed descriptor's number, free again.
			for j := range 3 {
				g, err := d.Create(fmt.Sprintf("%s-other%d", name, j))
				if err != nil {
					errs <- err
					return
				}
				if _, err := g.Write(other); err != nil {
					errs <- err
				}
				others = append(others, g)
			}
		})
		close(start)
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("file %d (hold %v): %v", i, hold, err)
		}
		for j, g := range others {
			got := make([]byte, 2*size)
			n, _ := g.ReadAt(got, 0)
			if !bytes.Equal(got[:n], other) {
				t.Fatalf("file %d: other file %d holds %q, want only its own %d bytes", i, j, got[:n], size)
			}
			g.Close()
		}
	}
}
