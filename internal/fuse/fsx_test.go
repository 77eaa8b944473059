package fuse

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/regionfs/regionfs/internal/nfs"
	"github.com/regionfs/regionfs/internal/testkit"
)

// fsxOps is the number of random operations of TestFSX
// (REGIONFS_FSX_OPS overrides it).
func fsxOps() int {
	if n, err := strconv.Atoi(os.Getenv("REGIONFS_FSX_OPS")); err == nil && n > 0 {
		return n
	}
	return 1500
}

// TestFSX applies the same random operations to files and directories
// through the mount and in a local directory, comparing what reads return
// after every operation and the whole trees at the end (an fsx-style
// model test; the seed is printed).
func TestFSX(t *testing.T) {
	m := newMount(t)
	seed := uint64(time.Now().UnixNano())
	if s, err := strconv.ParseUint(os.Getenv("REGIONFS_FSX_SEED"), 10, 64); err == nil {
		seed = s
	}
	t.Logf("seed %d (REGIONFS_FSX_SEED=%d reproduces)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	mnt, ref := filepath.Join(m.dir, "fsx"), filepath.Join(t.TempDir(), "fsx")
	for _, d := range []string{mnt, ref} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	const maxLen = 3 << 20
	names := []string{"a", "b", "c", "d/e", "d/f"}
	for _, d := range []string{mnt, ref} {
		os.Mkdir(filepath.Join(d, "d"), 0o755)
	}
	type pair struct{ m, r *os.File }
	open := map[string]*pair{}
	get := func(name string) *pair {
		if p := open[name]; p != nil {
			return p
		}
		fm, errM := os.OpenFile(filepath.Join(mnt, name), os.O_RDWR|os.O_CREATE, 0o644)
		fr, errR := os.OpenFile(filepath.Join(ref, name), os.O_RDWR|os.O_CREATE, 0o644)
		if (errM == nil) != (errR == nil) {
			t.Fatalf("open %s: mount %v, local %v", name, errM, errR)
		}
		if errM != nil {
			return nil
		}
		p := &pair{fm, fr}
		open[name] = p
		return p
	}
	closeFile := func(name string) {
		p := open[name]
		if p == nil {
			return
		}
		delete(open, name)
		if err := p.m.Close(); err != nil {
			t.Fatalf("close %s through the mount: %v", name, err)
		}
		p.r.Close()
	}
	defer func() {
		for _, p := range open {
			p.m.Close()
			p.r.Close()
		}
	}()
	var history []string
	defer func() {
		if t.Failed() {
			t.Logf("last operations:\n%s", strings.Join(history[max(0, len(history)-25):], "\n"))
		}
	}()
	buf := make([]byte, 256<<10)
	var what string
	for i := range fsxOps() {
		if i > 0 {
			history = append(history, what)
		}
		name := names[rng.IntN(len(names))]
		op := rng.IntN(100)
		switch {
		case op < 40: // write
			p := get(name)
			off := rng.Int64N(maxLen)
			n := 1 + rng.IntN(len(buf))
			if rng.IntN(4) == 0 {
				n = 1 + rng.IntN(512)
			}
			for j := range buf[:n] {
				buf[j] = byte(rng.Uint32())
			}
			what = fmt.Sprintf("write %s off %d len %d", name, off, n)
			if _, err := p.m.WriteAt(buf[:n], off); err != nil {
				t.Fatalf("op %d %s: %v", i, what, err)
			}
			p.r.WriteAt(buf[:n], off)
		case op < 65: // read and compare
			p := get(name)
			off := rng.Int64N(maxLen + 1<<20)
			n := 1 + rng.IntN(len(buf))
			what = fmt.Sprintf("read %s off %d len %d", name, off, n)
			gm := make([]byte, n)
			gr := make([]byte, n)
			nm, errM := p.m.ReadAt(gm, off)
			nr, _ := p.r.ReadAt(gr, off)
			if nm != nr || !bytes.Equal(gm[:nm], gr[:nr]) {
				t.Fatalf("op %d %s: mount gave %d bytes (%v), local %d; differ at %d", i, what, nm, errM, nr, firstDiff(gm[:nm], gr[:nr]))
			}
		case op < 72: // truncate
			p := get(name)
			size := rng.Int64N(maxLen)
			what = fmt.Sprintf("truncate %s to %d", name, size)
			if err := p.m.Truncate(size); err != nil {
				t.Fatalf("op %d %s: %v", i, what, err)
			}
			p.r.Truncate(size)
		case op < 78: // fsync
			what = "fsync " + name
			if p := open[name]; p != nil {
				if err := p.m.Sync(); err != nil {
					t.Fatalf("op %d %s: %v", i, what, err)
				}
			}
		case op < 86: // close (and so commit)
			what = "close " + name
			closeFile(name)
		case op < 90: // stat
			p := get(name)
			what = "stat " + name
			sm, err := p.m.Stat()
			if err != nil {
				t.Fatalf("op %d %s: %v", i, what, err)
			}
			sr, _ := p.r.Stat()
			if sm.Size() != sr.Size() {
				t.Fatalf("op %d %s: size %d through the mount, %d locally", i, what, sm.Size(), sr.Size())
			}
		case op < 95: // rename over another name
			to := names[rng.IntN(len(names))]
			what = fmt.Sprintf("rename %s %s", name, to)
			errM := os.Rename(filepath.Join(mnt, name), filepath.Join(mnt, to))
			errR := os.Rename(filepath.Join(ref, name), filepath.Join(ref, to))
			if (errM == nil) != (errR == nil) {
				t.Fatalf("op %d %s: mount %v, local %v", i, what, errM, errR)
			}
			if errM == nil && name != to {
				// Open files follow their inode.
				closeFile(to)
				if p := open[name]; p != nil {
					delete(open, name)
					open[to] = p
				}
			}
		default: // unlink
			what = "unlink " + name
			errM := os.Remove(filepath.Join(mnt, name))
			errR := os.Remove(filepath.Join(ref, name))
			if (errM == nil) != (errR == nil) {
				t.Fatalf("op %d %s: mount %v, local %v", i, what, errM, errR)
			}
			closeFile(name)
		}
	}
	for name := range open {
		closeFile(name)
	}
	// Files unlinked while open were renamed aside (as NFS clients do);
	// their names go when the kernel releases the last handle.
	testkit.Eventually(t, 10*time.Second, func() error {
		left, _ := filepath.Glob(filepath.Join(mnt, "*", ".regionfs-unlinked-*"))
		top, _ := filepath.Glob(filepath.Join(mnt, ".regionfs-unlinked-*"))
		if left = append(left, top...); len(left) != 0 {
			return fmt.Errorf("names of unlinked files still there after their last close: %v", left)
		}
		return nil
	})
	if d := compareTrees(mnt, ref); d != "" {
		t.Fatalf("trees differ after %d operations: %s", fsxOps(), d)
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// compareTrees compares the names, types, sizes and contents of two
// trees; "" when equal.
func compareTrees(a, b string) string {
	list := func(root string) map[string]string {
		out := map[string]string{}
		filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil || p == root {
				return nil
			}
			rel, _ := filepath.Rel(root, p)
			switch {
			case d.IsDir():
				out[rel] = "dir"
			case d.Type()&fs.ModeSymlink != 0:
				l, _ := os.Readlink(p)
				out[rel] = "link " + l
			default:
				b, _ := os.ReadFile(p)
				out[rel] = fmt.Sprintf("file %d %x", len(b), b[:min(len(b), 0)])
				out[rel] += string(b)
			}
			return nil
		})
		return out
	}
	la, lb := list(a), list(b)
	var keys []string
	for k := range la {
		keys = append(keys, k)
	}
	for k := range lb {
		if _, ok := la[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		if la[k] != lb[k] {
			return fmt.Sprintf("%s: %.40q vs %.40q", k, la[k], lb[k])
		}
	}
	return ""
}

// TestWriteErrorAtClose: a write the server refuses in the background is
// reported by close (never dropped), and the next close is clean.
func TestWriteErrorAtClose(t *testing.T) {
	m := newMount(t)
	p := filepath.Join(m.dir, "f")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	m.srv.SetExports([]nfs.Export{{Path: "/", FS: m.fs, ReadOnly: true}})
	if _, err := f.Write([]byte("lost unless reported")); err != nil {
		t.Fatalf("write (buffered): %v", err)
	}
	if err := f.Close(); !errors.Is(err, syscall.EROFS) {
		t.Fatalf("close after a refused background write: %v, want EROFS", err)
	}
	m.srv.SetExports([]nfs.Export{{Path: "/", FS: m.fs}})
	f, err = os.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("kept")); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatalf("clean close: %v", err)
	}
	if b, err := os.ReadFile(p); err != nil || string(b) != "kept" {
		t.Fatalf("read back %q %v", b, err)
	}
}
