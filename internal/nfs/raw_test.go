package nfs

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/regionfs/regionfs/internal/nfs/client"
	"github.com/regionfs/regionfs/internal/nfs/proto"
	"github.com/regionfs/regionfs/internal/nfs/rpc"
	"github.com/regionfs/regionfs/internal/nfs/xdr"
)

// rawCall encodes a complete call record with a chosen XID.
func rawCall(xid, prog, vers, proc uint32, cred rpc.OpaqueAuth, args proto.Message) []byte {
	e := xdr.NewEncoder(nil)
	e.Reserve(rpc.RecordHeaderSize)
	h := rpc.CallHeader{XID: xid, Prog: prog, Vers: vers, Proc: proc, Cred: cred}
	h.Encode(e)
	if args != nil {
		args.Encode(e)
	}
	b := e.Bytes()
	rpc.FinishRecord(b)
	return b
}

// rawConn is a plain TCP connection to the server.
type rawConn struct {
	t  *testing.T
	nc net.Conn
}

func (v *testEnv) rawDial(t *testing.T) *rawConn {
	t.Helper()
	nc, err := net.DialTimeout("tcp", v.addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return &rawConn{t: t, nc: nc}
}

func (r *rawConn) send(b []byte) {
	r.t.Helper()
	if _, err := r.nc.Write(b); err != nil {
		r.t.Fatal(err)
	}
}

// reply reads one reply record.
func (r *rawConn) reply() []byte {
	r.t.Helper()
	_ = r.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	rec, err := rpc.ReadRecord(r.nc, nil, 4<<20)
	if err != nil {
		r.t.Fatalf("reading a reply: %v", err)
	}
	return rec
}

// closed checks that the server closes the connection without replying.
func (r *rawConn) closed() {
	r.t.Helper()
	_ = r.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	var b [1]byte
	n, err := r.nc.Read(b[:])
	if n != 0 || err == nil || err != io.EOF && !isReset(err) {
		r.t.Fatalf("connection still open: read %d bytes, %v", n, err)
	}
}

func isReset(err error) bool {
	var ne *net.OpError
	return errors.As(err, &ne) && !ne.Timeout()
}

func acceptStat(t *testing.T, rec []byte) rpc.AcceptStat {
	t.Helper()
	_, _, err := rpc.ParseReply(rec)
	if err == nil {
		return rpc.Success
	}
	re, ok := err.(*rpc.ReplyError)
	if !ok || !re.Accepted {
		t.Fatalf("reply %v", err)
	}
	return re.AcceptStat
}

// TestBadInput sends malformed records; each gets the right RPC error or
// a closed connection, and the server keeps serving another client.
func TestBadInput(t *testing.T) {
	v := newEnv(t, envOpt{})
	good := v.dial()
	ctx := context.Background()
	alive := func() {
		t.Helper()
		if err := good.Null(ctx, proto.ProgNFS, proto.VersNFS); err != nil {
			t.Fatalf("server stopped serving: %v", err)
		}
	}
	unix := client.Unix("t", 0, 0)
	t.Run("garbage", func(t *testing.T) {
		r := v.rawDial(t)
		r.send([]byte("\x80\x00\x00\x28garbage-garbage-garbage-garbage-garbage!"))
		r.closed()
		alive()
	})
	t.Run("not a record", func(t *testing.T) {
		r := v.rawDial(t)
		r.send([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
		r.closed()
		alive()
	})
	t.Run("truncated record", func(t *testing.T) {
		r := v.rawDial(t)
		rec := rawCall(1, proto.ProgNFS, 3, 0, unix, nil)
		r.send(rec[:len(rec)-5])
		r.nc.(*net.TCPConn).CloseWrite()
		r.closed()
		alive()
	})
	t.Run("2 GiB record", func(t *testing.T) {
		r := v.rawDial(t)
		r.send([]byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 1})
		r.closed()
		alive()
	})
	t.Run("over the maximum in fragments", func(t *testing.T) {
		r := v.rawDial(t)
		frag := make([]byte, 4+1<<20)
		binary.BigEndian.PutUint32(frag, 1<<20) // not last
		for range 2 {
			if _, err := r.nc.Write(frag); err != nil {
				break // the server may close before the second
			}
		}
		r.closed()
		alive()
	})
	t.Run("truncated call header", func(t *testing.T) {
		r := v.rawDial(t)
		r.send([]byte{0x80, 0, 0, 12, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 2})
		if st := acceptStat(t, r.reply()); st != rpc.GarbageArgs {
			t.Fatalf("status %v", st)
		}
		alive()
	})
	t.Run("rpc version 3", func(t *testing.T) {
		r := v.rawDial(t)
		rec := rawCall(9, proto.ProgNFS, 3, 0, unix, nil)
		binary.BigEndian.PutUint32(rec[4+8:], 3)
		r.send(rec)
		_, _, err := rpc.ParseReply(r.reply())
		if re, ok := err.(*rpc.ReplyError); !ok || !re.Mismatch || re.Low != 2 || re.High != 2 {
			t.Fatalf("reply %v", err)
		}
	})
	t.Run("bad credentials", func(t *testing.T) {
		r := v.rawDial(t)
		for _, cred := range []rpc.OpaqueAuth{
			rpc.UnixCred{MachineName: "x", GIDs: make([]uint32, 17)}.Auth(), // 17 groups
			{Flavor: rpc.AuthUnix, Body: []byte{0, 0, 0, 1}},                // truncated
			{Flavor: 6, Body: nil},                                          // RPCSEC_GSS
		} {
			r.send(rawCall(10, proto.ProgNFS, 3, 0, cred, nil))
			_, _, err := rpc.ParseReply(r.reply())
			if re, ok := err.(*rpc.ReplyError); !ok || re.Accepted || re.AuthStat != rpc.AuthBadCred {
				t.Fatalf("reply %v", err)
			}
		}
		// Sixteen groups are fine.
		r.send(rawCall(11, proto.ProgNFS, 3, 0, rpc.UnixCred{MachineName: "x", GIDs: make([]uint32, 16)}.Auth(), nil))
		if st := acceptStat(t, r.reply()); st != rpc.Success {
			t.Fatalf("16 groups: %v", st)
		}
	})
	t.Run("unknown program version procedure", func(t *testing.T) {
		r := v.rawDial(t)
		for _, c := range []struct {
			prog, vers, proc uint32
			want             rpc.AcceptStat
		}{
			{123456, 1, 0, rpc.ProgUnavail},
			{proto.ProgNLM, 4, 0, rpc.ProgUnavail},
			{proto.ProgNFS, 4, 0, rpc.ProgMismatch},
			{proto.ProgMount, 1, 0, rpc.ProgMismatch},
			{proto.ProgNFS, 3, 99, rpc.ProcUnavail},
			{proto.ProgMount, 3, 6, rpc.ProcUnavail},
			{proto.ProgNFS, 3, proto.ProcGetAttr, rpc.GarbageArgs}, // no arguments
		} {
			r.send(rawCall(12, c.prog, c.vers, c.proc, unix, nil))
			if st := acceptStat(t, r.reply()); st != c.want {
				t.Fatalf("%d/%d/%d: %v, want %v", c.prog, c.vers, c.proc, st, c.want)
			}
		}
		alive()
	})
	t.Run("multi-fragment call", func(t *testing.T) {
		r := v.rawDial(t)
		rec := rawCall(13, proto.ProgNFS, 3, 0, unix, nil)
		body := rec[4:]
		var out []byte
		for i := 0; i < len(body); i += 8 {
			n := min(8, len(body)-i)
			h := uint32(n)
			if i+n == len(body) {
				h |= 1 << 31
			}
			out = binary.BigEndian.AppendUint32(out, h)
			out = append(out, body[i:i+n]...)
		}
		r.send(out)
		if st := acceptStat(t, r.reply()); st != rpc.Success {
			t.Fatalf("status %v", st)
		}
	})
	t.Run("a reply sent to the server", func(t *testing.T) {
		r := v.rawDial(t)
		e := xdr.NewEncoder(nil)
		e.Reserve(4)
		rpc.AppendAccepted(e, 5, rpc.Success)
		b := e.Bytes()
		rpc.FinishRecord(b)
		r.send(b)
		r.closed()
		alive()
	})
}
