package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/regionfs/regionfs/internal/nfs/client"
	"github.com/regionfs/regionfs/internal/nfs/proto"
)

var benchAuth = client.Unix("bench", 0, 0)

// target is an NFS export: where NFS and MOUNT listen and the MOUNT path.
type target struct {
	name      string
	nfsAddr   string
	mountAddr string
	export    string
}

// mountTarget is a regionfs mount target (NFS, MOUNT on one port, export /).
func mountTarget(name, ip string) target {
	a := fmt.Sprintf("%s:%d", ip, benchNFS)
	return target{name: name, nfsAddr: a, mountAddr: a, export: "/"}
}

// session is one NFS connection with the export's root handle.
type session struct {
	conn *client.Conn
	c    *client.Client
	root proto.FH
}

func (t target) dial(ctx context.Context) (*session, error) {
	var root proto.FH
	mc, err := client.Dial(ctx, t.mountAddr)
	if err != nil {
		return nil, fmt.Errorf("%s: dial %s: %w", t.name, t.mountAddr, err)
	}
	if t.mountAddr == t.nfsAddr {
		c := mc.WithAuth(benchAuth)
		if root, _, err = c.Mount(ctx, t.export); err != nil {
			mc.Close()
			return nil, fmt.Errorf("%s: mount %s: %w", t.name, t.export, err)
		}
		return &session{conn: mc, c: c, root: root}, nil
	}
	root, _, err = mc.WithAuth(benchAuth).Mount(ctx, t.export)
	mc.Close()
	if err != nil {
		return nil, fmt.Errorf("%s: mount %s: %w", t.name, t.export, err)
	}
	nc, err := client.Dial(ctx, t.nfsAddr)
	if err != nil {
		return nil, fmt.Errorf("%s: dial %s: %w", t.name, t.nfsAddr, err)
	}
	return &session{conn: nc, c: nc.WithAuth(benchAuth), root: root}, nil
}

// dialRetry dials until the export answers (a mount target just created).
func (t target) dialRetry(ctx context.Context, d time.Duration) (*session, error) {
	deadline := time.Now().Add(d)
	for {
		s, err := t.dial(ctx)
		if err == nil {
			return s, nil
		}
		if time.Now().After(deadline) {
			return nil, err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (s *session) close() { s.conn.Close() }

// lookupPath walks a slash-separated path from the root.
func (s *session) lookupPath(ctx context.Context, path string) (proto.FH, *proto.Attr, error) {
	fh := s.root
	var attr *proto.Attr
	for _, name := range strings.Split(strings.Trim(path, "/"), "/") {
		if name == "" {
			continue
		}
		r, err := s.c.Lookup(ctx, fh, name)
		if err != nil {
			return nil, nil, fmt.Errorf("lookup %s in %s: %w", name, path, err)
		}
		fh, attr = r.FH, r.Attr
	}
	return fh, attr, nil
}

// mkdir makes dir/name, or finds it if it exists.
func (s *session) mkdir(ctx context.Context, dir proto.FH, name string) (proto.FH, error) {
	mode := uint32(0o755)
	r, err := s.c.Mkdir(ctx, dir, name, proto.Sattr{Mode: &mode})
	if errors.Is(err, proto.ErrExist) {
		lr, lerr := s.c.Lookup(ctx, dir, name)
		if lerr != nil {
			return nil, lerr
		}
		return lr.FH, nil
	}
	if err != nil {
		return nil, fmt.Errorf("mkdir %s: %w", name, err)
	}
	if r.FH == nil {
		lr, lerr := s.c.Lookup(ctx, dir, name)
		if lerr != nil {
			return nil, lerr
		}
		return lr.FH, nil
	}
	return r.FH, nil
}

var fileMode = uint32(0o644)

// createFile makes dir/name with CREATE (GUARDED), one UNSTABLE WRITE of
// data and COMMIT; it returns when COMMIT is answered (the acknowledgement).
func (s *session) createFile(ctx context.Context, dir proto.FH, name string, data []byte) (proto.FH, error) {
	cr, err := s.c.Create(ctx, dir, name, proto.Guarded, proto.Sattr{Mode: &fileMode})
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", name, err)
	}
	fh := cr.FH
	if fh == nil {
		lr, err := s.c.Lookup(ctx, dir, name)
		if err != nil {
			return nil, err
		}
		fh = lr.FH
	}
	if _, err := s.c.Write(ctx, fh, 0, data, proto.Unstable); err != nil {
		return nil, fmt.Errorf("write %s: %w", name, err)
	}
	if _, err := s.c.Commit(ctx, fh, 0, 0); err != nil {
		return nil, fmt.Errorf("commit %s: %w", name, err)
	}
	return fh, nil
}

// writeLarge writes data to fh in chunk-sized UNSTABLE WRITEs with up to
// inflight outstanding, then COMMITs.
func (s *session) writeLarge(ctx context.Context, fh proto.FH, size int64, chunk int, inflight int, fill func(off int64, b []byte)) error {
	type job struct {
		off int64
		b   []byte
	}
	jobs := make(chan job)
	errc := make(chan error, inflight)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for range inflight {
		go func() {
			for j := range jobs {
				r, err := s.c.Write(ctx, fh, uint64(j.off), j.b, proto.Unstable)
				if err == nil && int(r.Count) != len(j.b) {
					err = fmt.Errorf("short write at %d: %d of %d", j.off, r.Count, len(j.b))
				}
				if err != nil {
					errc <- err
					cancel()
					for range jobs {
					}
					return
				}
			}
			errc <- nil
		}()
	}
	var firstErr error
send:
	for off := int64(0); off < size; off += int64(chunk) {
		n := min(int64(chunk), size-off)
		b := make([]byte, n)
		fill(off, b)
		select {
		case jobs <- job{off, b}:
		case <-ctx.Done():
			break send
		}
	}
	close(jobs)
	for range inflight {
		if err := <-errc; err != nil && firstErr == nil {
			firstErr = err
		}
	}
	if firstErr != nil {
		return firstErr
	}
	_, err := s.c.Commit(ctx, fh, 0, 0)
	return err
}

// readAll reads a whole file of the given size in 1 MiB READs.
func (s *session) readAll(ctx context.Context, fh proto.FH, size uint64) ([]byte, error) {
	out := make([]byte, 0, size)
	for off := uint64(0); off < size; {
		r, err := s.c.Read(ctx, fh, off, uint32(min(1<<20, size-off)))
		if err != nil {
			return nil, err
		}
		if len(r.Data) == 0 {
			break
		}
		out = append(out, r.Data...)
		off += uint64(len(r.Data))
		if r.EOF {
			break
		}
	}
	return out, nil
}
