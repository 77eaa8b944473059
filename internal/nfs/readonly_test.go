package nfs

import (
	"testing"

	"github.com/regionfs/regionfs/internal/nfs/proto"
)

// mutations calls every mutating procedure; each must answer want.
func checkMutations(t *testing.T, f *fixture, file, dir proto.FH, want proto.Status) {
	t.Helper()
	type call struct {
		name string
		fn   func() error
	}
	calls := []call{
		{"SETATTR", func() error {
			_, err := f.c.SetAttr(f.ctx, file, proto.Sattr{Mode: ptr(uint32(0o600))}, nil)
			return err
		}},
		{"WRITE unstable", func() error { _, err := f.c.Write(f.ctx, file, 0, []byte("x"), proto.Unstable); return err }},
		{"WRITE sync", func() error { _, err := f.c.Write(f.ctx, file, 0, []byte("x"), proto.FileSync); return err }},
		{"CREATE", func() error { _, err := f.c.Create(f.ctx, dir, "new", proto.Guarded, proto.Sattr{}); return err }},
		{"CREATE exclusive", func() error { _, err := f.c.CreateExclusive(f.ctx, dir, "newx", [8]byte{1}); return err }},
		{"REGIONFS_CREATE", func() error {
			_, err := f.c.CreateExclusiveAttrs(f.ctx, dir, "newr", [8]byte{1}, proto.Sattr{Mode: ptr(uint32(0o644))})
			return err
		}},
		{"MKDIR", func() error { _, err := f.c.Mkdir(f.ctx, dir, "newdir", proto.Sattr{}); return err }},
		{"SYMLINK", func() error { _, err := f.c.Symlink(f.ctx, dir, "newlink", "x", proto.Sattr{}); return err }},
		{"MKNOD", func() error { _, err := f.c.Mknod(f.ctx, dir, "fifo", proto.TypeFIFO, proto.Sattr{}, 0, 0); return err }},
		{"LINK", func() error { _, err := f.c.Link(f.ctx, file, dir, "hard"); return err }},
		{"COMMIT", func() error { _, err := f.c.Commit(f.ctx, file, 0, 0); return err }},
		{"RENAME", func() error { _, err := f.c.Rename(f.ctx, dir, "f", dir, "g"); return err }},
		{"REMOVE", func() error { _, err := f.c.Remove(f.ctx, dir, "g"); return err }},
		{"RMDIR", func() error { _, err := f.c.Rmdir(f.ctx, dir, "d"); return err }},
	}
	for _, c := range calls {
		name := c.name
		if err := c.fn(); want == proto.OK && err != nil || want != proto.OK && err != want {
			t.Errorf("%s: %v, want %v", name, err, want)
		}
	}
}

func TestReadOnlyExport(t *testing.T) {
	f := newFixture(t, envOpt{})
	file := f.create(t, f.root, "f", "data")
	f.mkdir(t, f.root, "d", 0o755)
	f.srv.SetExports([]Export{{Path: "/", FS: f.fs, ReadOnly: true}})
	checkMutations(t, f, file, f.root, proto.ErrROFS)
	// Reads and listings work; ACCESS grants no modification; FSSTAT
	// shows nothing available; FSINFO cannot set times.
	rd, err := f.c.Read(f.ctx, file, 0, 10)
	if err != nil || string(rd.Data) != "data" {
		t.Fatalf("read %q %v", rd.Data, err)
	}
	if ents, err := f.c.ReadDirAll(f.ctx, f.root); err != nil || len(ents) != 4 {
		t.Fatalf("listing %d %v", len(ents), err)
	}
	a, _ := f.c.Access(f.ctx, file, allAccess)
	if a.Access != proto.AccessRead {
		t.Fatalf("read-only access %#x", a.Access)
	}
	st, _ := f.c.FSStat(f.ctx, f.root)
	if st.ABytes != 0 || st.AFiles != 0 {
		t.Fatalf("read-only fsstat %+v", st)
	}
	fi, _ := f.c.FSInfo(f.ctx, f.root)
	if fi.Properties&proto.FSFCanSetTime != 0 {
		t.Fatal("read-only FSINFO says CANSETTIME")
	}
	// The same handles work again once writable.
	f.srv.SetExports([]Export{{Path: "/", FS: f.fs}})
	checkMutations(t, f, file, f.root, proto.OK)
}

// TestReplicaIsReadOnly: a file system the engine runs as a replica is
// read-only through a writable export too.
func TestReplicaIsReadOnly(t *testing.T) {
	f := newFixture(t, envOpt{})
	file := f.create(t, f.root, "f", "data")
	f.mkdir(t, f.root, "d", 0o755)
	if err := f.fs.Replica().MakeReplica(f.ctx); err != nil {
		t.Fatal(err)
	}
	checkMutations(t, f, file, f.root, proto.ErrROFS)
	rd, err := f.c.Read(f.ctx, file, 0, 10)
	if err != nil || string(rd.Data) != "data" {
		t.Fatalf("read on a replica %q %v", rd.Data, err)
	}
}
