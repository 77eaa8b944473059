package fuse

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/regionfs/regionfs/internal/nfs/client"
	"github.com/regionfs/regionfs/internal/nfs/proto"
)

// serverAttr reads a file's attributes with a client of its own (what
// another machine would see).
func (m *testMount) serverAttr(t *testing.T, name string) proto.Attr {
	t.Helper()
	ctx := context.Background()
	c, err := client.Dial(ctx, m.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cl := c.WithAuth(client.Unix("t", 0, 0))
	root, _, err := cl.Mount(ctx, "/")
	if err != nil {
		t.Fatal(err)
	}
	res, err := cl.Lookup(ctx, root, name)
	if err != nil {
		t.Fatalf("lookup %s: %v", name, err)
	}
	ga, err := cl.GetAttr(ctx, res.FH)
	if err != nil {
		t.Fatal(err)
	}
	return ga.Attr
}

// TestCopyAttrsWithData: what `cp -a` does to each file (create, write,
// then set times, owner and mode through the open file, close) costs one
// SETATTR, sent at close after the data: the changes are seen at once
// locally, on the server after close, and the times set are the file's
// (the data landed before them).
func TestCopyAttrsWithData(t *testing.T) {
	m := newMount(t)
	p := filepath.Join(m.dir, "copied")
	f, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("data of a copied file")); err != nil {
		t.Fatal(err)
	}
	before := m.sess.Calls()
	mtime := time.Date(2020, 1, 2, 3, 4, 5, 6000, time.UTC)
	atime := time.Date(2021, 1, 2, 3, 4, 5, 0, time.UTC)
	if err := os.Chtimes(p, atime, mtime); err != nil {
		t.Fatal(err)
	}
	if err := f.Chown(1234, 5678); err != nil {
		t.Fatal(err)
	}
	if err := f.Chmod(0o640); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if !st.ModTime().Equal(mtime) || st.Mode().Perm() != 0o640 || st.Size() != 21 {
		t.Errorf("stat before close: mtime %v mode %v size %d, want %v 0640 21", st.ModTime(), st.Mode(), st.Size(), mtime)
	}
	mid := m.sess.Calls()
	if n := mid["SETATTR"].N - before["SETATTR"].N; n != 0 {
		t.Errorf("%d SETATTR before close, want them sent with the data", n)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	after := m.sess.Calls()
	if n := after["SETATTR"].N - before["SETATTR"].N; n != 1 {
		t.Errorf("%d SETATTR for times, owner and mode, want 1", n)
	}
	a := m.serverAttr(t, "copied")
	if got := a.Mtime.Go(); !got.Equal(mtime) {
		t.Errorf("server mtime %v, want %v (the data landed after the times?)", got, mtime)
	}
	if got := a.Atime.Go(); !got.Equal(atime) {
		t.Errorf("server atime %v, want %v", got, atime)
	}
	if a.UID != 1234 || a.GID != 5678 || a.Mode&0o7777 != 0o640 || a.Size != 21 {
		t.Errorf("server attrs uid %d gid %d mode %o size %d, want 1234 5678 0640 21", a.UID, a.GID, a.Mode, a.Size)
	}
}

// TestWriteAfterTimesMovesMtime: a write after the times were set (with
// the change still waiting for the data) moves mtime past them, as on a
// local file: the change is sent before that write.
func TestWriteAfterTimesMovesMtime(t *testing.T) {
	m := newMount(t)
	p := filepath.Join(m.dir, "touched")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write([]byte("first")); err != nil {
		t.Fatal(err)
	}
	old := time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC)
	if err := os.Chtimes(p, old, old); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte(" second")); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	a := m.serverAttr(t, "touched")
	if got := a.Mtime.Go(); !got.After(old.Add(time.Hour)) {
		t.Errorf("server mtime %v after a write that followed setting it to %v: the write did not move it", got, old)
	}
	if b, err := os.ReadFile(p); err != nil || string(b) != "first second" {
		t.Errorf("read back %q %v", b, err)
	}
}
