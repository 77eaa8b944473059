package nfs

import (
	"context"
	"sync"

	"github.com/regionfs/regionfs/internal/nfs/proto"
	"github.com/regionfs/regionfs/internal/nfs/rpc"
	"github.com/regionfs/regionfs/internal/nfs/xdr"
)

// attrGate lets a COMMIT wait for the SETATTRs of its file that were
// read before it. A client closing a small file with an attribute change
// (`regionfs mount` for cp -a) sends the SETATTR and then, without waiting
// for its reply, the COMMIT; the connection runs them concurrently, and a
// COMMIT that ran first would write the buffered data alone (one durable
// commit) and leave the SETATTR another, where the SETATTR writes data and
// change in one (writeback.settleAttr) and the COMMIT then has nothing to
// write. A connection registers each SETATTR as it reads it, before it
// reads the next request, so the order is the order on the wire. Waiting
// changes no outcome: a COMMIT makes the same data durable after the
// SETATTR as before it, and a SETATTR never waits for a COMMIT.
type attrGate struct {
	mu sync.Mutex // guards m
	m  map[string]*gateEntry
}

type gateEntry struct {
	n    int
	done chan struct{}
}

// enter registers a SETATTR whose arguments are args (its file handle
// first); it returns the key to leave with ("" when args do not decode).
func (g *attrGate) enter(h *rpc.CallHeader, args []byte) string {
	if h.Prog != proto.ProgNFS || h.Vers != proto.VersNFS || h.Proc != proto.ProcSetAttr {
		return ""
	}
	d := xdr.NewDecoder(args)
	fh := proto.DecodeFH(d)
	if d.Err() != nil || len(fh) == 0 {
		return ""
	}
	key := string(fh)
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.m == nil {
		g.m = map[string]*gateEntry{}
	}
	e := g.m[key]
	if e == nil {
		e = &gateEntry{done: make(chan struct{})}
		g.m[key] = e
	}
	e.n++
	return key
}

// leave ends a SETATTR registered with key.
func (g *attrGate) leave(key string) {
	if key == "" {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	e := g.m[key]
	if e.n--; e.n == 0 {
		close(e.done)
		delete(g.m, key)
	}
}

// wait waits until no SETATTR of fh is registered (or ctx ends).
func (g *attrGate) wait(ctx context.Context, fh proto.FH) {
	g.mu.Lock()
	e := g.m[string(fh)]
	g.mu.Unlock()
	if e == nil {
		return
	}
	select {
	case <-e.done:
	case <-ctx.Done():
	}
}
