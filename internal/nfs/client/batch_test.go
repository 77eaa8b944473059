package client

import (
	"context"
	"errors"
	"testing"

	"github.com/regionfs/regionfs/internal/nfs/proto"
	"github.com/regionfs/regionfs/internal/nfs/rpc"
	"github.com/regionfs/regionfs/internal/nfs/xdr"
)

// TestBatch: a Batch's calls leave in order, in one write and one round
// trip, and each gets its own reply, whatever order the replies come in;
// a lost connection fails every call of the batch as a transport failure
// (nothing is sent again) and the session dials again for the next call.
func TestBatch(t *testing.T) {
	s, next, dials := pipeSession(t)
	reply := func(c pipeCall, st proto.Status) {
		e := xdr.NewEncoder(nil)
		e.Reserve(rpc.RecordHeaderSize)
		rpc.AppendAccepted(e, c.h.XID, rpc.Success)
		e.Uint32(uint32(st))
		e.Uint32(0) // no attributes before
		e.Uint32(0) // nor after
		b := e.Bytes()
		rpc.FinishRecord(b)
		c.out.Write(b)
	}
	conn, err := s.conn(t.Context(), false)
	if err != nil {
		t.Fatal(err)
	}
	batch := func(names ...string) []*Call {
		var calls []*Call
		for _, name := range names {
			res := &proto.WccRes{}
			calls = append(calls, &Call{Auth: Unix("t", 0, 0), Proc: proto.ProcRemove,
				Args: &proto.DirOp{Dir: proto.FH{1}, Name: name}, Res: res, Status: &res.Status})
		}
		return calls
	}

	calls := batch("a", "b", "c")
	done := make(chan struct{})
	go func() {
		s.Batch(context.Background(), conn, calls)
		close(done)
	}()
	var got []pipeCall
	for range calls {
		got = append(got, next())
	}
	for i := 1; i < len(got); i++ {
		if got[i].h.XID == got[i-1].h.XID {
			t.Fatalf("calls %d and %d of the batch share XID %#x", i-1, i, got[i].h.XID)
		}
	}
	reply(got[2], proto.OK)
	reply(got[1], proto.ErrNoEnt)
	reply(got[0], proto.OK)
	<-done
	for i, want := range []error{nil, proto.ErrNoEnt, nil} {
		if c := calls[i]; !errors.Is(c.Err, want) || c.Transport() {
			t.Errorf("call %d: %v (transport %v), want %v", i, c.Err, c.Transport(), want)
		}
	}
	if w, tr, n := s.Writes(), s.Turns(), s.Calls()["REMOVE"].N; w != 1 || tr != 1 || n != 3 {
		t.Errorf("a batch of 3 calls: %d writes, %d round trips, %d calls counted; want 1, 1, 3", w, tr, n)
	}

	// The connection is lost before the replies.
	calls = batch("d", "e")
	done = make(chan struct{})
	go func() {
		s.Batch(context.Background(), conn, calls)
		close(done)
	}()
	next()
	next().out.Close()
	<-done
	for i, c := range calls {
		if c.Err == nil || !c.Transport() {
			t.Errorf("call %d of a batch whose connection was lost: %v (transport %v), want a transport failure", i, c.Err, c.Transport())
		}
	}
	go func() {
		reply(next(), proto.OK)
	}()
	if _, err := s.Client(Unix("t", 0, 0)).Remove(t.Context(), proto.FH{1}, "f"); err != nil {
		t.Fatalf("REMOVE after the batch's connection was lost: %v", err)
	}
	if n := dials.Load(); n != 2 {
		t.Errorf("%d dials, want 2 (the batch's calls are not sent again; the next call dials)", n)
	}
}
