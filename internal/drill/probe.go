package drill

import (
	"context"
	"fmt"
	"time"

	"github.com/regionfs/regionfs/internal/nfs/client"
	"github.com/regionfs/regionfs/internal/nfs/proto"
)

// probeTimeout bounds how long the clone has to answer its first write.
const probeTimeout = 30 * time.Second

// probe writes a file on the clone through its mount target, as a client
// after a failover would (MOUNT, CREATE, WRITE with FILE_SYNC), retrying
// until it is acknowledged, and returns when it was; the file is removed
// again so the clone keeps the replica's content.
func (r *run) probe(ctx context.Context, addr string) (time.Time, error) {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	var last error
	for {
		at, err := r.writeOnce(ctx, addr)
		if err == nil {
			return at, nil
		}
		last = err
		select {
		case <-ctx.Done():
			return time.Time{}, fmt.Errorf("%w (after %s)", last, probeTimeout)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (r *run) writeOnce(ctx context.Context, addr string) (time.Time, error) {
	nc, err := r.s.o.Dial(ctx, "tcp", addr)
	if err != nil {
		return time.Time{}, fmt.Errorf("connect: %w", err)
	}
	conn := client.NewConn(nc)
	defer conn.Close()
	c := conn.WithAuth(client.Unix("regionfs-drill", 0, 0))
	root, _, err := c.Mount(ctx, "/")
	if err != nil {
		return time.Time{}, fmt.Errorf("mount: %w", err)
	}
	name := ".regionfs-" + r.d.DrillID
	mode := uint32(0o600)
	cr, err := c.Create(ctx, root, name, proto.Unchecked, proto.Sattr{Mode: &mode})
	if err != nil {
		return time.Time{}, fmt.Errorf("create: %w", err)
	}
	data := []byte("regionfs drill " + r.d.DrillID + "\n")
	w, err := c.Write(ctx, cr.FH, 0, data, proto.FileSync)
	if err != nil {
		return time.Time{}, fmt.Errorf("write: %w", err)
	}
	at := r.s.o.Clock()
	if int(w.Count) != len(data) || w.Committed != proto.FileSync {
		return time.Time{}, fmt.Errorf("write: %d of %d bytes, stability %d", w.Count, len(data), w.Committed)
	}
	if _, err := c.Remove(ctx, root, name); err != nil {
		r.log.Warn("drill probe file not removed from the clone", "name", name, "err", err)
	}
	return at, nil
}
