package client

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/regionfs/regionfs/internal/nfs/proto"
	"github.com/regionfs/regionfs/internal/nfs/rpc"
	"github.com/regionfs/regionfs/internal/nfs/xdr"
)

// sizeServer answers FSINFO with rtmax and wtmax, and WRITE, READ,
// READDIR, READDIRPLUS and REGIONFS_CLOSE in full, and sends what each
// call asked for (its procedure and count) on seen.
func sizeServer(t *testing.T, nc net.Conn, rtmax, wtmax uint32, seen chan<- [2]uint32) {
	t.Helper()
	go func() {
		for {
			rec, err := rpc.ReadRecord(nc, nil, 4<<20)
			if err != nil {
				return
			}
			h, args, err := rpc.ParseCall(rec)
			if err != nil {
				return
			}
			d := xdr.NewDecoder(args)
			var res proto.Message
			var count uint32
			switch {
			case h.Prog == proto.ProgRegionFS && h.Proc == proto.ProcRegionFSClose:
				var a proto.CloseArgs
				a.Decode(d)
				count = uint32(len(a.Write.Data))
				res = &proto.CloseRes{Write: proto.WriteRes{Count: count, Committed: proto.Unstable, Verf: [8]byte{2}}}
			case h.Proc == proto.ProcFSInfo:
				res = &proto.FSInfoRes{RTMax: rtmax, WTMax: wtmax}
			case h.Proc == proto.ProcWrite:
				var a proto.WriteArgs
				a.Decode(d)
				count = uint32(len(a.Data))
				res = &proto.WriteRes{Count: count, Committed: proto.FileSync, Verf: [8]byte{byte(a.Offset >> 10)}}
			case h.Proc == proto.ProcRead:
				var a proto.ReadArgs
				a.Decode(d)
				count = a.Count
				res = &proto.ReadRes{Count: count, Data: make([]byte, count)}
			case h.Proc == proto.ProcReadDir:
				var a proto.ReadDirArgs
				a.Decode(d)
				count = a.Count
				res = &proto.ReadDirRes{EOF: true}
			case h.Proc == proto.ProcReadDirPlus:
				var a proto.ReadDirPlusArgs
				a.Decode(d)
				count = max(a.DirCount, a.MaxCount)
				res = &proto.ReadDirPlusRes{EOF: true}
			default:
				return
			}
			seen <- [2]uint32{h.Proc, count}
			e := xdr.NewEncoder(nil)
			e.Reserve(rpc.RecordHeaderSize)
			rpc.AppendAccepted(e, h.XID, rpc.Success)
			res.Encode(e)
			b := e.Bytes()
			rpc.FinishRecord(b)
			if _, err := nc.Write(b); err != nil {
				return
			}
		}
	}()
}

