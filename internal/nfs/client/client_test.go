package client

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/regionfs/regionfs/internal/nfs/proto"
	"github.com/regionfs/regionfs/internal/nfs/rpc"
	"github.com/regionfs/regionfs/internal/nfs/xdr"
)

// fakeServer reads n calls, then answers them in reverse order, each
// reply carrying the call's procedure number as a uint32 result.
func fakeServer(t *testing.T, nc net.Conn, n int) {
	t.Helper()
	go func() {
		var calls []rpc.CallHeader
		for range n {
			rec, err := rpc.ReadRecord(nc, nil, 1<<20)
			if err != nil {
				return
			}
			h, _, err := rpc.ParseCall(rec)
			if err != nil {
				return
			}
			calls = append(calls, h)
		}
		for i := len(calls) - 1; i >= 0; i-- {
			e := xdr.NewEncoder(nil)
			e.Reserve(rpc.RecordHeaderSize)
			rpc.AppendAccepted(e, calls[i].XID, rpc.Success)
			e.Uint32(calls[i].Proc)
			b := e.Bytes()
			rpc.FinishRecord(b)
			nc.Write(b)
		}
	}()
}

func TestOutOfOrderReplies(t *testing.T) {
	cs, ss := net.Pipe()
	defer ss.Close()
	c := NewConn(cs)
	defer c.Close()
	const n = 8
	fakeServer(t, ss, n)
	cl := c.WithAuth(Unix("t", 0, 0))
	type res struct {
		proc, got uint32
		err       error
	}
	out := make(chan res, n)
	for i := range n {
		go func() {
			var r proto.Uint32Res
			err := cl.Call(context.Background(), 1, 1, uint32(i), proto.Void{}, &r)
			out <- res{uint32(i), r.V, err}
		}()
	}
	for range n {
		r := <-out
		if r.err != nil || r.got != r.proc {
			t.Fatalf("call %d got the reply of %d (%v)", r.proc, r.got, r.err)
		}
	}
}

func TestClosedAndCanceled(t *testing.T) {
	cs, ss := net.Pipe()
	c := NewConn(cs)
	cl := c.WithAuth(Unix("t", 0, 0))
	// No reply: the context ends the call.
	go func() { rpc.ReadRecord(ss, nil, 1<<20) }()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := cl.Null(ctx, 1, 1); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("unanswered call: %v", err)
	}
	// The server goes away: calls fail with ErrClosed.
	ss.Close()
	if err := cl.Null(context.Background(), 1, 1); err == nil {
		t.Fatal("call on a closed connection succeeded")
	}
	c.Close()
	if err := cl.Null(context.Background(), 1, 1); err == nil {
		t.Fatal("call after Close succeeded")
	}
}

func TestStatusErrors(t *testing.T) {
	cs, ss := net.Pipe()
	defer ss.Close()
	c := NewConn(cs)
	defer c.Close()
	go func() {
		rec, err := rpc.ReadRecord(ss, nil, 1<<20)
		if err != nil {
			return
		}
		h, _, _ := rpc.ParseCall(rec)
		e := xdr.NewEncoder(nil)
		e.Reserve(rpc.RecordHeaderSize)
		rpc.AppendAccepted(e, h.XID, rpc.Success)
		(&proto.GetAttrRes{Status: proto.ErrStale}).Encode(e)
		b := e.Bytes()
		rpc.FinishRecord(b)
		ss.Write(b)
	}()
	_, err := c.WithAuth(Unix("t", 0, 0)).GetAttr(context.Background(), proto.FH("x"))
	if !errors.Is(err, proto.ErrStale) {
		t.Fatalf("status error %v", err)
	}
}

// TestOrderedAsksOnce: a server that does not answer proto.ProgRegionFS
// (PROG_UNAVAIL, as nfs-ganesha and the kernel's server do) is not
// ordered, and the connection asks it once; one that answers is.
func TestOrderedAsksOnce(t *testing.T) {
	for _, answer := range []rpc.AcceptStat{rpc.ProgUnavail, rpc.Success} {
		cs, ss := net.Pipe()
		c := NewConn(cs)
		asked := make(chan uint32, 4)
		go func() {
			for {
				rec, err := rpc.ReadRecord(ss, nil, 1<<20)
				if err != nil {
					return
				}
				h, _, err := rpc.ParseCall(rec)
				if err != nil {
					return
				}
				asked <- h.Prog
				e := xdr.NewEncoder(nil)
				e.Reserve(rpc.RecordHeaderSize)
				rpc.AppendAccepted(e, h.XID, answer) // NULL: no results
				b := e.Bytes()
				rpc.FinishRecord(b)
				ss.Write(b)
			}
		}()
		want := answer == rpc.Success
		for range 3 {
			if got := c.Ordered(context.Background()); got != want {
				t.Errorf("server answering %v: Ordered = %v, want %v", answer, got, want)
			}
		}
		if n := len(asked); n != 1 || <-asked != proto.ProgRegionFS {
			t.Errorf("server answering %v: asked %d times, want once, for proto.ProgRegionFS", answer, n)
		}
		c.Close()
		ss.Close()
	}
}
