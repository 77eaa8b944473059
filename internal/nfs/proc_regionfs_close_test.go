package nfs

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/regionfs/regionfs/internal/nfs/client"
	"github.com/regionfs/regionfs/internal/nfs/proto"
)

// TestProcRegionFSClose: REGIONFS_CLOSE writes a small file's data, then
// sets its times and mode (the mtime set stays: the data lands first),
// then commits, with the three results a WRITE UNSTABLE, a SETATTR and a
// COMMIT would have — and costs what those three cost, two durable
// commits per file with the CREATE's. A change the caller may not make
// fails alone: the data is still written and committed.
func TestProcRegionFSClose(t *testing.T) {
	f := newFixture(t, envOpt{})
	dir := f.mkdir(t, f.root, "d", 0o777)
	const files = 10
	mtime := proto.TimeOf(time.Unix(1_600_000_000, 5000))
	mode := uint32(0o600)
	sattr := proto.Sattr{Mode: &mode, Atime: proto.SetTime{How: proto.SetToClientTime, Time: mtime}, Mtime: proto.SetTime{How: proto.SetToClientTime, Time: mtime}}
	commits := f.fs.Stats().Commits
	for i := range files {
		r, err := f.c.Create(f.ctx, dir, fmt.Sprintf("f%d", i), proto.Guarded, proto.Sattr{Mode: ptr(uint32(0o644))})
		if err != nil {
			t.Fatal(err)
		}
		data := bytes.Repeat([]byte{byte(i)}, 100+i*700)
		res, err := f.c.CloseFile(f.ctx, r.FH, 0, data, proto.Unstable, sattr)
		if err != nil {
			t.Fatal(err)
		}
		if w := res.Write; w.Status != proto.OK || int(w.Count) != len(data) || w.Committed != proto.Unstable {
			t.Fatalf("file %d: the WRITE part answered %+v", i, w)
		}
		if a := res.SetAttr.Wcc.After; res.SetAttr.Status != proto.OK || a == nil || a.Size != uint64(len(data)) || a.Mtime != mtime || a.Mode&0o7777 != mode {
			t.Fatalf("file %d: the SETATTR part answered %v %+v; want size %d, mtime %v, mode %o", i, res.SetAttr.Status, a, len(data), mtime, mode)
		}
		if c := res.Commit; c.Status != proto.OK || c.Verf != res.Write.Verf || c.Wcc.After == nil || c.Wcc.After.Mtime != mtime {
			t.Fatalf("file %d: the COMMIT part answered %+v (WRITE's verifier %x)", i, c, res.Write.Verf)
		}
		rd, err := f.c.Read(f.ctx, r.FH, 0, uint32(len(data)+10))
		if err != nil || !bytes.Equal(rd.Data, data) {
			t.Fatalf("file %d reads %d bytes, %v; want %d", i, len(rd.Data), err, len(data))
		}
	}
	if got := f.fs.Stats().Commits - commits; got != 2*files {
		t.Errorf("%d small files (CREATE, REGIONFS_CLOSE) took %d durable commits, want %d", files, got, 2*files)
	}

	// Another user may write the file (0666) but not change its mode.
	r, err := f.c.Create(f.ctx, dir, "shared", proto.Guarded, proto.Sattr{Mode: ptr(uint32(0o666))})
	if err != nil {
		t.Fatal(err)
	}
	data := []byte("written by another user")
	res, err := f.dialAs(1000, 1000).CloseFile(f.ctx, r.FH, 0, data, proto.Unstable, proto.Sattr{Mode: &mode})
	if err != nil {
		t.Fatal(err)
	}
	if res.Write.Status != proto.OK || res.SetAttr.Status != proto.ErrPerm || res.Commit.Status != proto.OK {
		t.Fatalf("REGIONFS_CLOSE by a non-owner changing the mode: WRITE %v, SETATTR %v, COMMIT %v; want OK, NFS3ERR_PERM, OK",
			res.Write.Status, res.SetAttr.Status, res.Commit.Status)
	}
	if rd, err := f.c.Read(f.ctx, r.FH, 0, 100); err != nil || !bytes.Equal(rd.Data, data) {
		t.Fatalf("the file reads %q, %v; want %q", rd.Data, err, data)
	}
	if a := f.attr(t, r.FH); a.Mode&0o7777 != 0o666 {
		t.Fatalf("mode %o after a refused change, want 0666", a.Mode&0o7777)
	}

}

