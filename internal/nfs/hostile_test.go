package nfs

import (
	"bytes"
	"encoding/binary"
	"math"
	"testing"

	"github.com/regionfs/regionfs/internal/nfs/client"
	"github.com/regionfs/regionfs/internal/nfs/proto"
	"github.com/regionfs/regionfs/internal/nfs/rpc"
	"github.com/regionfs/regionfs/internal/nfs/xdr"
)

// TestAbsurdCounts: calls whose counts are absurd (sent raw: the client
// bounds its own) get an NFS error or a bounded answer, change nothing,
// and the server goes on serving the connection: a READ of 4 GiB answers
// at most rtmax bytes, a READDIR(PLUS) of count 0 NFS3ERR_TOOSMALL and of
// 4 GiB at most rtmax bytes, a WRITE whose data is shorter than its count
// NFS3ERR_INVAL (the file unchanged), and a WRITE whose data's length
// runs past the record GARBAGE_ARGS.
func TestAbsurdCounts(t *testing.T) {
	f := newFixture(t, envOpt{})
	content := bytes.Repeat([]byte("c"), 3<<20) // more than rtmax
	fh := f.create(t, f.root, "f", "")
	if _, err := f.c.Write(f.ctx, fh, 0, content, proto.FileSync); err != nil {
		t.Fatal(err)
	}
	for i := range 40 {
		f.create(t, f.root, "e"+string(rune('a'+i%26))+string(rune('a'+i/26)), "")
	}
	before := f.attr(t, fh)
	r := f.rawDial(t)
	unix := client.Unix("t", 0, 0)
	xid := uint32(100)
	call := func(proc uint32, args proto.Message, res proto.Message) rpc.AcceptStat {
		t.Helper()
		xid++
		r.send(rawCall(xid, proto.ProgNFS, proto.VersNFS, proc, unix, args))
		rec := r.reply()
		if len(rec) > int(f.srv.maxIO)+64<<10 {
			t.Fatalf("procedure %d: a reply of %d bytes, rtmax %d", proc, len(rec), f.srv.maxIO)
		}
		_, body, err := rpc.ParseReply(rec)
		if err != nil {
			return acceptStat(t, rec)
		}
		d := xdr.NewDecoder(body)
		res.Decode(d)
		if err := d.Done(); err != nil {
			t.Fatalf("procedure %d: reply: %v", proc, err)
		}
		return rpc.Success
	}
	wantOK := func(what string, st rpc.AcceptStat) {
		t.Helper()
		if st != rpc.Success {
			t.Fatalf("%s: %v", what, st)
		}
	}

	var rd proto.ReadRes
	wantOK("READ of 4 GiB", call(proto.ProcRead, &proto.ReadArgs{FH: fh, Count: math.MaxUint32}, &rd))
	if rd.Status != proto.OK || len(rd.Data) != int(f.srv.maxIO) || rd.EOF || !bytes.Equal(rd.Data, content[:len(rd.Data)]) {
		t.Errorf("READ of 4 GiB: %v, %d bytes, eof %v; want rtmax (%d) of the file's", rd.Status, len(rd.Data), rd.EOF, f.srv.maxIO)
	}
	rd = proto.ReadRes{}
	wantOK("READ of 0", call(proto.ProcRead, &proto.ReadArgs{FH: fh, Offset: 5, Count: 0}, &rd))
	if rd.Status != proto.OK || len(rd.Data) != 0 {
		t.Errorf("READ of 0 bytes: %v, %d bytes", rd.Status, len(rd.Data))
	}
	for _, c := range []struct {
		name               string
		count, dirCount    uint32
		plus               bool
		wantSt             proto.Status
		wantSomeAndBounded bool
	}{
		{"READDIR count 0", 0, 0, false, proto.ErrTooSmall, false},
		{"READDIR count 4 GiB", math.MaxUint32, 0, false, proto.OK, true},
		{"READDIRPLUS maxcount 0", 0, 0, true, proto.ErrTooSmall, false},
		{"READDIRPLUS dircount 0", 64 << 10, 0, true, proto.OK, true},
		{"READDIRPLUS counts 4 GiB", math.MaxUint32, math.MaxUint32, true, proto.OK, true},
	} {
		var st proto.Status
		var n int
		if c.plus {
			var res proto.ReadDirPlusRes
			wantOK(c.name, call(proto.ProcReadDirPlus, &proto.ReadDirPlusArgs{FH: f.root, DirCount: c.dirCount, MaxCount: c.count}, &res))
			st, n = res.Status, len(res.Entries)
		} else {
			var res proto.ReadDirRes
			wantOK(c.name, call(proto.ProcReadDir, &proto.ReadDirArgs{FH: f.root, Count: c.count}, &res))
			st, n = res.Status, len(res.Entries)
		}
		if st != c.wantSt || c.wantSomeAndBounded && n == 0 {
			t.Errorf("%s: %v with %d entries, want %v", c.name, st, n, c.wantSt)
		}
	}
	for _, stable := range []proto.StableHow{proto.Unstable, proto.FileSync} {
		var w proto.WriteRes
		wantOK("WRITE short of its count", call(proto.ProcWrite, &proto.WriteArgs{FH: fh, Offset: 1, Count: 4096, Stable: stable, Data: []byte("xx")}, &w))
		if w.Status != proto.ErrInval {
			t.Errorf("WRITE (%v) of 2 bytes with count 4096: %v, want NFS3ERR_INVAL", stable, w.Status)
		}
		w = proto.WriteRes{}
		wantOK("WRITE of count 4 GiB", call(proto.ProcWrite, &proto.WriteArgs{FH: fh, Offset: 1, Count: math.MaxUint32, Stable: stable, Data: []byte("yy")}, &w))
		if w.Status != proto.ErrInval {
			t.Errorf("WRITE (%v) of 2 bytes with count 4 GiB: %v, want NFS3ERR_INVAL", stable, w.Status)
		}
	}
	// A WRITE whose data announces more bytes than the record holds.
	e := xdr.NewEncoder(nil)
	e.Reserve(rpc.RecordHeaderSize)
	xid++
	h := rpc.CallHeader{XID: xid, Prog: proto.ProgNFS, Vers: proto.VersNFS, Proc: proto.ProcWrite, Cred: unix}
	h.Encode(e)
	(&proto.WriteArgs{FH: fh, Offset: 1, Count: 2, Stable: proto.FileSync}).EncodeHead(e)
	b := e.Bytes()
	binary.BigEndian.PutUint32(b[len(b)-4:], 1<<20) // data: 1 MiB announced, 4 bytes sent
	b = append(b, "zzzz"...)
	rpc.FinishRecord(b)
	r.send(b)
	if st := acceptStat(t, r.reply()); st != rpc.GarbageArgs {
		t.Errorf("WRITE whose data runs past its record: %v, want GARBAGE_ARGS", st)
	}
	// Nothing changed, and the connection is still served.
	if _, err := f.c.Commit(f.ctx, fh, 0, 0); err != nil {
		t.Fatal(err)
	}
	after := f.attr(t, fh)
	if after.Size != before.Size || after.Mtime != before.Mtime || after.Ctime != before.Ctime {
		t.Errorf("the file changed: size %d mtime %v ctime %v, was %d %v %v", after.Size, after.Mtime, after.Ctime, before.Size, before.Mtime, before.Ctime)
	}
	rd = proto.ReadRes{}
	wantOK("READ after", call(proto.ProcRead, &proto.ReadArgs{FH: fh, Count: 16}, &rd))
	if rd.Status != proto.OK || !bytes.Equal(rd.Data, content[:16]) {
		t.Errorf("the file's first bytes after the absurd calls: %q %v", rd.Data, rd.Status)
	}
}
