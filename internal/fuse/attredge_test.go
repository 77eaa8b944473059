package fuse

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// sparseOffset is where TestAttrEdgeCases writes past the end: 1 TiB.
const sparseOffset = 1 << 40

// TestAttrEdgeCases checks attributes at the edges through the mount, with
// every file operation in a child process (coreutils' touch and stat, and
// this test's binary for a write kept open: attrEdgeChild), never in the
// test process that serves the mount:
//
//   - st_blocks right after a write 1 TiB into an empty file, before the
//     close sends it, counts the written block (it was 0: the size
//     included the buffered write, the blocks did not), and so after it;
//   - a time that an nfstime3 cannot hold (its seconds are unsigned 32
//     bits: 1960, 2200) is refused with EINVAL and the file keeps its time
//     (a 1960 mtime read back as 1970-01-01 00:00:00, a silent clamp);
//   - a time past 2038 (seconds over 2^31) reads back exactly.
func TestAttrEdgeCases(t *testing.T) {
	if dir := os.Getenv("REGIONFS_ATTR_EDGE_DIR"); dir != "" {
		attrEdgeChild(dir)
		return
	}
	m := newMount(t)
	run := func(name string, args ...string) (string, error) {
		t.Helper()
		out, err := exec.Command(name, args...).CombinedOutput()
		return strings.TrimSpace(string(out)), err
	}
	statOf := func(path, format string) string {
		t.Helper()
		out, err := run("stat", "-c", format, path)
		if err != nil {
			t.Fatalf("stat %s: %v: %s", path, err, out)
		}
		return out
	}

	t.Run("blocks after a write 1 TiB in", func(t *testing.T) {
		child := exec.Command(os.Args[0], "-test.run=^TestAttrEdgeCases$")
		child.Env = append(os.Environ(), "REGIONFS_ATTR_EDGE_DIR="+m.dir)
		child.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		out, err := child.CombinedOutput()
		if err != nil {
			t.Fatalf("child: %v: %s", err, out)
		}
		var size, blocks, closedSize, closedBlocks int64
		if _, err := fmt.Sscanf(lineOf(string(out), "open "), "open %d %d closed %d %d", &size, &blocks, &closedSize, &closedBlocks); err != nil {
			t.Fatalf("child's output %q: %v", out, err)
		}
		if size != sparseOffset+1 || closedSize != sparseOffset+1 {
			t.Errorf("size %d while open, %d after close; want %d", size, closedSize, int64(sparseOffset+1))
		}
		// The written byte's 4 KiB block at least (8 units of 512
		// bytes) while open; once closed, the server's figure: what the
		// file holds, that one page (it counts holes as nothing).
		if blocks < 8 || closedBlocks != 8 {
			t.Errorf("st_blocks %d right after the write (before close), %d after close; want at least 8, then 8 (the written page)", blocks, closedBlocks)
		}
	})

	t.Run("times outside nfstime3", func(t *testing.T) {
		f := filepath.Join(m.dir, "old")
		if out, err := run("touch", "-d", "2001-02-03 04:05:06 UTC", f); err != nil {
			t.Fatalf("touch: %v: %s", err, out)
		}
		before := statOf(f, "%X %Y")
		for _, when := range []string{"1960-01-01 00:00:00 UTC", "1969-12-31 23:59:59 UTC", "2200-01-01 00:00:00 UTC"} {
			out, err := run("touch", "-d", when, f)
			if err == nil || !strings.Contains(out, "Invalid argument") {
				t.Errorf("touch -d %q: %v: %q; want it refused with EINVAL (Invalid argument)", when, err, out)
			}
			if got := statOf(f, "%X %Y"); got != before {
				t.Errorf("after touch -d %q: atime and mtime %s, want them unchanged (%s)", when, got, before)
			}
			if out, err := run("touch", "-m", "-d", when, f); err == nil {
				t.Errorf("touch -m -d %q: accepted: %q", when, out)
			}
		}
		// Past 2^31 seconds (2038) and up to the last second nfstime3
		// holds: exact.
		for _, c := range []struct{ when, want string }{
			{"2040-06-07 08:09:10.123456789 UTC", "2222669350.123456789"},
			{"2106-02-07 06:28:15 UTC", "4294967295.000000000"},
			{"1970-01-01 00:00:00 UTC", "0.000000000"},
		} {
			if out, err := run("touch", "-m", "-d", c.when, f); err != nil {
				t.Fatalf("touch -m -d %q: %v: %s", c.when, err, out)
			}
			if got := statOf(f, "%.9Y"); got != c.want {
				t.Errorf("mtime after touch -m -d %q: %s, want %s", c.when, got, c.want)
			}
		}
	})
}

// attrEdgeChild is TestAttrEdgeCases's child: it writes one byte 1 TiB
// into a new file of dir, prints its size and st_blocks while open (the
// write still buffered by the mount) and after the close.
func attrEdgeChild(dir string) {
	fail := func(err error) {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	name := filepath.Join(dir, "sparse")
	f, err := os.OpenFile(name, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		fail(err)
	}
	if _, err := f.WriteAt([]byte("x"), sparseOffset); err != nil {
		fail(err)
	}
	var open, closed syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &open); err != nil {
		fail(err)
	}
	if err := f.Close(); err != nil {
		fail(err)
	}
	if err := syscall.Stat(name, &closed); err != nil {
		fail(err)
	}
	fmt.Printf("open %d %d closed %d %d\n", open.Size, open.Blocks, closed.Size, closed.Blocks)
}

// lineOf returns the first line of s that starts with prefix.
func lineOf(s, prefix string) string {
	for l := range strings.Lines(s) {
		if strings.HasPrefix(l, prefix) {
			return strings.TrimSpace(l)
		}
	}
	return ""
}
