package client

import (
	"context"
	"errors"
	"testing"

	"github.com/regionfs/regionfs/internal/nfs/proto"
	"github.com/regionfs/regionfs/internal/nfs/rpc"
	"github.com/regionfs/regionfs/internal/nfs/xdr"
)

// TestResentError: a change that fails after it was sent again on a new
// connection fails with a ResentError (its first sending may have been
// made: the caller can check for its effect), which is still its status
// for errors.Is and errors.As; one that fails on its first sending fails
// with the bare status.
func TestResentError(t *testing.T) {
	s, next, _ := pipeSession(t)
	noent := func(c pipeCall) { // REMOVE3res: status, then wcc_data without attributes
		e := xdr.NewEncoder(nil)
		e.Reserve(rpc.RecordHeaderSize)
		rpc.AppendAccepted(e, c.h.XID, rpc.Success)
		e.Uint32(uint32(proto.ErrNoEnt))
		e.Bool(false)
		e.Bool(false)
		b := e.Bytes()
		rpc.FinishRecord(b)
		c.out.Write(b)
	}
	remove := func() chan error {
		done := make(chan error, 1)
		go func() {
			_, err := s.Client(Unix("t", 0, 0)).Remove(context.Background(), proto.FH{1}, "f")
			done <- err
		}()
		return done
	}

	done := remove()
	noent(next())
	err := <-done
	if !errors.Is(err, proto.ErrNoEnt) || Resent(err, proto.ErrNoEnt) {
		t.Fatalf("REMOVE answered NOENT at once: %v, want the bare status", err)
	}

	done = remove()
	next().out.Close()
	noent(next())
	err = <-done
	var st proto.Status
	if !Resent(err, proto.ErrNoEnt) || !errors.Is(err, proto.ErrNoEnt) || !errors.As(err, &st) || st != proto.ErrNoEnt {
		t.Fatalf("REMOVE answered NOENT after a lost connection: %v, want a ResentError of NOENT", err)
	}
	if Resent(err, proto.ErrExist) {
		t.Fatalf("Resent(%v, EXIST) is true", err)
	}
}
