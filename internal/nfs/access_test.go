package nfs

import (
	"testing"

	"github.com/regionfs/regionfs/internal/nfs/proto"
)

const allAccess = proto.AccessRead | proto.AccessLookup | proto.AccessModify | proto.AccessExtend | proto.AccessDelete | proto.AccessExecute

// TestAccess checks ACCESS against the mode bits for owner, group, other
// and root, on files and directories.
func TestAccess(t *testing.T) {
	f := newFixture(t, envOpt{})
	file := f.create(t, f.root, "f", "")
	dir := f.mkdir(t, f.root, "d", 0o755)
	chown := func(fh proto.FH, mode, uid, gid uint32) {
		t.Helper()
		if _, err := f.c.SetAttr(f.ctx, fh, proto.Sattr{Mode: &mode, UID: &uid, GID: &gid}, nil); err != nil {
			t.Fatal(err)
		}
	}
	const (
		R = proto.AccessRead
		L = proto.AccessLookup
		M = proto.AccessModify
		E = proto.AccessExtend
		D = proto.AccessDelete
		X = proto.AccessExecute
	)
	cases := []struct {
		name           string
		fh             proto.FH
		mode, uid, gid uint32
		who            [3]uint32 // uid, gid, supplementary group (0 = none)
		want           uint32
	}{
		{"file owner rw", file, 0o640, 1000, 100, [3]uint32{1000, 1000, 0}, R | M | E},
		{"file group r", file, 0o640, 1000, 100, [3]uint32{2000, 100, 0}, R},
		{"file supplementary group r", file, 0o640, 1000, 100, [3]uint32{2000, 2000, 100}, R},
		{"file other none", file, 0o640, 1000, 100, [3]uint32{2000, 2000, 0}, 0},
		{"file other x", file, 0o751, 1000, 100, [3]uint32{2000, 2000, 0}, X},
		{"file owner bits only", file, 0o077, 1000, 100, [3]uint32{1000, 100, 0}, 0},
		{"file root no x", file, 0o644, 1000, 100, [3]uint32{0, 0, 0}, R | M | E},
		{"file root x", file, 0o100, 1000, 100, [3]uint32{0, 0, 0}, R | M | E | X},
		{"dir owner rwx", dir, 0o700, 1000, 100, [3]uint32{1000, 100, 0}, R | L | M | E | D},
		{"dir group rx", dir, 0o750, 1000, 100, [3]uint32{2000, 100, 0}, R | L},
		{"dir other w no x", dir, 0o702, 1000, 100, [3]uint32{2000, 2000, 0}, 0},
		{"dir other x only", dir, 0o701, 1000, 100, [3]uint32{2000, 2000, 0}, L},
		{"dir root", dir, 0o000, 1000, 100, [3]uint32{0, 0, 0}, R | L | M | E | D},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			chown(c.fh, c.mode, c.uid, c.gid)
			var groups []uint32
			if c.who[2] != 0 {
				groups = []uint32{c.who[2]}
			}
			u := f.dialAs(c.who[0], c.who[1], groups...)
			r, err := u.Access(f.ctx, c.fh, allAccess)
			if err != nil {
				t.Fatal(err)
			}
			if r.Access != c.want {
				t.Fatalf("access %#x, want %#x", r.Access, c.want)
			}
			if r.Attr == nil || r.Attr.Mode != c.mode {
				t.Fatalf("attributes %+v", r.Attr)
			}
			// Only the asked bits are answered.
			r, _ = u.Access(f.ctx, c.fh, proto.AccessRead)
			if r.Access != c.want&proto.AccessRead {
				t.Fatalf("asked READ only, got %#x", r.Access)
			}
		})
	}
	// AUTH_NONE callers are the anonymous user.
	chown(file, 0o604, 1000, 100)
	anon := f.dialAs(0, 0)
	anon.Auth.Flavor, anon.Auth.Body = 0, nil
	r, err := anon.Access(f.ctx, file, allAccess)
	if err != nil || r.Access != R {
		t.Fatalf("AUTH_NONE access %#x %v", r.Access, err)
	}
}

// TestRootSquash maps root to the anonymous identity.
func TestRootSquash(t *testing.T) {
	f := newFixture(t, envOpt{})
	file := f.create(t, f.root, "f", "x")
	if _, err := f.c.SetAttr(f.ctx, file, proto.Sattr{Mode: ptr(uint32(0o600))}, nil); err != nil {
		t.Fatal(err)
	}
	f.srv.SetExports([]Export{{Path: "/", FS: f.fs, RootSquash: true}})
	r, err := f.c.Access(f.ctx, file, allAccess)
	if err != nil || r.Access != 0 {
		t.Fatalf("squashed root access %#x %v", r.Access, err)
	}
	_, err = f.c.Read(f.ctx, file, 0, 10)
	wantStatus(t, err, proto.ErrAcces)
	if _, err := f.c.SetAttr(f.ctx, f.root, proto.Sattr{Mode: ptr(uint32(0o777))}, nil); err == nil {
		t.Fatal("squashed root changed the root's mode")
	}
	f.srv.SetExports([]Export{{Path: "/", FS: f.fs, RootSquash: true, AnonUID: 4242, AnonGID: 4242}})
	// The squashed root creates files as the anonymous user... once
	// allowed to write.
	f.srv.SetExports([]Export{{Path: "/", FS: f.fs}})
	f.c.SetAttr(f.ctx, f.root, proto.Sattr{Mode: ptr(uint32(0o777))}, nil)
	f.srv.SetExports([]Export{{Path: "/", FS: f.fs, RootSquash: true, AnonUID: 4242, AnonGID: 4343}})
	cr, err := f.c.Create(f.ctx, f.root, "squashed", proto.Guarded, proto.Sattr{})
	if err != nil || cr.Attr.UID != 4242 || cr.Attr.GID != 4343 {
		t.Fatalf("squashed create %+v %v", cr.Attr, err)
	}
}
