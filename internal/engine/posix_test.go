package engine

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

// tree is a small fixture:
//
//	/            0755 root
//	/d           0777 root         directory with /d/f and /d/sub
//	/d/f         0644 uid 1000     "hello"
//	/d/sub       0755 root         empty
//	/e           0755 root         empty
//	/sticky      1777 root         with /sticky/mine (uid 1000) and /sticky/theirs (uid 2000)
//	/ro          0555 root         with /ro/x
//	/l           symlink → d/f
//	/fifo        fifo
type tree struct {
	fs                                 *FS
	d, f, sub, e, sticky, mine, theirs uint64
	ro, x, l, fifo                     uint64
}

var (
	alice = Cred{UID: 1000, GID: 1000}
	bob   = Cred{UID: 2000, GID: 2000}
)

func newTree(t *testing.T) *tree {
	t.Helper()
	v := newEnv(t)
	fs := v.mkfs("posix")
	ctx := context.Background()
	tr := &tree{fs: fs}
	mk := func(dir uint64, name string, mode uint32) uint64 {
		return must(fs.Mkdir(ctx, RootCred, dir, name, SetAttr{Mode: u32(mode)}))(t).Attr.Ino
	}
	file := func(cred Cred, dir uint64, name string, data string) uint64 {
		en := must(fs.Create(ctx, cred, dir, name, CreateGuarded, SetAttr{Mode: u32(0o644)}, 0))(t)
		if data != "" {
			if _, _, err := fs.Write(ctx, cred, en.Attr.Ino, 0, []byte(data)); err != nil {
				t.Fatal(err)
			}
		}
		return en.Attr.Ino
	}
	tr.d = mk(RootIno, "d", 0o777)
	tr.f = file(alice, tr.d, "f", "hello")
	tr.sub = mk(tr.d, "sub", 0o755)
	tr.e = mk(RootIno, "e", 0o755)
	tr.sticky = mk(RootIno, "sticky", 0o1777)
	tr.mine = file(alice, tr.sticky, "mine", "")
	tr.theirs = file(bob, tr.sticky, "theirs", "")
	tr.ro = mk(RootIno, "ro", 0o755)
	tr.x = file(RootCred, tr.ro, "x", "")
	must3(fs.SetAttr(ctx, RootCred, tr.ro, SetAttr{Mode: u32(0o555)}, nil))(t)
	tr.l = must(fs.Symlink(ctx, RootCred, RootIno, "l", "d/f", SetAttr{}))(t).Attr.Ino
	tr.fifo = must(fs.Mknod(ctx, RootCred, RootIno, "fifo", TypeFIFO, 0, 0, SetAttr{}))(t).Attr.Ino
	return tr
}

