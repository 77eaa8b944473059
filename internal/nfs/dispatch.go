package nfs

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"time"

	"github.com/regionfs/regionfs/internal/engine"
	"github.com/regionfs/regionfs/internal/nfs/proto"
	"github.com/regionfs/regionfs/internal/nfs/rpc"
	"github.com/regionfs/regionfs/internal/nfs/xdr"
)

// request is one call being served.
type request struct {
	ctx  context.Context
	s    *Server
	c    *conn
	h    *rpc.CallHeader
	args []byte
	who  caller
	// hold keeps the buffer of a READ's data from reuse until its reply
	// is written (reply.free).
	hold engine.Hold
	// after: the read-ahead's prefetches a READ scheduled, run once its
	// reply is written (reply.after).
	after []prefetch
	// rec is the record args were read into, when it is one of the
	// server's record buffers that a procedure may keep (takeRecord).
	rec *record
}

// takeRecord hands the buffer of the request's record (which holds its
// arguments) to the caller, who keeps it beyond the request and gives it
// back with Server.putRecordBuf; nil when the record is not in one of the
// server's record buffers (the caller copies what it keeps).
func (r *request) takeRecord() []byte {
	if r.rec == nil || !r.rec.big || r.rec.buf == nil || cap(*r.rec.buf) != r.s.o.MaxRecordBytes {
		return nil
	}
	b := *r.rec.buf
	r.rec.buf = nil
	return b
}

// errGarbageArgs: the arguments cannot be decoded (GARBAGE_ARGS).
var errGarbageArgs = errors.New("nfs: undecodable arguments")

// decode reads the procedure's arguments. Bytes after them are ignored,
// as other servers do.
func (r *request) decode(m proto.Message) error {
	d := xdr.NewDecoder(r.args)
	m.Decode(d)
	if err := d.Err(); err != nil {
		return fmt.Errorf("%w: %v", errGarbageArgs, err)
	}
	return nil
}

// procFunc serves one procedure: its result, or errGarbageArgs.
type procFunc func(r *request) (proto.Message, error)

// program is one RPC program: its version and procedures.
type program struct {
	vers  uint32
	procs []procFunc
	names []string
	// nonIdempotent marks procedures whose retransmissions are answered
	// from the duplicate request cache.
	nonIdempotent []bool
}

func (s *Server) program(prog uint32) *program {
	switch prog {
	case proto.ProgNFS:
		return &nfsProgram
	case proto.ProgMount:
		return &mountProgram
	case proto.ProgPortmap:
		return &portmapProgram
	case proto.ProgRegionFS:
		return &regionfsProgram
	}
	return nil
}

var nfsProgram = program{
	vers: proto.VersNFS,
	procs: []procFunc{
		procNull, procGetAttr, procSetAttr, procLookup, procAccess, procReadlink,
		procRead, procWrite, procCreate, procMkdir, procSymlink, procMknod,
		procRemove, procRmdir, procRename, procLink, procReadDir, procReadDirPlus,
		procFSStat, procFSInfo, procPathConf, procCommit,
	},
	names: proto.ProcNames[:],
	nonIdempotent: func() []bool {
		n := make([]bool, proto.NumProcs)
		for p := range n {
			n[p] = proto.Changes(uint32(p))
		}
		return n
	}(),
}

var mountProgram = program{
	vers:          proto.VersMount,
	procs:         []procFunc{procNull, mountMnt, mountDump, mountUmnt, mountUmntAll, mountExport},
	names:         proto.MountProcNames[:],
	nonIdempotent: make([]bool, proto.MountNumProcs),
}

var portmapProgram = program{
	vers:          proto.VersPortmap,
	procs:         []procFunc{procNull, pmapSet, pmapUnset, pmapGetPort, pmapDump},
	names:         []string{"PMAP_NULL", "PMAP_SET", "PMAP_UNSET", "PMAP_GETPORT", "PMAP_DUMP"},
	nonIdempotent: make([]bool, 5),
}

