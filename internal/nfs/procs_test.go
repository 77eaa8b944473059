package nfs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/regionfs/regionfs/internal/nfs/client"
	"github.com/regionfs/regionfs/internal/nfs/proto"
)

func ptr[T any](v T) *T { return &v }

func wantStatus(t *testing.T, err error, want proto.Status) {
	t.Helper()
	if want == proto.OK {
		if err != nil {
			t.Fatalf("error %v, want NFS3_OK", err)
		}
		return
	}
	if !errors.Is(err, want) {
		t.Fatalf("error %v, want %v", err, want)
	}
}

// fixture is a mounted export with a client.
type fixture struct {
	*testEnv
	c    *client.Client
	root proto.FH
	ctx  context.Context
}

func newFixture(t *testing.T, o envOpt) *fixture {
	v := newEnv(t, o)
	c := v.dial()
	return &fixture{testEnv: v, c: c, root: v.mount(c, "/"), ctx: context.Background()}
}

func (f *fixture) create(t *testing.T, dir proto.FH, name string, data string) proto.FH {
	t.Helper()
	r, err := f.c.Create(f.ctx, dir, name, proto.Guarded, proto.Sattr{Mode: ptr(uint32(0o644))})
	if err != nil {
		t.Fatalf("create %s: %v", name, err)
	}
	if data != "" {
		if _, err := f.c.Write(f.ctx, r.FH, 0, []byte(data), proto.FileSync); err != nil {
			t.Fatal(err)
		}
	}
	return r.FH
}

func (f *fixture) mkdir(t *testing.T, dir proto.FH, name string, mode uint32) proto.FH {
	t.Helper()
	r, err := f.c.Mkdir(f.ctx, dir, name, proto.Sattr{Mode: &mode})
	if err != nil {
		t.Fatalf("mkdir %s: %v", name, err)
	}
	return r.FH
}

func (f *fixture) lookup(t *testing.T, dir proto.FH, name string) *proto.LookupRes {
	t.Helper()
	r, err := f.c.Lookup(f.ctx, dir, name)
	if err != nil {
		t.Fatalf("lookup %s: %v", name, err)
	}
	return r
}

func TestProcNullAndGetAttr(t *testing.T) {
	f := newFixture(t, envOpt{})
	if err := f.c.Null(f.ctx, proto.ProgNFS, proto.VersNFS); err != nil {
		t.Fatal(err)
	}
	r, err := f.c.GetAttr(f.ctx, f.root)
	if err != nil {
		t.Fatal(err)
	}
	if r.Attr.Type != proto.TypeDir || r.Attr.FileID != 1 || r.Attr.Mode != 0o755 || r.Attr.Nlink != 2 {
		t.Fatalf("root attrs %+v", r.Attr)
	}
	// A handle that is not ours: BADHANDLE; too long for XDR: garbage.
	_, err = f.c.GetAttr(f.ctx, proto.FH("short"))
	wantStatus(t, err, proto.ErrBadHandle)
	forged := append(proto.FH(nil), f.root...)
	forged[20+7] ^= 1 // another inode, same MAC
	_, err = f.c.GetAttr(f.ctx, forged)
	wantStatus(t, err, proto.ErrBadHandle)
}