// TestClientSplitsToServerSizes: the client learns the server's sizes
// from FSINFO (asked before the first WRITE larger than smallWriteBytes)
// and sends no WRITE larger than wtmax and asks no READ or READDIR for
// more than rtmax; a REGIONFS_CLOSE larger than wtmax sends its head in
// WRITEs first.
func TestClientSplitsToServerSizes(t *testing.T) {
	cs, ss := net.Pipe()
	defer ss.Close()
	c := NewConn(cs)
	defer c.Close()
	const rtmax, wtmax = 48 << 10, 16 << 10
	seen := make(chan [2]uint32, 64)
	sizeServer(t, ss, rtmax, wtmax, seen)
	cl := c.WithAuth(Unix("t", 0, 0))
	ctx := t.Context()
	var got [][2]uint32
	drain := func() [][2]uint32 {
		got = got[:0]
		for len(seen) > 0 {
			got = append(got, <-seen)
		}
		return got
	}
	if w, err := cl.Write(ctx, proto.FH{1}, 0, make([]byte, 4<<10), proto.FileSync); err != nil || w.Count != 4<<10 {
		t.Fatalf("small WRITE: %+v %v", w, err)
	}
	if diff := cmp.Diff([][2]uint32{{proto.ProcWrite, 4 << 10}}, drain()); diff != "" {
		t.Errorf("a small WRITE with the sizes unknown (-want +got):\n%s", diff)
	}
	w, err := cl.Write(ctx, proto.FH{1}, 0, make([]byte, 40<<10), proto.Unstable)
	if err != nil || w.Count != 40<<10 || w.Committed != proto.FileSync || w.Verf != [8]byte{0} {
		t.Fatalf("large WRITE: %+v %v", w, err)
	}
	want := [][2]uint32{{proto.ProcFSInfo, 0}, {proto.ProcWrite, 16 << 10}, {proto.ProcWrite, 16 << 10}, {proto.ProcWrite, 8 << 10}}
	if diff := cmp.Diff(want, drain()); diff != "" {
		t.Errorf("a 40 KiB WRITE to a server of wtmax 16 KiB (-want +got):\n%s", diff)
	}
	if r, err := cl.Read(ctx, proto.FH{1}, 0, 1<<20); err != nil || len(r.Data) != rtmax {
		t.Fatalf("READ: %d bytes, %v", len(r.Data), err)
	}
	if _, err := cl.ReadDir(ctx, proto.FH{1}, 0, [8]byte{}, 1<<20); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.ReadDirPlus(ctx, proto.FH{1}, 0, [8]byte{}, 1<<20, 8<<20); err != nil {
		t.Fatal(err)
	}
	cr, err := cl.CloseFile(ctx, proto.FH{1}, 0, make([]byte, 40<<10), proto.Unstable, proto.Sattr{})
	if err != nil || cr.Write.Count != 40<<10 || cr.Write.Committed != proto.Unstable || cr.Write.Verf != [8]byte{0} {
		t.Fatalf("REGIONFS_CLOSE: %+v %v", cr.Write, err)
	}
	want = [][2]uint32{{proto.ProcRead, rtmax}, {proto.ProcReadDir, rtmax}, {proto.ProcReadDirPlus, rtmax},
		{proto.ProcWrite, 16 << 10}, {proto.ProcWrite, 8 << 10}, {proto.ProcRegionFSClose, 16 << 10}}
	if diff := cmp.Diff(want, drain()); diff != "" {
		t.Errorf("READ, READDIR, READDIRPLUS of 1 MiB and more, and a REGIONFS_CLOSE of 40 KiB, to a server of rtmax 48 KiB and wtmax 16 KiB (-want +got):\n%s", diff)
	}
}

// TestReplyTooLargeRejected: a call whose reply is larger than the
// client reads (MaxRecordBytes) ends the connection every time; it fails
// with ErrRejected after maxRejects connections although the call itself
// is small, instead of being sent again without end.
func TestReplyTooLargeRejected(t *testing.T) {
	dials := 0
	sess := NewSession(SessionOptions{Logger: slog.New(slog.DiscardHandler), Dial: func(ctx context.Context) (Dialed, error) {
		dials++
		cs, ss := net.Pipe()
		t.Cleanup(func() { ss.Close() })
		sizeServer(t, ss, 8<<20, 8<<20, make(chan [2]uint32, 64))
		return Dialed{Conn: NewConn(cs), Addr: "pipe"}, nil
	}})
	defer sess.Close()
	cl := sess.Client(Unix("t", 0, 0))
	var res proto.ReadRes
	err := cl.Call(t.Context(), proto.ProgNFS, proto.VersNFS, proto.ProcRead, &proto.ReadArgs{FH: proto.FH{1}, Count: MaxRecordBytes + 1}, &res)
	if !errors.Is(err, ErrRejected) {
		t.Fatalf("a READ answered with a record larger than MaxRecordBytes: %v, want ErrRejected", err)
	}
	if dials != maxRejects {
		t.Fatalf("%d connections, want %d", dials, maxRejects)
	}
}