// regionfsProgram is answered to say that this server orders each file's
// WRITEs, SETATTRs and COMMITs as read (proto.ProgRegionFS, orderGate);
// its REGIONFS_CREATE is an exclusive create with attributes, its
// REGIONFS_CLOSE a small file's WRITE, SETATTR and COMMIT in one call,
// its REGIONFS_CREATE_VISIBLE the create answered before its sync.
var regionfsProgram = program{
	vers:          proto.VersRegionFS,
	procs:         []procFunc{procNull, procRegionFSCreate, procRegionFSClose, procRegionFSCreateVisible},
	names:         proto.RegionFSProcNames[:],
	nonIdempotent: []bool{false, true, true, true},
}

// procNull is the NULL procedure of every program.
func procNull(*request) (proto.Message, error) { return proto.Void{}, nil }

// reply is the record answering a call, in pieces to write in order; buf
// is the pooled buffer the first piece was encoded in (returned once the
// reply is written).
type reply struct {
	pieces [][]byte
	buf    *[]byte
	// hold keeps a READ's data, a piece, from reuse (engine.Hold).
	hold engine.Hold
	// after: prefetches of the read-ahead (ra) to run once the reply is
	// written; the connection's goroutine that wrote it takes and runs them
	// (takeAfter), else free hands them to the read-ahead's workers.
	after []prefetch
	ra    *readahead
}

// takeAfter returns the work to run once the reply is written; the
// caller runs all of it.
func (o *reply) takeAfter() []prefetch {
	fns := o.after
	o.after = nil
	return fns
}

// free returns the reply's buffers once it is written (or dropped): its
// pieces must not be used afterwards.
func (o *reply) free() {
	if o.buf != nil {
		putBuf(o.buf)
		o.buf = nil
	}
	o.hold.Release()
	o.hold = engine.Hold{}
	if len(o.after) > 0 {
		o.ra.runPrefetches(o.takeAfter())
	}
}

// handle serves one record: parse the call, authenticate, answer from the
// duplicate request cache or run the procedure. It returns the reply to
// send (none for a record that cannot be answered: the connection is then
// closed).
func (c *conn) handle(rec []byte) (out reply) { return c.handleIn(rec, nil) }

// handleRecord is handle for a record read into a buffer a procedure may
// keep (request.takeRecord).
func (c *conn) handleRecord(rec *record) (out reply) { return c.handleIn(rec.data, rec) }