// TestProcRegionFSCloseOrdered: a REGIONFS_CLOSE sent right behind a
// WRITE UNSTABLE of the same file (which the test makes slow) runs after
// it, as a SETATTR and a COMMIT sent there would (orderGate): the file
// holds both writes' data, the mtime the close sets stays, and the
// close's COMMIT covers the earlier WRITE too. Without the gate the close
// runs during the slow WRITE, whose data then moves mtime on.
func TestProcRegionFSCloseOrdered(t *testing.T) {
	f := newFixture(t, envOpt{})
	f.srv.testHook = func(r *request) {
		if r.h.Prog == proto.ProgNFS && r.h.Proc == proto.ProcWrite {
			time.Sleep(30 * time.Millisecond) // the delay this hook exists to add
		}
	}
	fh := f.create(t, f.root, "f", "")
	mtime := proto.TimeOf(time.Unix(1_500_000_000, 0))
	first, second := bytes.Repeat([]byte{'a'}, 1000), bytes.Repeat([]byte{'b'}, 500)
	unix := client.Unix("t", 0, 0)
	c := f.rawDial(t)
	c.send(append(
		rawCall(3000, proto.ProgNFS, proto.VersNFS, proto.ProcWrite, unix,
			&proto.WriteArgs{FH: fh, Count: uint32(len(first)), Stable: proto.Unstable, Data: first}),
		rawCall(3001, proto.ProgRegionFS, proto.VersRegionFS, proto.ProcRegionFSClose, unix,
			&proto.CloseArgs{Write: proto.WriteArgs{FH: fh, Offset: 1000, Count: uint32(len(second)), Stable: proto.Unstable, Data: second},
				Attr: proto.Sattr{Mtime: proto.SetTime{How: proto.SetToClientTime, Time: mtime}}})...))
	var res proto.CloseRes
	for range 2 {
		rec := c.reply()
		xid, _, err := rpcParse(rec)
		if err != nil {
			t.Fatal(err)
		}
		if xid == 3001 {
			decodeStatus(t, rec, &res)
		}
	}
	if res.Write.Status != proto.OK || res.SetAttr.Status != proto.OK || res.Commit.Status != proto.OK {
		t.Fatalf("REGIONFS_CLOSE: WRITE %v, SETATTR %v, COMMIT %v", res.Write.Status, res.SetAttr.Status, res.Commit.Status)
	}
	if a := res.SetAttr.Wcc.After; a == nil || a.Size != 1500 || a.Mtime != mtime {
		t.Fatalf("the close's SETATTR answered %+v; want size 1500, mtime %v (run after the WRITE before it)", a, mtime)
	}
	if a := f.attr(t, fh); a.Size != 1500 || a.Mtime != mtime {
		t.Fatalf("the file is %+v; want size 1500, mtime %v", a, mtime)
	}
	rd, err := f.c.Read(f.ctx, fh, 0, 2000)
	if err != nil || !bytes.Equal(rd.Data, append(first, second...)) {
		t.Fatalf("the file reads %d bytes, %v", len(rd.Data), err)
	}
}

func (f *fixture) attr(t *testing.T, fh proto.FH) proto.Attr {
	t.Helper()
	r, err := f.c.GetAttr(f.ctx, fh)
	if err != nil {
		t.Fatal(err)
	}
	return r.Attr
}
