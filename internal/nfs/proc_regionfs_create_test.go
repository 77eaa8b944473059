package nfs

import (
	"bytes"
	"testing"

	"github.com/regionfs/regionfs/internal/nfs/client"
	"github.com/regionfs/regionfs/internal/nfs/proto"
)

// TestProcRegionFSCreate: REGIONFS_CREATE makes the file with the mode it
// carries (another client reads it at once: an NFSv3 EXCLUSIVE CREATE's
// file is mode 0 until a SETATTR), and its verifier, kept apart from the
// attributes, answers the same call again with the same file until the
// file changes; another verifier, or anyone after a change, gets EXIST.
// A retransmission with the call's XID is answered from the duplicate
// request cache, and a size is refused.
func TestProcRegionFSCreate(t *testing.T) {
	f := newFixture(t, envOpt{})
	v := [8]byte{1, 2, 3, 4, 5, 6, 7, 8}
	mode := proto.Sattr{Mode: ptr(uint32(0o644))}
	e1, err := f.c.CreateExclusiveAttrs(f.ctx, f.root, "x", v, mode)
	if err != nil {
		t.Fatal(err)
	}
	if e1.Attr == nil || e1.Attr.Mode != 0o644 || e1.Attr.Type != proto.TypeReg {
		t.Fatalf("made %+v, want a regular file of mode 0644", e1.Attr)
	}
	// Another client, another user, reads it at once.
	if _, err := f.dialAs(4321, 4321).Read(f.ctx, e1.FH, 0, 10); err != nil {
		t.Fatalf("another user reading the file: %v", err)
	}
	e2, err := f.c.CreateExclusiveAttrs(f.ctx, f.root, "x", v, mode)
	if err != nil || !bytes.Equal(e1.FH, e2.FH) || e2.Attr.Mode != 0o644 {
		t.Fatalf("the same create again: %+v, %v; want the same file", e2, err)
	}
	_, err = f.c.CreateExclusiveAttrs(f.ctx, f.root, "x", [8]byte{9}, mode)
	wantStatus(t, err, proto.ErrExist)
	_, err = f.c.CreateExclusive(f.ctx, f.root, "x", [8]byte{9})
	wantStatus(t, err, proto.ErrExist)
	if _, err := f.c.Write(f.ctx, e1.FH, 0, []byte("x"), proto.FileSync); err != nil {
		t.Fatal(err)
	}
	_, err = f.c.CreateExclusiveAttrs(f.ctx, f.root, "x", v, mode)
	wantStatus(t, err, proto.ErrExist)

	_, err = f.c.CreateExclusiveAttrs(f.ctx, f.root, "sized", v, proto.Sattr{Mode: ptr(uint32(0o644)), Size: ptr(uint64(0))})
	wantStatus(t, err, proto.ErrInval)

	// A retransmission (same XID and arguments, a new connection) gets
	// the first reply, even once the file changed.
	unix := client.Unix("t", 0, 0)
	call := rawCall(2000, proto.ProgRegionFS, proto.VersRegionFS, proto.ProcRegionFSCreate, unix,
		&proto.ExclusiveCreateArgs{Where: proto.DirOp{Dir: f.root, Name: "dup"}, Verf: [8]byte{7}, Attr: mode})
	c1 := f.rawDial(t)
	c1.send(call)
	first := c1.reply()
	var res proto.CreateRes
	decodeStatus(t, first, &res)
	if res.Status != proto.OK {
		t.Fatalf("first REGIONFS_CREATE: %v", res.Status)
	}
	if _, err := f.c.Write(f.ctx, res.FH, 0, []byte("x"), proto.FileSync); err != nil {
		t.Fatal(err)
	}
	c1.nc.Close()
	c2 := f.rawDial(t)
	c2.send(call)
	if again := c2.reply(); !bytes.Equal(first, again) {
		decodeStatus(t, again, &res)
		t.Fatalf("retransmission answered %v, not the first reply", res.Status)
	}

	// An NFSv3 EXCLUSIVE CREATE still makes a private file (mode 0).
	e3, err := f.c.CreateExclusive(f.ctx, f.root, "v3", v)
	if err != nil || e3.Attr == nil || e3.Attr.Mode != 0 {
		t.Fatalf("NFSv3 EXCLUSIVE CREATE: %+v, %v; want mode 0", e3, err)
	}
}
