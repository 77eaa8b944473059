package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync/atomic"

	"github.com/regionfs/regionfs/internal/nfs/proto"
)

// A server closes the connection on a record larger than it accepts, so
// the client never sends one: WRITEs larger than the server's FSINFO
// wtmax are split into several, and READs and READDIRs ask for at most
// its rtmax (and no more than a reply record the client reads,
// MaxRecordBytes). The sizes are learnt from any FSINFO reply, and asked
// with an FSINFO of the file before the first WRITE larger than
// smallWriteBytes.

// ioLimits are a server's largest READ and WRITE (FSINFO's rtmax and
// wtmax).
type ioLimits struct{ rtmax, wtmax uint32 }

const (
	// smallWriteBytes: a WRITE up to this size is sent without knowing
	// wtmax (NFS version 2's size, which every server takes).
	smallWriteBytes = 8 << 10
	// maxReplyData bounds the data a call asks back, so that its reply
	// fits a record of MaxRecordBytes.
	maxReplyData = MaxRecordBytes - 64<<10
)

// limits is where c keeps the server's sizes: its session's, else its
// connection's.
func (c *Client) limits() *atomic.Pointer[ioLimits] {
	if c.sess != nil {
		return &c.sess.limits
	}
	return &c.Conn.limits
}

// learn keeps the sizes of an FSINFO reply.
func (c *Client) learn(res *proto.FSInfoRes) {
	if res.Status == proto.OK && res.RTMax > 0 && res.WTMax > 0 {
		c.limits().Store(&ioLimits{rtmax: res.RTMax, wtmax: res.WTMax})
	}
}

// readMax returns the most data a READ or READDIR may ask for.
func (c *Client) readMax() uint32 {
	if l := c.limits().Load(); l != nil {
		return min(l.rtmax, maxReplyData)
	}
	return maxReplyData
}

// writeMax returns the largest WRITE the server takes for a WRITE of n
// bytes to fh, asking FSINFO of fh first when n is more than
// smallWriteBytes and the size is not known. When FSINFO fails (other
// than for ctx), n is returned: the WRITE is sent whole and fails on its
// own.
func (c *Client) writeMax(ctx context.Context, fh proto.FH, n int) (int, error) {
	if l := c.limits().Load(); l != nil {
		return int(l.wtmax), nil
	}
	if n <= smallWriteBytes {
		return n, nil
	}
	if _, err := c.FSInfo(ctx, fh); ctx.Err() != nil {
		return 0, ctx.Err()
	} else if errors.Is(err, ErrRejected) {
		return 0, err
	}
	if l := c.limits().Load(); l != nil {
		return int(l.wtmax), nil
	}
	return n, nil
}

// writeSplit writes data at off in WRITEs of at most wtmax bytes, one
// after the other, and returns their results as one: the count written
// (it stops at a short WRITE), the attributes before the first and after
// the last, the weakest stability, and the first WRITE's verifier (a
// COMMIT whose verifier differs sends the data again; a server that
// restarted between the WRITEs changed it).
func (c *Client) writeSplit(ctx context.Context, fh proto.FH, off uint64, data []byte, stable proto.StableHow, wtmax int) (*proto.WriteRes, error) {
	total := &proto.WriteRes{Committed: proto.FileSync}
	for done, first := 0, true; ; first = false {
		n := min(len(data)-done, wtmax)
		res, err := c.write(ctx, fh, off+uint64(done), data[done:done+n], stable)
		total.Status, total.Wcc.After = res.Status, res.Wcc.After
		if first {
			total.Wcc.Before, total.Verf = res.Wcc.Before, res.Verf
		}
		if err != nil {
			return total, err
		}
		total.Count += res.Count
		total.Committed = min(total.Committed, res.Committed)
		done += int(res.Count)
		if done == len(data) || res.Count < uint32(n) {
			return total, nil
		}
	}
}

// write sends one WRITE.
func (c *Client) write(ctx context.Context, fh proto.FH, off uint64, data []byte, stable proto.StableHow) (*proto.WriteRes, error) {
	res := &proto.WriteRes{}
	args := &proto.WriteArgs{FH: fh, Offset: off, Count: uint32(len(data)), Stable: stable, Data: data}
	return res, c.nfs(ctx, proto.ProcWrite, args, res, &res.Status)
}

// closeHead writes what of a REGIONFS_CLOSE's data exceeds wtmax with
// WRITEs first and returns the rest, to go with the close. A WRITE that
// fails, or writes short, is the close's error.
func (c *Client) closeHead(ctx context.Context, fh proto.FH, off uint64, data []byte, stable proto.StableHow, res *proto.CloseRes) (uint64, []byte, error) {
	wtmax, err := c.writeMax(ctx, fh, len(data))
	if err != nil || len(data) <= wtmax {
		return off, data, err
	}
	head := len(data) - wtmax
	w, err := c.writeSplit(ctx, fh, off, data[:head], stable, wtmax)
	res.Write = *w
	if err == nil && int(w.Count) != head {
		err = fmt.Errorf("nfs client: close of %d bytes: %w (%d of the first %d)", len(data), io.ErrShortWrite, w.Count, head)
	}
	return off + uint64(head), data[head:], err
}
