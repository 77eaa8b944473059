package nfs

import (
	"context"
	"slices"
	"sync"

	"github.com/regionfs/regionfs/internal/nfs/proto"
	"github.com/regionfs/regionfs/internal/nfs/rpc"
	"github.com/regionfs/regionfs/internal/nfs/xdr"
)

// orderGate runs the WRITEs, SETATTRs and COMMITs of one file in the
// order the server reads them: a SETATTR waits for the WRITEs of its file
// read before it, a COMMIT for the WRITEs and SETATTRs read before it.
// Connections run their calls concurrently; without the gate a client
// could not send these without waiting for each reply. `regionfs mount`
// closing a small file that `cp -a` copied sends WRITE UNSTABLE, SETATTR
// (times, mode) and COMMIT back to back (when the server answers
// proto.ProgRegionFS, which promises this order): the SETATTR lands after
// the data (the mtime it sets stays), writes the buffered data and the
// change in one commit (writeback.settleAttr), and the COMMIT, which then
// has nothing to write, answers once both are durable — one round trip
// for the three; with REGIONFS_CLOSE (proto.ProcRegionFSClose, the three
// in one call) the mount sends one request, which waits here as a COMMIT
// and is waited for as a WRITE. A connection registers each call as it reads it, before
// it reads the next request, so the order is the order on the wire.
// Waiting changes no outcome: each call does what it would have done had
// the client waited for the replies before sending it. Calls only ever
// wait for calls read before them (which hold their processing slots
// already), so there is no cycle.
type orderGate struct {
	mu sync.Mutex // guards m
	// m holds, per file handle, the WRITEs and SETATTRs being processed,
	// in the order read.
	m map[string][]*gateOp
}

type gateOp struct {
	write bool
	done  chan struct{}
}

// gatePass is what a request read holds in the gate: its own entry (a
// WRITE or SETATTR), and the earlier calls it waits for.
type gatePass struct {
	key   string
	op    *gateOp
	after []chan struct{}
}

// enter registers a call whose header is h and arguments args (a file
// handle first) as it is read.
func (g *orderGate) enter(h *rpc.CallHeader, args []byte) gatePass {
	// REGIONFS_CLOSE (a WRITE, a SETATTR and a COMMIT of one file, its
	// arguments WRITE3args first) waits as a COMMIT does, and is waited
	// for as a WRITE is.
	closeCall := h.Prog == proto.ProgRegionFS && h.Vers == proto.VersRegionFS && h.Proc == proto.ProcRegionFSClose
	switch {
	case closeCall:
	case h.Prog != proto.ProgNFS || h.Vers != proto.VersNFS:
		return gatePass{}
	case h.Proc != proto.ProcWrite && h.Proc != proto.ProcSetAttr && h.Proc != proto.ProcCommit:
		return gatePass{}
	}
	d := xdr.NewDecoder(args)
	fh := proto.DecodeFH(d)
	if d.Err() != nil || len(fh) == 0 {
		return gatePass{}
	}
	p := gatePass{key: string(fh)}
	g.mu.Lock()
	defer g.mu.Unlock()
	ops := g.m[p.key]
	commit := closeCall || h.Proc == proto.ProcCommit
	if closeCall || h.Proc != proto.ProcWrite {
		for _, o := range ops {
			if o.write || commit {
				p.after = append(p.after, o.done)
			}
		}
	}
	if !closeCall && h.Proc == proto.ProcCommit {
		return p
	}
	if g.m == nil {
		g.m = map[string][]*gateOp{}
	}
	p.op = &gateOp{write: closeCall || h.Proc == proto.ProcWrite, done: make(chan struct{})}
	g.m[p.key] = append(ops, p.op)
	return p
}

// wait waits for the calls p follows (or until ctx ends).
func (g *orderGate) wait(ctx context.Context, p gatePass) {
	for _, ch := range p.after {
		select {
		case <-ch:
		case <-ctx.Done():
			return
		}
	}
}

// leave ends the call registered with p.
func (g *orderGate) leave(p gatePass) {
	if p.op == nil {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	ops := slices.DeleteFunc(g.m[p.key], func(o *gateOp) bool { return o == p.op })
	if len(ops) == 0 {
		delete(g.m, p.key)
	} else {
		g.m[p.key] = ops
	}
	close(p.op.done)
}
