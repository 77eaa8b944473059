package engine

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
)

// fakeSpace refuses every write while full is set.
type fakeSpace struct {
	full    atomic.Bool
	refused atomic.Int64
}

var errFakeFull = errors.New("fake: disk full")

func (f *fakeSpace) Admit(need int64) error {
	if f.full.Load() {
		f.refused.Add(1)
		return errFakeFull
	}
	return nil
}

func (f *fakeSpace) Check(need int64) error {
	if f.full.Load() {
		return errFakeFull
	}
	return nil
}

// TestFullDiskAdmitsOnlyDeletions (issue 9 §2): with the data disk below
// its floor, every write that grows what the server stores fails with
// ErrNoSpace before touching the disk, while removals, truncations,
// renames, attribute changes and file-system deletion keep working, so
// that an operator can free space. Writes work again once space is back.
func TestFullDiskAdmitsOnlyDeletions(t *testing.T) {
	sp := &fakeSpace{}
	v := newEnv(t, func(o *Options) { o.Space = sp })
	fs := v.mkfs("full")
	other := v.mkfs("other")
	ctx := context.Background()
	dir := must(fs.Mkdir(ctx, RootCred, RootIno, "d", SetAttr{}))(t).Attr.Ino
	f := must(fs.Create(ctx, RootCred, dir, "f", CreateGuarded, SetAttr{}, 0))(t).Attr.Ino
	data := make([]byte, 3*MinBlockSize)
	if _, _, err := fs.Write(ctx, RootCred, f, 0, data); err != nil {
		t.Fatal(err)
	}
	must(fs.Create(ctx, RootCred, dir, "g", CreateGuarded, SetAttr{}, 0))(t)
	must(fs.Mkdir(ctx, RootCred, dir, "sub", SetAttr{}))(t)

	sp.full.Store(true)
	for name, op := range map[string]func() error{
		"write":   func() error { _, _, err := fs.Write(ctx, RootCred, f, 0, []byte("x")); return err },
		"create":  func() error { _, err := fs.Create(ctx, RootCred, dir, "new", CreateGuarded, SetAttr{}, 0); return err },
		"mkdir":   func() error { _, err := fs.Mkdir(ctx, RootCred, dir, "newdir", SetAttr{}); return err },
		"symlink": func() error { _, err := fs.Symlink(ctx, RootCred, dir, "ln", "f", SetAttr{}); return err },
		"mknod":   func() error { _, err := fs.Mknod(ctx, RootCred, dir, "fifo", TypeFIFO, 0, 0, SetAttr{}); return err },
		"link":    func() error { _, _, err := fs.Link(ctx, RootCred, f, dir, "hard"); return err },
		"mkfs":    func() error { _, err := v.e.CreateFS(ctx, "another", FSOptions{}); return err },
		"clone":   func() error { _, err := v.e.Clone(ctx, "full", "copy"); return err },
	} {
		if err := op(); !errors.Is(err, ErrNoSpace) {
			t.Errorf("%s on a full disk: %v, want ErrNoSpace", name, err)
		}
	}
	if n := sp.refused.Load(); n != 8 {
		t.Errorf("%d writes asked the guard, want 8", n)
	}
	// What frees space, or costs none, works.
	size := uint64(MinBlockSize)
	if _, _, err := fs.SetAttr(ctx, RootCred, f, SetAttr{Size: &size}, nil); err != nil {
		t.Fatalf("truncate on a full disk: %v", err)
	}
	if _, _, err := fs.SetAttr(ctx, RootCred, f, SetAttr{Mode: u32(0o600)}, nil); err != nil {
		t.Fatalf("chmod on a full disk: %v", err)
	}
	if _, _, err := fs.Rename(ctx, RootCred, dir, "g", dir, "h"); err != nil {
		t.Fatalf("rename on a full disk: %v", err)
	}
	if _, err := fs.Remove(ctx, RootCred, dir, "h"); err != nil {
		t.Fatalf("remove on a full disk: %v", err)
	}
	if _, err := fs.Rmdir(ctx, RootCred, dir, "sub"); err != nil {
		t.Fatalf("rmdir on a full disk: %v", err)
	}
	if err := v.e.DeleteFS(ctx, other.Name()); err != nil {
		t.Fatalf("delete a file system on a full disk: %v", err)
	}
	// Space is back.
	sp.full.Store(false)
	if _, _, err := fs.Write(ctx, RootCred, f, 0, []byte("again")); err != nil {
		t.Fatalf("write once space is back: %v", err)
	}
	if _, err := fs.Create(ctx, RootCred, dir, "new", CreateGuarded, SetAttr{}, 0); err != nil {
		t.Fatalf("create once space is back: %v", err)
	}
}