func (c *conn) handleIn(rec []byte, owner *record) (out reply) {
	start := time.Now()
	h, args, err := rpc.ParseCall(rec)
	out.buf = getBuf()
	e := xdr.NewEncoder((*out.buf)[:0])
	e.Reserve(rpc.RecordHeaderSize)
	finish := func() reply {
		b := e.Bytes()
		rpc.FinishRecord(b)
		*out.buf = b
		out.pieces = [][]byte{b}
		return out
	}
	switch {
	case err == nil:
	case errors.Is(err, rpc.ErrRPCVersion):
		rpc.AppendRPCMismatch(e, h.XID)
		return finish()
	case errors.Is(err, rpc.ErrBadCred):
		rpc.AppendAuthError(e, h.XID, rpc.AuthBadCred)
		return finish()
	case len(rec) >= 8 && binary.BigEndian.Uint32(rec[4:]) == rpc.Call:
		// A call whose header is cut short: the XID is known.
		rpc.AppendAccepted(e, h.XID, rpc.GarbageArgs)
		return finish()
	default:
		// Not a call at all: nothing can be answered.
		c.s.log.Debug("nfs garbage record, closing connection", "remote", c.remote, "err", err)
		c.nc.Close()
		return out
	}
	who, ast := parseCaller(&h)
	// An AUTH_TLS probe that reaches here came inside a TLS session (on a
	// plain connection conn.serve answers it): TLS is not started again.
	probe := h.Cred.Flavor == rpc.AuthTLS && h.Proc == 0
	if ast != rpc.AuthOK && !probe {
		rpc.AppendAuthError(e, h.XID, ast)
		return finish()
	}
	p := c.s.program(h.Prog)
	switch {
	case p == nil:
		rpc.AppendAccepted(e, h.XID, rpc.ProgUnavail)
		return finish()
	case h.Vers != p.vers:
		rpc.AppendAccepted(e, h.XID, rpc.ProgMismatch)
		rpc.AppendMismatchInfo(e, p.vers, p.vers)
		return finish()
	case h.Proc >= uint32(len(p.procs)):
		rpc.AppendAccepted(e, h.XID, rpc.ProcUnavail)
		return finish()
	}
	if probe {
		// The NULL call it is, accepted, with no STARTTLS token in the
		// verifier: the token (RFC 9289 §4.1) would ask the client for
		// a ClientHello inside the session. (Linux's server answers so
		// on a transport where it cannot start TLS.)
		rpc.AppendAccepted(e, h.XID, rpc.Success)
		return finish()
	}
	name := p.names[h.Proc]
	r := &request{ctx: c.ctx, s: c.s, c: c, h: &h, args: args, who: who, rec: owner}

	var ent *drcEntry
	if p.nonIdempotent[h.Proc] {
		key := drcKeyOf(c.remote.Addr(), c.tls, &h, args)
		var cached []byte
		ent, cached = c.s.drc.begin(r.ctx, key)
		if ent == nil {
			if cached != nil {
				c.s.met.drcHits.Inc()
				out.pieces = [][]byte{cached}
			}
			return out
		}
	}

	if c.s.testHook != nil {
		c.s.testHook(r)
	}
	stat, tail := c.run(r, p, e)
	out.hold = r.hold // released with the reply, whatever it holds
	out.after, out.ra = r.after, c.s.ra
	b := e.Bytes()
	*out.buf = b
	if tail != nil {
		// A READ's data goes out without a copy (never cached: READ is
		// idempotent).
		pad := proto.Pad(len(tail))
		rpc.FinishRecordWithTail(b, len(tail)+len(pad))
		out.pieces = [][]byte{b, tail, pad}
	} else {
		rpc.FinishRecord(b)
		if ent != nil {
			c.s.drc.finish(ent, b)
		}
		out.pieces = [][]byte{b}
	}
	c.s.met.observe(h.Prog, name, stat, time.Since(start))
	if c.s.log.Enabled(r.ctx, slog.LevelDebug) {
		c.s.log.Debug("nfs op", "op", name, "status", stat, "remote", c.remote, "xid", h.XID, "dur", time.Since(start))
	}
	return out
}

// headTail is a result whose bulk data is sent after its encoding (READ).
type headTail interface {
	EncodeHead(e *xdr.Encoder) []byte
}

// run executes a procedure and encodes its reply into e (after the record
// header), with the bytes to send after it, if any. It returns the status
// label for metrics.
func (c *conn) run(r *request, p *program, e *xdr.Encoder) (stat string, tail []byte) {
	mark := e.Len()
	defer func() {
		if v := recover(); v != nil {
			c.s.log.Error("nfs procedure panicked", "op", p.names[r.h.Proc], "remote", c.remote,
				"panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			e.Truncate(mark)
			rpc.AppendAccepted(e, r.h.XID, rpc.SystemErr)
			stat, tail = rpc.SystemErr.String(), nil
		}
	}()
	res, err := p.procs[r.h.Proc](r)
	if err != nil {
		rpc.AppendAccepted(e, r.h.XID, rpc.GarbageArgs)
		return rpc.GarbageArgs.String(), nil
	}
	rpc.AppendAccepted(e, r.h.XID, rpc.Success)
	body := e.Len()
	if ht, ok := res.(headTail); ok {
		tail = ht.EncodeHead(e)
	} else {
		res.Encode(e)
	}
	switch {
	case (r.h.Prog == proto.ProgNFS || r.h.Prog == proto.ProgRegionFS) && r.h.Proc != proto.ProcNull && e.Len() >= body+4:
		stat = proto.Status(binary.BigEndian.Uint32(e.Bytes()[body:])).String()
	case r.h.Prog == proto.ProgMount && r.h.Proc == proto.MountProcMnt && e.Len() >= body+4:
		stat = proto.MountStatus(binary.BigEndian.Uint32(e.Bytes()[body:])).String()
	default:
		stat = "OK"
	}
	return stat, tail
}
