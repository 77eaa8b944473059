package nfs

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/regionfs/regionfs/internal/engine"
	"github.com/regionfs/regionfs/internal/testkit"
)

// libnfsURL is a libnfs URL for path on the test server. libnfs splits
// it into an export (everything before the last "/", "" for files at the
// root) and a file; with its default auto-traverse-mounts=1 it refuses
// an empty export after asking EXPORT, so files at the root go through
// the "/" export with a double slash.
func (v *testEnv) libnfsURL(path string) string {
	return fmt.Sprintf("nfs://127.0.0.1/%s?nfsport=%d&mountport=%d", path, v.port, v.port)
}

func run(t testing.TB, timeout time.Duration, name string, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, stderr.String())
	}
	return out
}

func fileSum(t *testing.T, path string) [32]byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return [32]byte(h.Sum(nil))
}

// TestLibnfsCopy256MiB: Debian libnfs-utils' nfs-cp copies a 256 MiB
// random file in and out; the checksums are equal. nfs-cat reads a small
// file; overwriting an existing file with nfs-cp fails (it creates
// GUARDED) and the server keeps serving.
func TestLibnfsCopy256MiB(t *testing.T) {
	nfsCp := testkit.NeedTool(t, "nfs-cp")
	nfsCat := testkit.NeedTool(t, "nfs-cat")
	v := newEnv(t, envOpt{dir: t.TempDir()})
	tmp := t.TempDir()
	in := filepath.Join(tmp, "in.bin")
	f, err := os.Create(in)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.CopyN(f, rand.Reader, 256<<20); err != nil {
		t.Fatal(err)
	}
	f.Close()
	out := filepath.Join(tmp, "out.bin")
	start := time.Now()
	run(t, 5*time.Minute, nfsCp, in, v.libnfsURL("/big.bin"))
	mid := time.Now()
	run(t, 5*time.Minute, nfsCp, v.libnfsURL("/big.bin"), out)
	t.Logf("nfs-cp 256 MiB: in %.0f MB/s, out %.0f MB/s (race detector and a noisy machine: not a benchmark)",
		256*1.048576/mid.Sub(start).Seconds(), 256*1.048576/time.Since(mid).Seconds())
	if fileSum(t, in) != fileSum(t, out) {
		t.Fatal("256 MiB copy: checksums differ")
	}
	// The engine has exactly the data, durably.
	a, err := v.fs.Lookup(context.Background(), engine.RootCred, engine.RootIno, "big.bin")
	if err != nil || a.Size != 256<<20 {
		t.Fatalf("engine: %+v %v", a, err)
	}
	small := filepath.Join(tmp, "small.txt")
	os.WriteFile(small, []byte("hello libnfs\n"), 0o644)
	// The other URL form for a file at the root: an empty export without
	// the EXPORT probe.
	run(t, time.Minute, nfsCp, small, v.libnfsURL("dir-less.txt")+"&auto-traverse-mounts=0")
	if got := run(t, time.Minute, nfsCat, v.libnfsURL("/dir-less.txt")); string(got) != "hello libnfs\n" {
		t.Fatalf("nfs-cat %q", got)
	}
	cmd := exec.Command(nfsCp, small, v.libnfsURL("/dir-less.txt"))
	if msg, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(msg), "NFS3ERR_EXIST") {
		t.Fatalf("nfs-cp over an existing file: %v %s", err, msg)
	}
	if got := run(t, time.Minute, nfsCat, v.libnfsURL("/dir-less.txt")); string(got) != "hello libnfs\n" {
		t.Fatalf("nfs-cat after the refused overwrite %q", got)
	}
}

// TestLibnfsList10000: nfs-ls of a 10 000-entry directory lists every
// name exactly once (many READDIRPLUS pages).
func TestLibnfsList10000(t *testing.T) {
	nfsLs := testkit.NeedTool(t, "nfs-ls")
	v := newEnv(t, envOpt{})
	ctx := context.Background()
	d, err := v.fs.Mkdir(ctx, engine.RootCred, engine.RootIno, "big", engine.SetAttr{})
	if err != nil {
		t.Fatal(err)
	}
	want := make([]string, 10000)
	for i := range want {
		want[i] = fmt.Sprintf("entry-%05d-%s", i, strings.Repeat("n", i%50))
		if _, err := v.fs.Create(ctx, engine.RootCred, d.Attr.Ino, want[i], engine.CreateGuarded, engine.SetAttr{}, 0); err != nil {
			t.Fatal(err)
		}
	}
	out := run(t, 2*time.Minute, nfsLs, v.libnfsURL("big"))
	var got []string
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		name := fields[len(fields)-1]
		if name == "." || name == ".." {
			continue
		}
		got = append(got, name)
	}
	sort.Strings(got)
	sort.Strings(want)
	if len(got) != len(want) {
		t.Fatalf("nfs-ls listed %d names, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("name %d: %q, want %q (duplicates or missing)", i, got[i], want[i])
		}
	}
	// And through the root export URL form (with the export root listed).
	out = run(t, time.Minute, nfsLs, v.libnfsURL(""))
	if !bytes.Contains(out, []byte(" big\n")) && !bytes.HasSuffix(out, []byte(" big")) {
		t.Fatalf("nfs-ls of the root: %q", out)
	}
}
