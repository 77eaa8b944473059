package blocks_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/regionfs/regionfs/internal/engine/blocks"
	"github.com/regionfs/regionfs/internal/engine/disk"
)

// TestPutCold: a block put cold (a replica's pushed block) is stored and
// read back like any other, and its file's pages are not left in the page
// cache once it is durable, where a plain put leaves them (on a file
// system that drops clean pages when asked: tmpfs keeps them, so there
// only the content is checked).
func TestPutCold(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	d, err := disk.NewOS(root)
	if err != nil {
		t.Fatal(err)
	}
	h, err := blocks.NewHasher(bytes.Repeat([]byte{3}, 32))
	if err != nil {
		t.Fatal(err)
	}
	s, err := blocks.OpenDir(d, "blocks", blocks.Keys{Hasher: h})
	if err != nil {
		t.Fatal(err)
	}
	var st unix.Statfs_t
	if err := unix.Statfs(root, &st); err != nil {
		t.Fatal(err)
	}
	dropsPages := st.Type != unix.TMPFS_MAGIC
	resident := func(id blocks.ID) int {
		t.Helper()
		names, _ := filepath.Glob(filepath.Join(root, "blocks", "*", id.String()))
		if len(names) != 1 {
			t.Fatalf("block file of %s: %v", id, names)
		}
		f, err := os.Open(names[0])
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		fi, _ := f.Stat()
		m, err := unix.Mmap(int(f.Fd()), 0, int(fi.Size()), unix.PROT_READ, unix.MAP_SHARED)
		if err != nil {
			t.Fatal(err)
		}
		defer unix.Munmap(m)
		pages := make([]byte, (len(m)+os.Getpagesize()-1)/os.Getpagesize())
		if _, _, errno := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&m[0])), uintptr(len(m)), uintptr(unsafe.Pointer(&pages[0]))); errno != 0 {
			t.Fatal(errno)
		}
		n := 0
		for _, p := range pages {
			n += int(p & 1)
		}
		return n
	}
	for _, cold := range []bool{false, true} {
		data := bytes.Repeat([]byte{byte(7)}, 256<<10)
		if cold {
			data[0] = 1
		}
		id := h.Sum(data)
		put := s.Put
		if cold {
			put = s.PutCold
		}
		if err := put(ctx, id, data); err != nil {
			t.Fatal(err)
		}
		n := resident(id)
		if got, err := s.Get(ctx, id); err != nil || !bytes.Equal(got, data) {
			t.Fatalf("cold %v: read back %d bytes, %v", cold, len(got), err)
		}
		t.Logf("cold %v: %d pages resident after the put", cold, n)
		if !dropsPages {
			continue
		}
		if cold && n != 0 {
			t.Errorf("a cold put left %d pages of its block file in the page cache", n)
		}
		if !cold && n == 0 {
			t.Errorf("a plain put left no page in the page cache (the check cannot tell)")
		}
	}
}
