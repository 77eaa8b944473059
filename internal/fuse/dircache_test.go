package fuse

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/regionfs/regionfs/internal/nfs/client"
	"github.com/regionfs/regionfs/internal/nfs/proto"
	"github.com/regionfs/regionfs/internal/testkit"
)

// TestSmallFilesCalls: creating small files in a new directory takes a
// CREATE and a FILE_SYNC WRITE each; the kernel's LOOKUP of the new name
// and GETATTR of the directory are answered from what the client knows,
// and close needs no COMMIT.
func TestSmallFilesCalls(t *testing.T) {
	m := newMount(t)
	d := filepath.Join(m.dir, "new")
	if err := os.Mkdir(d, 0o755); err != nil {
		t.Fatal(err)
	}
	before := m.sess.Calls()
	const n = 50
	for i := range n {
		p := filepath.Join(d, "f"+string(rune('a'+i%26))+string(rune('a'+i/26)))
		if err := os.WriteFile(p, []byte("small file"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	after := m.sess.Calls()
	delta := func(p string) uint64 { return after[p].N - before[p].N }
	if delta("CREATE") != n || delta("WRITE") != n {
		t.Fatalf("CREATE %d WRITE %d for %d files, want one each", delta("CREATE"), delta("WRITE"), n)
	}
	for _, p := range []string{"LOOKUP", "GETATTR", "COMMIT"} {
		if delta(p) > 2 {
			t.Errorf("%d %s calls for %d new files, want none per file (%v)", delta(p), p, n, after)
		}
	}
	for i := range n {
		p := filepath.Join(d, "f"+string(rune('a'+i%26))+string(rune('a'+i/26)))
		if b, err := os.ReadFile(p); err != nil || string(b) != "small file" {
			t.Fatalf("read back %s: %q %v", p, b, err)
		}
	}
}

// TestKnownNamesFollowOtherClients: a name another client creates in a
// directory whose names this client knows is found as soon as one of
// this client's operations in the directory shows the change (the wcc
// chain breaks), and after the entry timeout in any case.
func TestKnownNamesFollowOtherClients(t *testing.T) {
	m := newMount(t)
	d := filepath.Join(m.dir, "shared")
	if err := os.Mkdir(d, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(d, "mine"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	// Another client creates "theirs".
	ctx := context.Background()
	other := client.NewSession(client.SessionOptions{Dial: func(ctx context.Context) (client.Dialed, error) {
		c, err := client.Dial(ctx, m.addr)
		return client.Dialed{Conn: c, Addr: m.addr}, err
	}})
	defer other.Close()
	oc := other.Client(client.Unix("other", 0, 0))
	root, _, err := oc.Mount(ctx, "/")
	if err != nil {
		t.Fatal(err)
	}
	lr, err := oc.Lookup(ctx, root, "shared")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := oc.Create(ctx, lr.FH, "theirs", proto.Unchecked, proto.Sattr{}); err != nil {
		t.Fatal(err)
	}
	if _, err := oc.Create(ctx, lr.FH, "later", proto.Unchecked, proto.Sattr{}); err != nil {
		t.Fatal(err)
	}
	// One more name through the mount: its wcc data does not follow the
	// known state, so the names are dropped and "theirs" is found.
	if err := os.WriteFile(filepath.Join(d, "mine2"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(d, "theirs")); err != nil {
		t.Fatalf("a name another client created, after a change through the mount: %v", err)
	}
	// Without any operation here, the entry timeout bounds the time a
	// name created elsewhere stays unseen.
	d2 := filepath.Join(m.dir, "quiet")
	if err := os.Mkdir(d2, 0o755); err != nil {
		t.Fatal(err)
	}
	lr2, err := oc.Lookup(ctx, root, "quiet")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := oc.Create(ctx, lr2.FH, "x", proto.Unchecked, proto.Sattr{}); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, DefaultEntryTimeout+2*time.Second, func() error {
		_, err := os.Stat(filepath.Join(d2, "x"))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("stat of a name another client created: %v", err)
		}
		if err != nil {
			return fmt.Errorf("a name another client created is still not found after the entry timeout: %w", err)
		}
		return nil
	})
}

// TestDirAttrsAfterChanges: the directory attributes answered from the
// wcc data follow the changes made in the directory.
func TestDirAttrsAfterChanges(t *testing.T) {
	m := newMount(t)
	d := filepath.Join(m.dir, "dir")
	if err := os.Mkdir(d, 0o755); err != nil {
		t.Fatal(err)
	}
	st0, err := os.Stat(d)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(10 * time.Millisecond) // for the mtime to move on
	if err := os.Mkdir(filepath.Join(d, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	st1, err := os.Stat(d)
	if err != nil {
		t.Fatal(err)
	}
	if !st1.ModTime().After(st0.ModTime()) {
		t.Fatalf("mtime after mkdir in it: %v, before %v", st1.ModTime(), st0.ModTime())
	}
	if nl := st1.Sys().(*syscall.Stat_t).Nlink; nl != 3 {
		t.Fatalf("link count after mkdir in it: %d, want 3", nl)
	}
	if err := os.Chmod(d, 0o700); err != nil {
		t.Fatal(err)
	}
	st2, err := os.Stat(d)
	if err != nil || st2.Mode().Perm() != 0o700 {
		t.Fatalf("mode after chmod: %v %v", st2.Mode(), err)
	}
	if err := os.Remove(filepath.Join(d, "sub")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(d, "sub")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("removed directory: %v", err)
	}
	if err := os.WriteFile(filepath.Join(d, "a"), []byte("1"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(d, "a"), filepath.Join(d, "b")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(d, "a")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("renamed-away name: %v", err)
	}
	if b, err := os.ReadFile(filepath.Join(d, "b")); err != nil || string(b) != "1" {
		t.Fatalf("renamed file: %q %v", b, err)
	}
}