func TestPOSIXErrors(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name string
		op   func(tr *tree) error
		want error
	}{
		// Lookup
		{"lookup missing", func(tr *tree) error { _, err := tr.fs.Lookup(ctx, RootCred, tr.d, "nope"); return err }, ErrNotFound},
		{"lookup in file", func(tr *tree) error { _, err := tr.fs.Lookup(ctx, RootCred, tr.f, "x"); return err }, ErrNotDir},
		{"lookup stale dir", func(tr *tree) error { _, err := tr.fs.Lookup(ctx, RootCred, 9999, "x"); return err }, ErrStale},
		{"lookup no search permission", func(tr *tree) error {
			must3(tr.fs.SetAttr(ctx, RootCred, tr.e, SetAttr{Mode: u32(0o700)}, nil))(t)
			_, err := tr.fs.Lookup(ctx, alice, tr.e, "x")
			return err
		}, ErrPermission},
		{"lookup name too long", func(tr *tree) error {
			_, err := tr.fs.Lookup(ctx, RootCred, tr.d, strings.Repeat("a", 256))
			return err
		}, ErrNameTooLong},
		{"lookup slash", func(tr *tree) error { _, err := tr.fs.Lookup(ctx, RootCred, tr.d, "a/b"); return err }, ErrInvalid},
		// Create
		{"create guarded exists", func(tr *tree) error {
			_, err := tr.fs.Create(ctx, RootCred, tr.d, "f", CreateGuarded, SetAttr{}, 0)
			return err
		}, ErrExist},
		{"create exclusive exists", func(tr *tree) error {
			_, err := tr.fs.Create(ctx, RootCred, tr.d, "f", CreateExclusive, SetAttr{}, 7)
			return err
		}, ErrExist},
		{"create unchecked over dir", func(tr *tree) error {
			_, err := tr.fs.Create(ctx, RootCred, tr.d, "sub", CreateUnchecked, SetAttr{}, 0)
			return err
		}, ErrIsDir},
		{"create in file", func(tr *tree) error {
			_, err := tr.fs.Create(ctx, RootCred, tr.f, "x", CreateGuarded, SetAttr{}, 0)
			return err
		}, ErrNotDir},
		{"create in read-only dir", func(tr *tree) error {
			_, err := tr.fs.Create(ctx, alice, tr.ro, "y", CreateGuarded, SetAttr{}, 0)
			return err
		}, ErrPermission},
		{"create dot", func(tr *tree) error {
			_, err := tr.fs.Create(ctx, RootCred, tr.d, ".", CreateGuarded, SetAttr{}, 0)
			return err
		}, ErrExist},
		{"create empty name", func(tr *tree) error {
			_, err := tr.fs.Create(ctx, RootCred, tr.d, "", CreateGuarded, SetAttr{}, 0)
			return err
		}, ErrInvalid},
		{"create long name", func(tr *tree) error {
			_, err := tr.fs.Create(ctx, RootCred, tr.d, strings.Repeat("n", 256), CreateGuarded, SetAttr{}, 0)
			return err
		}, ErrNameTooLong},
		{"create NUL in name", func(tr *tree) error {
			_, err := tr.fs.Create(ctx, RootCred, tr.d, "a\x00b", CreateGuarded, SetAttr{}, 0)
			return err
		}, ErrInvalid},
		{"create bad mode", func(tr *tree) error {
			_, err := tr.fs.Create(ctx, RootCred, tr.d, "m", CreateGuarded, SetAttr{Mode: u32(0o170000)}, 0)
			return err
		}, ErrInvalid},
		// Mkdir
		{"mkdir exists", func(tr *tree) error { _, err := tr.fs.Mkdir(ctx, RootCred, tr.d, "f", SetAttr{}); return err }, ErrExist},
		{"mkdir dotdot", func(tr *tree) error { _, err := tr.fs.Mkdir(ctx, RootCred, tr.d, "..", SetAttr{}); return err }, ErrExist},
		{"mkdir no permission", func(tr *tree) error { _, err := tr.fs.Mkdir(ctx, alice, tr.e, "x", SetAttr{}); return err }, ErrPermission},
		// Symlink, readlink
		{"symlink empty target", func(tr *tree) error {
			_, err := tr.fs.Symlink(ctx, RootCred, tr.d, "s", "", SetAttr{})
			return err
		}, ErrInvalid},
		{"symlink target too long", func(tr *tree) error {
			_, err := tr.fs.Symlink(ctx, RootCred, tr.d, "s", strings.Repeat("x", MaxSymlinkLen+1), SetAttr{})
			return err
		}, ErrNameTooLong},
		{"symlink exists", func(tr *tree) error { _, err := tr.fs.Symlink(ctx, RootCred, RootIno, "l", "x", SetAttr{}); return err }, ErrExist},
		{"readlink of file", func(tr *tree) error { _, _, err := tr.fs.Readlink(ctx, tr.f); return err }, ErrInvalid},
		// Mknod
		{"mknod regular", func(tr *tree) error {
			_, err := tr.fs.Mknod(ctx, RootCred, tr.d, "n", TypeRegular, 0, 0, SetAttr{})
			return err
		}, ErrBadType},
		{"mknod dir", func(tr *tree) error {
			_, err := tr.fs.Mknod(ctx, RootCred, tr.d, "n", TypeDir, 0, 0, SetAttr{})
			return err
		}, ErrBadType},
		{"mknod chardev as user", func(tr *tree) error {
			_, err := tr.fs.Mknod(ctx, alice, tr.d, "n", TypeChar, 1, 3, SetAttr{})
			return err
		}, ErrNotPermitted},
		{"mknod exists", func(tr *tree) error {
			_, err := tr.fs.Mknod(ctx, RootCred, RootIno, "fifo", TypeFIFO, 0, 0, SetAttr{})
			return err
		}, ErrExist},
		// Link
		{"link dir", func(tr *tree) error { _, _, err := tr.fs.Link(ctx, RootCred, tr.sub, tr.e, "x"); return err }, ErrIsDir},
		{"link exists", func(tr *tree) error { _, _, err := tr.fs.Link(ctx, RootCred, tr.f, tr.d, "sub"); return err }, ErrExist},
		{"link into file", func(tr *tree) error { _, _, err := tr.fs.Link(ctx, RootCred, tr.f, tr.f, "x"); return err }, ErrNotDir},
		{"link stale", func(tr *tree) error { _, _, err := tr.fs.Link(ctx, RootCred, 9999, tr.e, "x"); return err }, ErrStale},
		{"link no permission", func(tr *tree) error { _, _, err := tr.fs.Link(ctx, alice, tr.f, tr.e, "x"); return err }, ErrPermission},
		// Remove
		{"remove missing", func(tr *tree) error { _, err := tr.fs.Remove(ctx, RootCred, tr.d, "nope"); return err }, ErrNotFound},
		{"remove dir", func(tr *tree) error { _, err := tr.fs.Remove(ctx, RootCred, tr.d, "sub"); return err }, ErrIsDir},
		{"remove dot", func(tr *tree) error { _, err := tr.fs.Remove(ctx, RootCred, tr.d, "."); return err }, ErrInvalid},
		{"remove no permission", func(tr *tree) error { _, err := tr.fs.Remove(ctx, alice, tr.ro, "x"); return err }, ErrPermission},
		{"remove sticky other", func(tr *tree) error { _, err := tr.fs.Remove(ctx, alice, tr.sticky, "theirs"); return err }, ErrNotPermitted},
		{"remove sticky own", func(tr *tree) error { _, err := tr.fs.Remove(ctx, alice, tr.sticky, "mine"); return err }, nil},
		// Rmdir
		{"rmdir not empty", func(tr *tree) error { _, err := tr.fs.Rmdir(ctx, RootCred, RootIno, "d"); return err }, ErrNotEmpty},
		{"rmdir file", func(tr *tree) error { _, err := tr.fs.Rmdir(ctx, RootCred, tr.d, "f"); return err }, ErrNotDir},
		{"rmdir missing", func(tr *tree) error { _, err := tr.fs.Rmdir(ctx, RootCred, tr.d, "nope"); return err }, ErrNotFound},
		{"rmdir dot", func(tr *tree) error { _, err := tr.fs.Rmdir(ctx, RootCred, tr.d, "."); return err }, ErrInvalid},
		{"rmdir dotdot", func(tr *tree) error { _, err := tr.fs.Rmdir(ctx, RootCred, tr.d, ".."); return err }, ErrNotEmpty},
		{"rmdir no permission", func(tr *tree) error { _, err := tr.fs.Rmdir(ctx, bob, RootIno, "e"); return err }, ErrPermission},
		// Rename
		{"rename missing", func(tr *tree) error { _, _, err := tr.fs.Rename(ctx, RootCred, tr.d, "nope", tr.e, "x"); return err }, ErrNotFound},
		{"rename dir over file", func(tr *tree) error { _, _, err := tr.fs.Rename(ctx, RootCred, tr.d, "sub", tr.d, "f"); return err }, ErrNotDir},
		{"rename file over dir", func(tr *tree) error { _, _, err := tr.fs.Rename(ctx, RootCred, tr.d, "f", tr.d, "sub"); return err }, ErrIsDir},
		{"rename dir over non-empty dir", func(tr *tree) error {
			_, _, err := tr.fs.Rename(ctx, RootCred, RootIno, "e", RootIno, "d")
			return err
		}, ErrNotEmpty},
		{"rename dir into itself", func(tr *tree) error {
			_, _, err := tr.fs.Rename(ctx, RootCred, RootIno, "d", tr.d, "inside")
			return err
		}, ErrInvalid},
		{"rename dir into its subtree", func(tr *tree) error {
			_, _, err := tr.fs.Rename(ctx, RootCred, RootIno, "d", tr.sub, "deeper")
			return err
		}, ErrInvalid},
		{"rename dot", func(tr *tree) error { _, _, err := tr.fs.Rename(ctx, RootCred, tr.d, ".", tr.e, "x"); return err }, ErrInvalid},
		{"rename to dotdot", func(tr *tree) error { _, _, err := tr.fs.Rename(ctx, RootCred, tr.d, "f", tr.e, ".."); return err }, ErrInvalid},
		{"rename into file", func(tr *tree) error { _, _, err := tr.fs.Rename(ctx, RootCred, tr.d, "f", tr.f, "x"); return err }, ErrNotDir},
		{"rename no permission", func(tr *tree) error { _, _, err := tr.fs.Rename(ctx, alice, tr.ro, "x", tr.d, "x"); return err }, ErrPermission},
		{"rename sticky other", func(tr *tree) error {
			_, _, err := tr.fs.Rename(ctx, alice, tr.sticky, "theirs", tr.d, "t")
			return err
		}, ErrNotPermitted},
		{"rename over sticky other", func(tr *tree) error {
			_, _, err := tr.fs.Rename(ctx, alice, tr.sticky, "mine", tr.sticky, "theirs")
			return err
		}, ErrNotPermitted},
		{"rename long name", func(tr *tree) error {
			_, _, err := tr.fs.Rename(ctx, RootCred, tr.d, "f", tr.d, strings.Repeat("z", 300))
			return err
		}, ErrNameTooLong},
		// SetAttr
		{"chmod by other", func(tr *tree) error {
			_, _, err := tr.fs.SetAttr(ctx, bob, tr.f, SetAttr{Mode: u32(0o777)}, nil)
			return err
		}, ErrNotPermitted},
		{"chown by owner", func(tr *tree) error {
			_, _, err := tr.fs.SetAttr(ctx, alice, tr.f, SetAttr{UID: u32(2000)}, nil)
			return err
		}, ErrNotPermitted},
		{"chgrp to foreign group", func(tr *tree) error {
			_, _, err := tr.fs.SetAttr(ctx, alice, tr.f, SetAttr{GID: u32(2000)}, nil)
			return err
		}, ErrNotPermitted},
		{"truncate dir", func(tr *tree) error {
			_, _, err := tr.fs.SetAttr(ctx, RootCred, tr.d, SetAttr{Size: u64(0)}, nil)
			return err
		}, ErrIsDir},
		{"truncate symlink", func(tr *tree) error {
			_, _, err := tr.fs.SetAttr(ctx, RootCred, tr.l, SetAttr{Size: u64(0)}, nil)
			return err
		}, ErrInvalid},
		{"truncate no permission", func(tr *tree) error {
			_, _, err := tr.fs.SetAttr(ctx, bob, tr.f, SetAttr{Size: u64(0)}, nil)
			return err
		}, ErrPermission},
		{"set mtime by other", func(tr *tree) error {
			_, _, err := tr.fs.SetAttr(ctx, bob, tr.f, SetAttr{Mtime: &TimeSet{Time: time.Unix(5, 0)}}, nil)
			return err
		}, ErrNotPermitted},
		{"set mtime to now without write", func(tr *tree) error {
			_, _, err := tr.fs.SetAttr(ctx, bob, tr.f, SetAttr{Mtime: &TimeSet{ServerTime: true}}, nil)
			return err
		}, ErrPermission},
		{"setattr guard mismatch", func(tr *tree) error {
			g := time.Unix(1, 0)
			_, _, err := tr.fs.SetAttr(ctx, RootCred, tr.f, SetAttr{Mode: u32(0o600)}, &g)
			return err
		}, ErrNotSync},
		{"setattr stale", func(tr *tree) error { _, _, err := tr.fs.SetAttr(ctx, RootCred, 9999, SetAttr{}, nil); return err }, ErrStale},
		// Read, write
		{"read dir", func(tr *tree) error { _, _, _, err := tr.fs.Read(ctx, RootCred, tr.d, 0, 10); return err }, ErrIsDir},
		{"read fifo", func(tr *tree) error { _, _, _, err := tr.fs.Read(ctx, RootCred, tr.fifo, 0, 10); return err }, ErrInvalid},
		{"write dir", func(tr *tree) error { _, _, err := tr.fs.Write(ctx, RootCred, tr.d, 0, []byte("x")); return err }, ErrIsDir},
		{"write no permission", func(tr *tree) error { _, _, err := tr.fs.Write(ctx, bob, tr.f, 0, []byte("x")); return err }, ErrPermission},
		{"write too far", func(tr *tree) error {
			_, _, err := tr.fs.Write(ctx, RootCred, tr.f, MaxFileSize, []byte("x"))
			return err
		}, ErrFileTooBig},
		{"read no permission", func(tr *tree) error {
			must3(tr.fs.SetAttr(ctx, RootCred, tr.f, SetAttr{Mode: u32(0o600)}, nil))(t)
			_, _, _, err := tr.fs.Read(ctx, bob, tr.f, 0, 10)
			return err
		}, ErrPermission},
		// ReadDir
		{"readdir file", func(tr *tree) error { _, _, _, err := tr.fs.ReadDir(ctx, RootCred, tr.f, 0, 10, false); return err }, ErrNotDir},
		{"readdir bad cookie", func(tr *tree) error {
			_, _, _, err := tr.fs.ReadDir(ctx, RootCred, tr.d, 1<<40, 10, false)
			return err
		}, ErrBadCookie},
		{"readdir no permission", func(tr *tree) error {
			must3(tr.fs.SetAttr(ctx, RootCred, tr.e, SetAttr{Mode: u32(0o711)}, nil))(t)
			_, _, _, err := tr.fs.ReadDir(ctx, alice, tr.e, 0, 10, false)
			return err
		}, ErrPermission},
		{"getattr stale", func(tr *tree) error { _, err := tr.fs.GetAttr(ctx, 12345); return err }, ErrStale},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tr := newTree(t)
			seq0 := tr.fs.Replica().DurableSeq()
			err := c.op(tr)
			wantErr(t, err, c.want)
			if c.want != nil && tr.fs.Replica().DurableSeq() > seq0+1 {
				// A failing operation writes nothing (the fixture may have
				// done one preparatory change).
				t.Errorf("failed operation advanced the journal from %d to %d", seq0, tr.fs.Replica().DurableSeq())
			}
			if err := tr.fs.Replica().Verify(ctx, true); err != nil {
				t.Fatalf("verify: %v", err)
			}
		})
	}
}