func TestProcSetAttr(t *testing.T) {
	f := newFixture(t, envOpt{})
	fh := f.create(t, f.root, "f", "0123456789")
	a, _ := f.c.GetAttr(f.ctx, fh)
	r, err := f.c.SetAttr(f.ctx, fh, proto.Sattr{Mode: ptr(uint32(0o600)), Size: ptr(uint64(4))}, &a.Attr.Ctime)
	if err != nil {
		t.Fatal(err)
	}
	if r.Wcc.Before == nil || r.Wcc.Before.Size != 10 || r.Wcc.After == nil || r.Wcc.After.Size != 4 || r.Wcc.After.Mode != 0o600 {
		t.Fatalf("wcc %+v %+v", r.Wcc.Before, r.Wcc.After)
	}
	// Stale guard: NOT_SYNC, nothing changed.
	r, err = f.c.SetAttr(f.ctx, fh, proto.Sattr{Size: ptr(uint64(0))}, &a.Attr.Ctime)
	wantStatus(t, err, proto.ErrNotSync)
	if r.Wcc.After == nil || r.Wcc.After.Size != 4 {
		t.Fatalf("not_sync changed the file: %+v", r.Wcc.After)
	}
	// Times from the client and from the server.
	mt := proto.Time{Sec: 1_000_000_000, Nsec: 123456789}
	r, err = f.c.SetAttr(f.ctx, fh, proto.Sattr{Mtime: proto.SetTime{How: proto.SetToClientTime, Time: mt}, Atime: proto.SetTime{How: proto.SetToServerTime}}, nil)
	if err != nil || r.Wcc.After.Mtime != mt {
		t.Fatalf("mtime %v %v", r.Wcc.After.Mtime, err)
	}
	// Size of a directory: ISDIR. chown by a non-owner: PERM.
	_, err = f.c.SetAttr(f.ctx, f.root, proto.Sattr{Size: ptr(uint64(0))}, nil)
	wantStatus(t, err, proto.ErrIsDir)
	u := f.dialAs(1000, 1000).WithAuth(client.Unix("u", 1000, 1000))
	_, err = u.SetAttr(f.ctx, fh, proto.Sattr{UID: ptr(uint32(1000))}, nil)
	wantStatus(t, err, proto.ErrPerm)
	_, err = u.SetAttr(f.ctx, fh, proto.Sattr{Size: ptr(uint64(0))}, nil)
	wantStatus(t, err, proto.ErrAcces)
	// Root gives it away; the new owner may chmod.
	if _, err := f.c.SetAttr(f.ctx, fh, proto.Sattr{UID: ptr(uint32(1000)), GID: ptr(uint32(1000))}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := u.SetAttr(f.ctx, fh, proto.Sattr{Mode: ptr(uint32(0o4755))}, nil); err != nil {
		t.Fatal(err)
	}
	g, _ := f.c.GetAttr(f.ctx, fh)
	if g.Attr.Mode != 0o4755 || g.Attr.UID != 1000 {
		t.Fatalf("mode %o uid %d (setuid must be visible)", g.Attr.Mode, g.Attr.UID)
	}
}

func TestProcLookup(t *testing.T) {
	f := newFixture(t, envOpt{})
	d := f.mkdir(t, f.root, "d", 0o755)
	fh := f.create(t, d, "x", "")
	r := f.lookup(t, d, "x")
	if !bytes.Equal(r.FH, fh) || r.Attr == nil || r.DirAttr == nil || r.DirAttr.Type != proto.TypeDir {
		t.Fatalf("lookup %+v", r)
	}
	if got := f.lookup(t, d, ".."); !bytes.Equal(got.FH, f.root) {
		t.Fatal(".. of d is not the root")
	}
	if got := f.lookup(t, d, "."); !bytes.Equal(got.FH, d) {
		t.Fatal(". of d is not d")
	}
	if got := f.lookup(t, f.root, ".."); !bytes.Equal(got.FH, f.root) {
		t.Fatal(".. of the export root is not the root")
	}
	r2, err := f.c.Lookup(f.ctx, d, "missing")
	wantStatus(t, err, proto.ErrNoEnt)
	if r2.DirAttr == nil {
		t.Fatal("no dir attributes on NOENT")
	}
	_, err = f.c.Lookup(f.ctx, fh, "x")
	wantStatus(t, err, proto.ErrNotDir)
	_, err = f.c.Lookup(f.ctx, d, "a/b")
	wantStatus(t, err, proto.ErrAcces)
	_, err = f.c.Lookup(f.ctx, d, strings.Repeat("n", 256))
	wantStatus(t, err, proto.ErrNameTooLong)
	// No search permission on a directory: ACCES for others.
	f.mkdir(t, f.root, "private", 0o700)
	p := f.lookup(t, f.root, "private").FH
	f.create(t, p, "secret", "")
	u := f.dialAs(1000, 1000)
	_, err = u.Lookup(f.ctx, p, "secret")
	wantStatus(t, err, proto.ErrAcces)
}

func TestProcReadlinkSymlink(t *testing.T) {
	f := newFixture(t, envOpt{})
	r, err := f.c.Symlink(f.ctx, f.root, "l", "/etc/passwd", proto.Sattr{})
	if err != nil {
		t.Fatal(err)
	}
	if r.Attr.Type != proto.TypeLnk || r.DirWcc.Before == nil || r.DirWcc.After == nil {
		t.Fatalf("symlink %+v", r)
	}
	rl, err := f.c.Readlink(f.ctx, r.FH)
	if err != nil || rl.Target != "/etc/passwd" {
		t.Fatalf("readlink %q %v", rl.Target, err)
	}
	_, err = f.c.Readlink(f.ctx, f.root)
	wantStatus(t, err, proto.ErrInval)
	_, err = f.c.Symlink(f.ctx, f.root, "l", "x", proto.Sattr{})
	wantStatus(t, err, proto.ErrExist)
	// The server never follows symlinks: a CREATE over one is EXIST,
	// writing through the link's handle is INVAL.
	_, err = f.c.Create(f.ctx, f.root, "l", proto.Guarded, proto.Sattr{})
	wantStatus(t, err, proto.ErrExist)
	_, err = f.c.Write(f.ctx, r.FH, 0, []byte("x"), proto.FileSync)
	wantStatus(t, err, proto.ErrInval)
	_, err = f.c.Read(f.ctx, r.FH, 0, 10)
	wantStatus(t, err, proto.ErrInval)
}

// TestSymlinkTargetLimits: a SYMLINK target with a NUL is INVAL and one
// of 4096 bytes or more NAMETOOLONG, as from Linux's nfsd (PATH_MAX
// counts the NUL); regionfs stored both, and Linux clients cannot read
// such links back. 4095 bytes is the longest.
func TestSymlinkTargetLimits(t *testing.T) {
	f := newFixture(t, envOpt{})
	for _, c := range []struct {
		name, target string
		want         proto.Status
	}{
		{"nul", "a\x00b", proto.ErrInval},
		{"4096", strings.Repeat("t", 4096), proto.ErrNameTooLong},
		{"4095", strings.Repeat("t", 4095), proto.OK},
	} {
		r, err := f.c.Symlink(f.ctx, f.root, c.name, c.target, proto.Sattr{})
		wantStatus(t, err, c.want)
		if c.want != proto.OK {
			if _, err := f.c.Lookup(f.ctx, f.root, c.name); !errors.Is(err, proto.ErrNoEnt) {
				t.Fatalf("%s: refused symlink exists: %v", c.name, err)
			}
			continue
		}
		rl, err := f.c.Readlink(f.ctx, r.FH)
		if err != nil || rl.Target != c.target {
			t.Fatalf("%s: readlink %d bytes %v", c.name, len(rl.Target), err)
		}
	}
}

// TestProcCommitWcc: COMMIT's post-operation attributes are the file's,
// whether it had buffered data to write (UNSTABLE) or none (FILE_SYNC
// data; COMMIT then reuses the attributes it read first).
func TestProcCommitWcc(t *testing.T) {
	f := newFixture(t, envOpt{})
	fh := f.create(t, f.root, "f", "")
	for _, stable := range []proto.StableHow{proto.FileSync, proto.Unstable, proto.FileSync} {
		if _, err := f.c.Write(f.ctx, fh, 0, []byte("hello world, "+stable.String()), stable); err != nil {
			t.Fatal(err)
		}
		c, err := f.c.Commit(f.ctx, fh, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		g, err := f.c.GetAttr(f.ctx, fh)
		if err != nil {
			t.Fatal(err)
		}
		if c.Wcc.Before == nil || c.Wcc.After == nil || *c.Wcc.After != g.Attr {
			t.Fatalf("%v: commit wcc %+v %+v, getattr %+v", stable, c.Wcc.Before, c.Wcc.After, g.Attr)
		}
	}
}

func TestProcReadWrite(t *testing.T) {
	f := newFixture(t, envOpt{})
	fh := f.create(t, f.root, "f", "")
	w, err := f.c.Write(f.ctx, fh, 0, []byte("hello world"), proto.FileSync)
	if err != nil || w.Count != 11 || w.Committed != proto.FileSync || w.Verf != f.srv.WriteVerifier() {
		t.Fatalf("write %+v %v", w, err)
	}
	if w.Wcc.Before == nil || w.Wcc.Before.Size != 0 || w.Wcc.After == nil || w.Wcc.After.Size != 11 {
		t.Fatalf("write wcc %+v %+v", w.Wcc.Before, w.Wcc.After)
	}
	rd, err := f.c.Read(f.ctx, fh, 6, 100)
	if err != nil || string(rd.Data) != "world" || !rd.EOF || rd.Count != 5 {
		t.Fatalf("read %q eof %v %v", rd.Data, rd.EOF, err)
	}
	rd, err = f.c.Read(f.ctx, fh, 0, 5)
	if err != nil || string(rd.Data) != "hello" || rd.EOF {
		t.Fatalf("read %q eof %v %v", rd.Data, rd.EOF, err)
	}
	rd, err = f.c.Read(f.ctx, fh, 100, 5)
	if err != nil || len(rd.Data) != 0 || !rd.EOF {
		t.Fatalf("read past EOF %q %v %v", rd.Data, rd.EOF, err)
	}
	// DATA_SYNC is answered FILE_SYNC.
	w, err = f.c.Write(f.ctx, fh, 11, []byte("!"), proto.DataSync)
	if err != nil || w.Committed != proto.FileSync {
		t.Fatalf("data_sync %+v %v", w, err)
	}
	// Errors.
	_, err = f.c.Read(f.ctx, f.root, 0, 10)
	wantStatus(t, err, proto.ErrIsDir)
	_, err = f.c.Write(f.ctx, f.root, 0, []byte("x"), proto.FileSync)
	wantStatus(t, err, proto.ErrIsDir)
	_, err = f.c.Write(f.ctx, fh, 1<<62, []byte("x"), proto.Unstable)
	wantStatus(t, err, proto.ErrFBig)
	u := f.dialAs(1000, 1000)
	_, err = u.Write(f.ctx, fh, 0, []byte("x"), proto.Unstable)
	wantStatus(t, err, proto.ErrAcces)
	_, err = u.Write(f.ctx, fh, 0, []byte("x"), proto.FileSync)
	wantStatus(t, err, proto.ErrAcces)
	// count larger than the data: INVAL.
	res := &proto.WriteRes{}
	err = f.c.Call(f.ctx, proto.ProgNFS, proto.VersNFS, proto.ProcWrite,
		&proto.WriteArgs{FH: fh, Offset: 0, Count: 10, Stable: proto.FileSync, Data: []byte("ab")}, res)
	if err != nil || res.Status != proto.ErrInval {
		t.Fatalf("count > data: %v %v", res.Status, err)
	}
	// A large write is cut to the server's maximum in a READ.
	big := bytes.Repeat([]byte("z"), 3<<20)
	for off := 0; off < len(big); off += 1 << 20 {
		if _, err := f.c.Write(f.ctx, fh, uint64(off), big[off:off+1<<20], proto.Unstable); err != nil {
			t.Fatal(err)
		}
	}
	rd, err = f.c.Read(f.ctx, fh, 0, 2<<20)
	if err != nil || len(rd.Data) != 1<<20 || rd.EOF {
		t.Fatalf("read of 2 MiB returned %d bytes eof %v %v", len(rd.Data), rd.EOF, err)
	}
}

// TestWriteOverWTMax: a WRITE of more than FSINFO's wtmax that still fits
// in a record is written whole, and its count says so. RFC 1813 3.3.7 also
// allows a short write of wtmax bytes, but a client that ignores the count
// (the scale-out tests' writer did, with 1 MiB + a few bytes) would lose
// the rest silently.
func TestWriteOverWTMax(t *testing.T) {
	f := newFixture(t, envOpt{})
	fi, err := f.c.FSInfo(f.ctx, f.root)
	if err != nil {
		t.Fatal(err)
	}
	for _, stable := range []proto.StableHow{proto.FileSync, proto.Unstable} {
		fh := f.create(t, f.root, fmt.Sprintf("f%d", stable), "")
		data := bytes.Repeat([]byte("w"), int(fi.WTMax)+8192)
		w, err := f.c.Write(f.ctx, fh, 0, data, stable)
		if err != nil || w.Count != uint32(len(data)) || w.Wcc.After.Size != uint64(len(data)) {
			t.Fatalf("write of wtmax+8 KiB (stable %d): count %d, size %d, %v", stable, w.Count, w.Wcc.After.Size, err)
		}
		if _, err := f.c.Commit(f.ctx, fh, 0, 0); err != nil {
			t.Fatal(err)
		}
		rd, err := f.c.Read(f.ctx, fh, uint64(fi.WTMax), 1<<20)
		if err != nil || !bytes.Equal(rd.Data, data[fi.WTMax:]) {
			t.Fatalf("read after the write's wtmax: %d bytes %v", len(rd.Data), err)
		}
	}
}

func TestProcCreate(t *testing.T) {
	f := newFixture(t, envOpt{})
	r, err := f.c.Create(f.ctx, f.root, "g", proto.Guarded, proto.Sattr{Mode: ptr(uint32(0o640))})
	if err != nil || r.Attr.Mode != 0o640 || r.Attr.Type != proto.TypeReg || r.DirWcc.Before == nil {
		t.Fatalf("guarded %+v %v", r, err)
	}
	if r.DirWcc.After.Mtime == r.DirWcc.Before.Mtime && r.DirWcc.After.Ctime == r.DirWcc.Before.Ctime {
		t.Fatal("directory times unchanged by create")
	}
	_, err = f.c.Create(f.ctx, f.root, "g", proto.Guarded, proto.Sattr{})
	wantStatus(t, err, proto.ErrExist)
	f.c.Write(f.ctx, r.FH, 0, []byte("data"), proto.FileSync)
	// UNCHECKED reuses the file; with a size it truncates.
	u, err := f.c.Create(f.ctx, f.root, "g", proto.Unchecked, proto.Sattr{})
	if err != nil || !bytes.Equal(u.FH, r.FH) || u.Attr.Size != 4 {
		t.Fatalf("unchecked %+v %v", u, err)
	}
	u, err = f.c.Create(f.ctx, f.root, "g", proto.Unchecked, proto.Sattr{Size: ptr(uint64(0))})
	if err != nil || u.Attr.Size != 0 {
		t.Fatalf("unchecked size 0 %+v %v", u, err)
	}
	// EXCLUSIVE: the same verifier succeeds again, another fails.
	v1 := [8]byte{1, 2, 3, 4, 5, 6, 7, 8}
	e1, err := f.c.CreateExclusive(f.ctx, f.root, "x", v1)
	if err != nil {
		t.Fatal(err)
	}
	e2, err := f.c.CreateExclusive(f.ctx, f.root, "x", v1)
	if err != nil || !bytes.Equal(e1.FH, e2.FH) {
		t.Fatalf("exclusive retry %v", err)
	}
	_, err = f.c.CreateExclusive(f.ctx, f.root, "x", [8]byte{9})
	wantStatus(t, err, proto.ErrExist)
	// Names.
	_, err = f.c.Create(f.ctx, f.root, ".", proto.Guarded, proto.Sattr{})
	wantStatus(t, err, proto.ErrExist)
	_, err = f.c.Create(f.ctx, f.root, "", proto.Guarded, proto.Sattr{})
	wantStatus(t, err, proto.ErrAcces)
	_, err = f.c.Create(f.ctx, f.root, strings.Repeat("a", 300), proto.Guarded, proto.Sattr{})
	wantStatus(t, err, proto.ErrNameTooLong)
	_, err = f.c.Create(f.ctx, r.FH, "in-a-file", proto.Guarded, proto.Sattr{})
	wantStatus(t, err, proto.ErrNotDir)
	// No write permission in the directory: ACCES, and the failure
	// still carries the directory's wcc data.
	res, err := f.dialAs(1000, 1000).Create(f.ctx, f.root, "nope", proto.Guarded, proto.Sattr{})
	wantStatus(t, err, proto.ErrAcces)
	if res.DirWcc.After == nil || res.DirWcc.Before == nil {
		t.Fatal("no wcc data on a failed create")
	}
	// New files belong to the caller.
	f.c.SetAttr(f.ctx, f.root, proto.Sattr{Mode: ptr(uint32(0o777))}, nil)
	o, err := f.dialAs(1000, 100).Create(f.ctx, f.root, "mine", proto.Guarded, proto.Sattr{})
	if err != nil || o.Attr.UID != 1000 || o.Attr.GID != 100 {
		t.Fatalf("owner %d:%d %v", o.Attr.UID, o.Attr.GID, err)
	}
}

func TestProcMkdirRmdir(t *testing.T) {
	f := newFixture(t, envOpt{})
	d := f.mkdir(t, f.root, "d", 0o750)
	a, _ := f.c.GetAttr(f.ctx, d)
	if a.Attr.Mode != 0o750 || a.Attr.Type != proto.TypeDir || a.Attr.Nlink != 2 {
		t.Fatalf("mkdir attrs %+v", a.Attr)
	}
	ra, _ := f.c.GetAttr(f.ctx, f.root)
	if ra.Attr.Nlink != 3 {
		t.Fatalf("root nlink %d", ra.Attr.Nlink)
	}
	_, err := f.c.Mkdir(f.ctx, f.root, "d", proto.Sattr{})
	wantStatus(t, err, proto.ErrExist)
	f.create(t, d, "x", "")
	_, err = f.c.Rmdir(f.ctx, f.root, "d")
	wantStatus(t, err, proto.ErrNotEmpty)
	_, err = f.c.Rmdir(f.ctx, d, "x")
	wantStatus(t, err, proto.ErrNotDir)
	if _, err := f.c.Remove(f.ctx, d, "x"); err != nil {
		t.Fatal(err)
	}
	r, err := f.c.Rmdir(f.ctx, f.root, "d")
	if err != nil || r.Wcc.Before == nil || r.Wcc.After == nil || r.Wcc.After.Nlink != 2 {
		t.Fatalf("rmdir %+v %v", r.Wcc, err)
	}
	_, err = f.c.Rmdir(f.ctx, f.root, "d")
	wantStatus(t, err, proto.ErrNoEnt)
	// The handle of the removed directory is stale.
	_, err = f.c.GetAttr(f.ctx, d)
	wantStatus(t, err, proto.ErrStale)
}

func TestProcMknod(t *testing.T) {
	f := newFixture(t, envOpt{})
	for _, c := range []struct {
		name string
		typ  proto.FileType
	}{{"fifo", proto.TypeFIFO}, {"sock", proto.TypeSock}, {"chr", proto.TypeChr}, {"blk", proto.TypeBlk}} {
		r, err := f.c.Mknod(f.ctx, f.root, c.name, c.typ, proto.Sattr{Mode: ptr(uint32(0o600))}, 8, 1)
		if err != nil {
			t.Fatalf("mknod %s: %v", c.name, err)
		}
		if r.Attr.Type != c.typ {
			t.Fatalf("mknod %s type %d", c.name, r.Attr.Type)
		}
		if (c.typ == proto.TypeChr || c.typ == proto.TypeBlk) && (r.Attr.RdevMajor != 8 || r.Attr.RdevMinor != 1) {
			t.Fatalf("rdev %d,%d", r.Attr.RdevMajor, r.Attr.RdevMinor)
		}
	}
	_, err := f.c.Mknod(f.ctx, f.root, "reg", proto.TypeReg, proto.Sattr{}, 0, 0)
	wantStatus(t, err, proto.ErrBadType)
	_, err = f.c.Mknod(f.ctx, f.root, "fifo", proto.TypeFIFO, proto.Sattr{}, 0, 0)
	wantStatus(t, err, proto.ErrExist)
	// Devices need root.
	f.c.SetAttr(f.ctx, f.root, proto.Sattr{Mode: ptr(uint32(0o777))}, nil)
	_, err = f.dialAs(1000, 1000).Mknod(f.ctx, f.root, "dev", proto.TypeChr, proto.Sattr{}, 1, 3)
	wantStatus(t, err, proto.ErrPerm)
}

func TestProcRemove(t *testing.T) {
	f := newFixture(t, envOpt{})
	fh := f.create(t, f.root, "f", "x")
	r, err := f.c.Remove(f.ctx, f.root, "f")
	if err != nil || r.Wcc.Before == nil || r.Wcc.After == nil {
		t.Fatalf("remove %+v %v", r, err)
	}
	_, err = f.c.GetAttr(f.ctx, fh)
	wantStatus(t, err, proto.ErrStale)
	_, err = f.c.Remove(f.ctx, f.root, "f")
	wantStatus(t, err, proto.ErrNoEnt)
	f.mkdir(t, f.root, "d", 0o755)
	_, err = f.c.Remove(f.ctx, f.root, "d")
	if !errors.Is(err, proto.ErrIsDir) && !errors.Is(err, proto.ErrPerm) {
		t.Fatalf("remove of a directory: %v", err)
	}
	// Sticky directory: others cannot remove root's file.
	f.mkdir(t, f.root, "tmp", 0o1777)
	tmp := f.lookup(t, f.root, "tmp").FH
	f.create(t, tmp, "rootfile", "")
	_, err = f.dialAs(1000, 1000).Remove(f.ctx, tmp, "rootfile")
	wantStatus(t, err, proto.ErrPerm)
}

func TestProcRename(t *testing.T) {
	f := newFixture(t, envOpt{})
	a := f.mkdir(t, f.root, "a", 0o755)
	b := f.mkdir(t, f.root, "b", 0o755)
	fh := f.create(t, a, "f", "data")
	r, err := f.c.Rename(f.ctx, a, "f", b, "g")
	if err != nil || r.FromWcc.Before == nil || r.FromWcc.After == nil || r.ToWcc.Before == nil || r.ToWcc.After == nil {
		t.Fatalf("rename %+v %v", r, err)
	}
	// The handle survives the rename.
	if got := f.lookup(t, b, "g"); !bytes.Equal(got.FH, fh) {
		t.Fatal("handle changed by rename")
	}
	_, err = f.c.Rename(f.ctx, a, "f", b, "g")
	wantStatus(t, err, proto.ErrNoEnt)
	// Over a non-empty directory / a directory into its own child.
	f.create(t, b, "other", "")
	f.mkdir(t, a, "sub", 0o755)
	_, err = f.c.Rename(f.ctx, a, "sub", f.root, "b")
	wantStatus(t, err, proto.ErrNotEmpty)
	_, err = f.c.Rename(f.ctx, f.root, "a", a, "inside")
	wantStatus(t, err, proto.ErrInval)
	// A file over a directory.
	_, err = f.c.Rename(f.ctx, b, "g", a, "sub")
	wantStatus(t, err, proto.ErrIsDir)
	_, err = f.c.Rename(f.ctx, b, "g", fh, "x")
	wantStatus(t, err, proto.ErrNotDir)
}

// TestExclusiveCreateVerifierEnds: an exclusive CREATE's verifier answers
// a retransmission of that create only until the file changes. After the
// SETATTR a client sends once its exclusive create succeeded (or a WRITE),
// the same verifier gets NFS3ERR_EXIST, as from Linux's nfsd and
// nfs-ganesha; regionfs answered OK for as long as the file lived.
func TestExclusiveCreateVerifierEnds(t *testing.T) {
	f := newFixture(t, envOpt{})
	v := [8]byte{8, 7, 6, 5, 4, 3, 2, 1}
	for _, change := range []struct {
		name string
		do   func(fh proto.FH) error
	}{
		{"setattr", func(fh proto.FH) error {
			_, err := f.c.SetAttr(f.ctx, fh, proto.Sattr{Mode: ptr(uint32(0o600)), Mtime: proto.SetTime{How: proto.SetToServerTime}}, nil)
			return err
		}},
		{"write", func(fh proto.FH) error {
			_, err := f.c.Write(f.ctx, fh, 0, []byte("x"), proto.FileSync)
			return err
		}},
	} {
		e1, err := f.c.CreateExclusive(f.ctx, f.root, change.name, v)
		if err != nil {
			t.Fatal(err)
		}
		if e2, err := f.c.CreateExclusive(f.ctx, f.root, change.name, v); err != nil || !bytes.Equal(e1.FH, e2.FH) {
			t.Fatalf("%s: retransmission before the change: %v", change.name, err)
		}
		if err := change.do(e1.FH); err != nil {
			t.Fatal(err)
		}
		_, err = f.c.CreateExclusive(f.ctx, f.root, change.name, v)
		wantStatus(t, err, proto.ErrExist)
	}
}

func TestProcLink(t *testing.T) {
	f := newFixture(t, envOpt{})
	fh := f.create(t, f.root, "f", "data")
	d := f.mkdir(t, f.root, "d", 0o755)
	r, err := f.c.Link(f.ctx, fh, d, "hard")
	if err != nil || r.Attr == nil || r.Attr.Nlink != 2 || r.DirWcc.Before == nil || r.DirWcc.After == nil {
		t.Fatalf("link %+v %v", r, err)
	}
	if got := f.lookup(t, d, "hard"); !bytes.Equal(got.FH, fh) {
		t.Fatal("hard link has another handle")
	}
	_, err = f.c.Link(f.ctx, fh, d, "hard")
	wantStatus(t, err, proto.ErrExist)
	_, err = f.c.Link(f.ctx, d, f.root, "dirlink")
	if !errors.Is(err, proto.ErrIsDir) && !errors.Is(err, proto.ErrPerm) && !errors.Is(err, proto.ErrInval) {
		t.Fatalf("link of a directory: %v", err)
	}
	_, err = f.c.Link(f.ctx, fh, fh, "x")
	wantStatus(t, err, proto.ErrNotDir)
	f.c.Remove(f.ctx, f.root, "f")
	rd, err := f.c.Read(f.ctx, fh, 0, 10)
	if err != nil || string(rd.Data) != "data" {
		t.Fatalf("read through the remaining link: %q %v", rd.Data, err)
	}
}

func TestProcReadDir(t *testing.T) {
	f := newFixture(t, envOpt{})
	d := f.mkdir(t, f.root, "d", 0o755)
	want := map[string]bool{}
	for i := range 300 {
		name := "file-" + strings.Repeat("x", i%40) + "-" + string(rune('a'+i%26)) + "-" + strconv.Itoa(i)
		f.create(t, d, name, "")
		want[name] = true
	}
	for _, plus := range []bool{false, true} {
		seen := map[string]int{}
		var cookie uint64
		var verf [8]byte
		pages := 0
		for {
			var ents []proto.DirEntry
			var eof bool
			var v [8]byte
			if plus {
				r, err := f.c.ReadDirPlus(f.ctx, d, cookie, verf, 1024, 4096)
				if err != nil {
					t.Fatal(err)
				}
				ents, eof, v = r.Entries, r.EOF, r.Verf
				for _, e := range ents {
					if e.Attr == nil || e.FH == nil || e.Attr.FileID != e.FileID {
						t.Fatalf("entry %q without attributes or handle", e.Name)
					}
				}
			} else {
				r, err := f.c.ReadDir(f.ctx, d, cookie, verf, 2048)
				if err != nil {
					t.Fatal(err)
				}
				ents, eof, v = r.Entries, r.EOF, r.Verf
			}
			pages++
			for _, e := range ents {
				seen[e.Name]++
			}
			if eof {
				break
			}
			cookie, verf = ents[len(ents)-1].Cookie, v
		}
		if pages < 3 {
			t.Fatalf("plus=%v: only %d pages", plus, pages)
		}
		if seen["."] != 1 || seen[".."] != 1 {
			t.Fatalf("plus=%v: . %d .. %d", plus, seen["."], seen[".."])
		}
		for n := range want {
			if seen[n] != 1 {
				t.Fatalf("plus=%v: %q listed %d times", plus, n, seen[n])
			}
		}
		if len(seen) != len(want)+2 {
			t.Fatalf("plus=%v: %d names", plus, len(seen))
		}
	}
	// Errors: a file, a bad cookie, a wrong verifier, too small a count.
	fh := f.lookup(t, d, "file--a-0").FH
	_, err := f.c.ReadDir(f.ctx, fh, 0, [8]byte{}, 4096)
	wantStatus(t, err, proto.ErrNotDir)
	_, err = f.c.ReadDir(f.ctx, d, 1<<40, [8]byte{}, 4096)
	wantStatus(t, err, proto.ErrBadCookie)
	_, err = f.c.ReadDir(f.ctx, d, 5, [8]byte{0xff}, 4096)
	wantStatus(t, err, proto.ErrBadCookie)
	_, err = f.c.ReadDirPlus(f.ctx, d, 0, [8]byte{}, 10, 100)
	wantStatus(t, err, proto.ErrTooSmall)
	// No read permission.
	f.c.SetAttr(f.ctx, d, proto.Sattr{Mode: ptr(uint32(0o711))}, nil)
	_, err = f.dialAs(1000, 1000).ReadDir(f.ctx, d, 0, [8]byte{}, 4096)
	wantStatus(t, err, proto.ErrAcces)
}

func TestProcFSStatFSInfoPathConf(t *testing.T) {
	f := newFixture(t, envOpt{})
	f.create(t, f.root, "f", "some data")
	st, err := f.c.FSStat(f.ctx, f.root)
	if err != nil || st.TBytes == 0 || st.ABytes == 0 || st.TFiles == 0 || st.Attr == nil {
		t.Fatalf("fsstat %+v %v", st, err)
	}
	fi, err := f.c.FSInfo(f.ctx, f.root)
	if err != nil || fi.RTMax != 1<<20 || fi.WTMax != 1<<20 || fi.WTPref != 1<<20 || fi.TimeDelta != (proto.Time{Nsec: 1}) {
		t.Fatalf("fsinfo %+v %v", fi, err)
	}
	if fi.Properties != proto.FSFLink|proto.FSFSymlink|proto.FSFHomogeneous|proto.FSFCanSetTime {
		t.Fatalf("properties %#x", fi.Properties)
	}
	pc, err := f.c.PathConf(f.ctx, f.root)
	if err != nil || pc.NameMax != 255 || !pc.NoTrunc || pc.CaseInsensitive || !pc.CasePreserving || pc.LinkMax == 0 {
		t.Fatalf("pathconf %+v %v", pc, err)
	}
	bad := append(proto.FH(nil), f.root...)
	bad[60] ^= 1
	for _, call := range []func() error{
		func() error { _, err := f.c.FSStat(f.ctx, bad); return err },
		func() error { _, err := f.c.FSInfo(f.ctx, bad); return err },
		func() error { _, err := f.c.PathConf(f.ctx, bad); return err },
	} {
		wantStatus(t, call(), proto.ErrBadHandle)
	}
}

func TestProcCommitUnstable(t *testing.T) {
	f := newFixture(t, envOpt{})
	fh := f.create(t, f.root, "f", "")
	w, err := f.c.Write(f.ctx, fh, 0, []byte("buffered"), proto.Unstable)
	if err != nil || w.Committed != proto.Unstable || w.Wcc.After.Size != 8 {
		t.Fatalf("unstable %+v %v", w, err)
	}
	// Visible before COMMIT (read-your-writes), in GETATTR and READ.
	g, _ := f.c.GetAttr(f.ctx, fh)
	if g.Attr.Size != 8 {
		t.Fatalf("size before commit %d", g.Attr.Size)
	}
	rd, _ := f.c.Read(f.ctx, fh, 0, 100)
	if string(rd.Data) != "buffered" || !rd.EOF {
		t.Fatalf("read before commit %q", rd.Data)
	}
	c, err := f.c.Commit(f.ctx, fh, 0, 0)
	if err != nil || c.Verf != w.Verf || c.Wcc.After == nil || c.Wcc.After.Size != 8 {
		t.Fatalf("commit %+v %v", c, err)
	}
	// Durable in the engine after COMMIT.
	at, err := f.fs.GetAttr(f.ctx, f.lookup(t, f.root, "f").Attr.FileID)
	if err != nil || at.Size != 8 {
		t.Fatalf("engine size %d %v", at.Size, err)
	}
	_, err = f.c.Commit(f.ctx, f.root, 0, 0)
	wantStatus(t, err, proto.ErrIsDir)
}

func TestProcUnknown(t *testing.T) {
	f := newFixture(t, envOpt{})
	_, err := f.c.CallRaw(f.ctx, rpcHeader(proto.ProgNFS, 3, 22), nil)
	wantReplyError(t, err, "PROC_UNAVAIL")
	_, err = f.c.CallRaw(f.ctx, rpcHeader(proto.ProgNFS, 2, 0), nil)
	wantReplyError(t, err, "PROG_MISMATCH (versions 3-3)")
	_, err = f.c.CallRaw(f.ctx, rpcHeader(proto.ProgNFSACL, 3, 0), nil)
	wantReplyError(t, err, "PROG_UNAVAIL")
	_, err = f.c.CallRaw(f.ctx, rpcHeader(proto.ProgNFS, 3, proto.ProcGetAttr), []byte{0, 0, 0, 70})
	wantReplyError(t, err, "GARBAGE_ARGS")
}