func TestPOSIXSemantics(t *testing.T) {
	ctx := context.Background()
	t.Run("create sets attributes and touches parent", func(t *testing.T) {
		tr := newTree(t)
		d0 := must(tr.fs.GetAttr(ctx, tr.e))(t)
		en := must(tr.fs.Create(ctx, alice, tr.d, "new", CreateGuarded, SetAttr{Mode: u32(0o640)}, 0))(t)
		a := en.Attr
		if a.Type != TypeRegular || a.Mode != 0o640 || a.UID != 1000 || a.GID != 1000 || a.Nlink != 1 || a.Size != 0 || a.Gen == 0 {
			t.Fatalf("attr %+v", a)
		}
		if !en.Dir.After.Mtime.After(en.Dir.Before.Mtime) && !en.Dir.After.Mtime.Equal(a.Mtime) {
			t.Errorf("parent mtime not updated: %v → %v", en.Dir.Before.Mtime, en.Dir.After.Mtime)
		}
		if d1 := must(tr.fs.GetAttr(ctx, tr.e))(t); !d1.Mtime.Equal(d0.Mtime) {
			t.Errorf("unrelated dir changed")
		}
		got := must(tr.fs.Lookup(ctx, alice, tr.d, "new"))(t)
		if got.Ino != a.Ino || got.Gen != a.Gen {
			t.Fatalf("lookup %+v, created %+v", got, a)
		}
	})
	t.Run("unchecked create reuses and truncates", func(t *testing.T) {
		tr := newTree(t)
		en := must(tr.fs.Create(ctx, RootCred, tr.d, "f", CreateUnchecked, SetAttr{Size: u64(0)}, 0))(t)
		if en.Created || en.Attr.Ino != tr.f || en.Attr.Size != 0 {
			t.Fatalf("unchecked create: %+v", en)
		}
	})
	t.Run("exclusive create retry returns the file", func(t *testing.T) {
		tr := newTree(t)
		a := must(tr.fs.Create(ctx, RootCred, tr.d, "x", CreateExclusive, SetAttr{}, 42))(t)
		b := must(tr.fs.Create(ctx, RootCred, tr.d, "x", CreateExclusive, SetAttr{}, 42))(t)
		if !a.Created || b.Created || a.Attr.Ino != b.Attr.Ino {
			t.Fatalf("exclusive retry: %+v %+v", a, b)
		}
		// Private until its creator sets the mode (a creator that dies
		// first leaves nothing readable by others).
		if a.Attr.Mode != 0 || b.Attr.Mode != 0 {
			t.Fatalf("exclusive create: mode %04o (retry %04o), want 0", a.Attr.Mode, b.Attr.Mode)
		}
		_, err := tr.fs.Create(ctx, RootCred, tr.d, "x", CreateExclusive, SetAttr{}, 43)
		wantErr(t, err, ErrExist)
	})
	t.Run("exclusive create with attributes", func(t *testing.T) {
		// regionfs's own exclusive create (EXCLUSIVE4_1's way): the file
		// has its mode at once, and a retry still finds it by the
		// verifier, kept apart from the attributes.
		tr := newTree(t)
		sa := SetAttr{Mode: u32(0o640)}
		a := must(tr.fs.Create(ctx, alice, tr.d, "x", CreateExclusive, sa, 42))(t)
		b := must(tr.fs.Create(ctx, alice, tr.d, "x", CreateExclusive, sa, 42))(t)
		if !a.Created || b.Created || a.Attr.Ino != b.Attr.Ino || a.Attr.Mode != 0o640 || b.Attr.Mode != 0o640 || a.Attr.UID != alice.UID {
			t.Fatalf("exclusive create with a mode, and its retry: %+v %+v", a, b)
		}
		_, err := tr.fs.Create(ctx, alice, tr.d, "x", CreateExclusive, sa, 43)
		wantErr(t, err, ErrExist)
		// A change ends the verifier's answer (the file is no longer the
		// create's fresh result).
		must3(tr.fs.SetAttr(ctx, alice, a.Attr.Ino, SetAttr{Mode: u32(0o600)}, nil))(t)
		_, err = tr.fs.Create(ctx, alice, tr.d, "x", CreateExclusive, sa, 42)
		wantErr(t, err, ErrExist)
		_, err = tr.fs.Create(ctx, alice, tr.d, "y", CreateExclusive, SetAttr{Size: u64(0)}, 42)
		wantErr(t, err, ErrInvalid)
	})
	t.Run("setgid directory is inherited", func(t *testing.T) {
		tr := newTree(t)
		must3(tr.fs.SetAttr(ctx, RootCred, tr.e, SetAttr{Mode: u32(0o2777), GID: u32(500)}, nil))(t)
		f := must(tr.fs.Create(ctx, alice, tr.e, "f", CreateGuarded, SetAttr{}, 0))(t).Attr
		d := must(tr.fs.Mkdir(ctx, alice, tr.e, "dd", SetAttr{Mode: u32(0o755)}))(t).Attr
		if f.GID != 500 || d.GID != 500 || d.Mode&ModeSetGID == 0 || f.Mode&ModeSetGID != 0 {
			t.Fatalf("file %+v dir %+v", f, d)
		}
	})
	t.Run("mkdir and rmdir keep nlink", func(t *testing.T) {
		tr := newTree(t)
		p0 := must(tr.fs.GetAttr(ctx, tr.e))(t).Nlink
		en := must(tr.fs.Mkdir(ctx, RootCred, tr.e, "c", SetAttr{}))(t)
		if en.Attr.Nlink != 2 || en.Dir.After.Nlink != p0+1 || en.Attr.Parent != tr.e {
			t.Fatalf("mkdir: %+v", en)
		}
		if up := must(tr.fs.Lookup(ctx, RootCred, en.Attr.Ino, ".."))(t); up.Ino != tr.e {
			t.Fatalf(".. = %d", up.Ino)
		}
		dc := must(tr.fs.Rmdir(ctx, RootCred, tr.e, "c"))(t)
		if dc.After.Nlink != p0 {
			t.Fatalf("parent nlink %d after rmdir, want %d", dc.After.Nlink, p0)
		}
		_, err := tr.fs.GetAttr(ctx, en.Attr.Ino)
		wantErr(t, err, ErrStale)
	})
	t.Run("hard links", func(t *testing.T) {
		tr := newTree(t)
		a0 := must(tr.fs.GetAttr(ctx, tr.f))(t)
		time.Sleep(time.Millisecond) // for the ctime to move on
		a, _, err := tr.fs.Link(ctx, RootCred, tr.f, tr.e, "g")
		wantErr(t, err, nil)
		if a.Nlink != 2 || !a.Ctime.After(a0.Ctime) {
			t.Fatalf("after link: %+v", a)
		}
		must(tr.fs.Remove(ctx, RootCred, tr.d, "f"))(t)
		a = must(tr.fs.GetAttr(ctx, tr.f))(t)
		if a.Nlink != 1 {
			t.Fatalf("nlink %d after removing one link", a.Nlink)
		}
		data, _, _, err := tr.fs.Read(ctx, RootCred, tr.f, 0, 100)
		if err != nil || string(data) != "hello" {
			t.Fatalf("read through other link: %q %v", data, err)
		}
		must(tr.fs.Remove(ctx, RootCred, tr.e, "g"))(t)
		_, err = tr.fs.GetAttr(ctx, tr.f)
		wantErr(t, err, ErrStale)
	})
	t.Run("rename replaces a file", func(t *testing.T) {
		tr := newTree(t)
		x := must(tr.fs.Create(ctx, RootCred, tr.e, "x", CreateGuarded, SetAttr{}, 0))(t).Attr
		must2(t)(tr.fs.Rename(ctx, RootCred, tr.d, "f", tr.e, "x"))
		got := must(tr.fs.Lookup(ctx, RootCred, tr.e, "x"))(t)
		if got.Ino != tr.f {
			t.Fatalf("x is %d, want %d", got.Ino, tr.f)
		}
		_, err := tr.fs.GetAttr(ctx, x.Ino)
		wantErr(t, err, ErrStale)
		_, err = tr.fs.Lookup(ctx, RootCred, tr.d, "f")
		wantErr(t, err, ErrNotFound)
	})
	t.Run("rename replaces an empty dir and moves dotdot", func(t *testing.T) {
		tr := newTree(t)
		must(tr.fs.Mkdir(ctx, RootCred, tr.e, "target", SetAttr{}))(t)
		dn0 := must(tr.fs.GetAttr(ctx, tr.d))(t).Nlink
		en0 := must(tr.fs.GetAttr(ctx, tr.e))(t).Nlink
		from, to, err := tr.fs.Rename(ctx, RootCred, tr.d, "sub", tr.e, "target")
		wantErr(t, err, nil)
		if from.After.Nlink != dn0-1 || to.After.Nlink != en0 {
			t.Fatalf("nlinks: from %d→%d, to %d→%d", dn0, from.After.Nlink, en0, to.After.Nlink)
		}
		if up := must(tr.fs.Lookup(ctx, RootCred, tr.sub, ".."))(t); up.Ino != tr.e {
			t.Fatalf(".. of moved dir = %d, want %d", up.Ino, tr.e)
		}
	})
	t.Run("rename same name is a no-op", func(t *testing.T) {
		tr := newTree(t)
		seq := tr.fs.Replica().DurableSeq()
		must2(t)(tr.fs.Rename(ctx, RootCred, tr.d, "f", tr.d, "f"))
		if tr.fs.Replica().DurableSeq() != seq {
			t.Fatal("same-name rename wrote a record")
		}
		must3(tr.fs.Link(ctx, RootCred, tr.f, tr.d, "f2"))(t)
		seq = tr.fs.Replica().DurableSeq()
		must2(t)(tr.fs.Rename(ctx, RootCred, tr.d, "f", tr.d, "f2"))
		if tr.fs.Replica().DurableSeq() != seq {
			t.Fatal("rename between links of one file wrote a record")
		}
		must(tr.fs.Lookup(ctx, RootCred, tr.d, "f"))(t)
	})
	t.Run("write changes mtime and size, clears setuid", func(t *testing.T) {
		tr := newTree(t)
		must3(tr.fs.SetAttr(ctx, alice, tr.f, SetAttr{Mode: u32(0o4755)}, nil))(t)
		must3(tr.fs.SetAttr(ctx, RootCred, tr.f, SetAttr{Mode: u32(0o4777)}, nil))(t)
		b, a, err := tr.fs.Write(ctx, bob, tr.f, 10, []byte("xyz"))
		wantErr(t, err, nil)
		if a.Size != 13 || b.Size != 5 || a.Mode&ModeSetUID != 0 || !a.Mtime.After(b.Mtime) && !a.Mtime.Equal(b.Mtime) {
			t.Fatalf("before %+v after %+v", b, a)
		}
		data, eof, _, _ := tr.fs.Read(ctx, RootCred, tr.f, 0, 100)
		if !bytes.Equal(data, []byte("hello\x00\x00\x00\x00\x00xyz")) || !eof {
			t.Fatalf("read %q eof %v", data, eof)
		}
	})
	t.Run("chown clears setuid", func(t *testing.T) {
		tr := newTree(t)
		must3(tr.fs.SetAttr(ctx, RootCred, tr.f, SetAttr{Mode: u32(0o6755)}, nil))(t)
		_, a, err := tr.fs.SetAttr(ctx, RootCred, tr.f, SetAttr{UID: u32(3000)}, nil)
		wantErr(t, err, nil)
		if a.UID != 3000 || a.Mode&(ModeSetUID|ModeSetGID) != 0 {
			t.Fatalf("after chown %+v", a)
		}
	})
	t.Run("owner and mode in one call keep the mode", func(t *testing.T) {
		// cp -a through the mount: the new file's owner and its mode (set
		// apart, chown then chmod) reach the server as one SETATTR; a
		// setuid program copied as root kept 0755 of its 04755.
		tr := newTree(t)
		_, a, err := tr.fs.SetAttr(ctx, RootCred, tr.f, SetAttr{Mode: u32(0o4755), UID: u32(3000), GID: u32(3000)}, nil)
		wantErr(t, err, nil)
		if a.UID != 3000 || a.GID != 3000 || a.Mode != 0o4755 {
			t.Fatalf("after owner and mode 04755 in one call: uid %d gid %d mode %04o, want 3000, 3000, 4755", a.UID, a.GID, a.Mode)
		}
	})
	t.Run("truncate by non-root clears setuid and group-exec setgid", func(t *testing.T) {
		// pjdfstest chmod/12.t through the FUSE client: its kernel leaves
		// the clearing to the file system (HANDLE_KILLPRIV), and a
		// non-owner may not chmod.
		for _, c := range []struct {
			cred       Cred
			mode, want uint32
		}{
			{bob, 0o6777, 0o777},
			{bob, 0o2767, 0o2767}, // setgid without group exec is mandatory locking: kept
			{RootCred, 0o6777, 0o6777},
		} {
			tr := newTree(t)
			must3(tr.fs.SetAttr(ctx, RootCred, tr.f, SetAttr{Mode: u32(c.mode)}, nil))(t)
			_, a, err := tr.fs.SetAttr(ctx, c.cred, tr.f, SetAttr{Size: u64(0)}, nil)
			wantErr(t, err, nil)
			if a.Size != 0 || a.Mode != c.want {
				t.Errorf("truncate of %#o by uid %d: mode %#o size %d, want mode %#o", c.mode, c.cred.UID, a.Mode, a.Size, c.want)
			}
		}
		// A mode given in the same SETATTR as the size is kept (the owner
		// truncating and setting setuid at once).
		tr := newTree(t)
		_, a, err := tr.fs.SetAttr(ctx, alice, tr.f, SetAttr{Size: u64(0), Mode: u32(0o4755)}, nil)
		wantErr(t, err, nil)
		if a.Mode != 0o4755 {
			t.Errorf("truncate with mode 04755 by the owner: mode %#o", a.Mode)
		}
	})
	t.Run("owner may chgrp to own group", func(t *testing.T) {
		tr := newTree(t)
		c := Cred{UID: 1000, GID: 1000, Groups: []uint32{77}}
		_, a, err := tr.fs.SetAttr(ctx, c, tr.f, SetAttr{GID: u32(77)}, nil)
		wantErr(t, err, nil)
		if a.GID != 77 {
			t.Fatal(a.GID)
		}
	})
	t.Run("times", func(t *testing.T) {
		tr := newTree(t)
		at := time.Unix(1000, 123456789).UTC()
		_, a, err := tr.fs.SetAttr(ctx, alice, tr.f, SetAttr{Atime: &TimeSet{Time: at}, Mtime: &TimeSet{Time: at.Add(time.Nanosecond)}}, nil)
		wantErr(t, err, nil)
		if !a.Atime.Equal(at) || a.Mtime.UnixNano() != at.UnixNano()+1 {
			t.Fatalf("times %v %v", a.Atime, a.Mtime)
		}
		g := a.Ctime
		_, b, err := tr.fs.SetAttr(ctx, alice, tr.f, SetAttr{Mtime: &TimeSet{ServerTime: true}}, &g)
		wantErr(t, err, nil)
		if !b.Mtime.After(at) {
			t.Fatalf("server time %v", b.Mtime)
		}
	})
	t.Run("mknod devices", func(t *testing.T) {
		tr := newTree(t)
		a := must(tr.fs.Mknod(ctx, RootCred, tr.e, "null", TypeChar, 1, 3, SetAttr{Mode: u32(0o666)}))(t).Attr
		if a.Type != TypeChar || a.Major != 1 || a.Minor != 3 || a.Mode != 0o666 {
			t.Fatalf("%+v", a)
		}
		s := must(tr.fs.Mknod(ctx, alice, tr.d, "sock", TypeSocket, 9, 9, SetAttr{}))(t).Attr
		if s.Type != TypeSocket || s.Major != 0 {
			t.Fatalf("%+v", s)
		}
	})
	t.Run("symlink is stored, never followed", func(t *testing.T) {
		tr := newTree(t)
		target, a, err := tr.fs.Readlink(ctx, tr.l)
		if err != nil || target != "d/f" || a.Size != 3 || a.Type != TypeSymlink {
			t.Fatalf("readlink %q %+v %v", target, a, err)
		}
		_, err = tr.fs.Lookup(ctx, RootCred, tr.l, "x")
		wantErr(t, err, ErrNotDir)
	})
	t.Run("access", func(t *testing.T) {
		tr := newTree(t)
		g, _, err := tr.fs.Access(ctx, bob, tr.f, AccessRead|AccessWrite|AccessExec)
		if err != nil || g != AccessRead {
			t.Fatalf("bob on f: %o %v", g, err)
		}
		g, _, _ = tr.fs.Access(ctx, RootCred, tr.f, AccessRead|AccessWrite|AccessExec)
		if g != AccessRead|AccessWrite {
			t.Fatalf("root on non-executable file: %o", g)
		}
	})
	t.Run("fsstat counts", func(t *testing.T) {
		tr := newTree(t)
		st := must(tr.fs.FSStat(ctx))(t)
		// One file of 5 bytes: it uses a page (4 KiB), like on EFS.
		if st.UsedFiles != 12 || st.UsedBytes != 4096 {
			t.Fatalf("fsstat %+v", st)
		}
	})
}

func must2(t testing.TB) func(a, b DirChange, err error) {
	return func(_, _ DirChange, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
}
