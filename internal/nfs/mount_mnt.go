package nfs

import (
	"errors"
	"log/slog"
	"strings"

	"github.com/regionfs/regionfs/internal/engine"
	"github.com/regionfs/regionfs/internal/nfs/proto"
	"github.com/regionfs/regionfs/internal/nfs/rpc"
)

// mountMnt serves MOUNT MNT: the handle of an export's root, or of a
// directory below it (path = export path + "/sub/dir", looked up as the
// caller without following symbolic links). An export with CreateDir
// creates its directory at the first MNT.
func mountMnt(r *request) (proto.Message, error) {
	var a proto.DirPathArgs
	if err := r.decode(&a); err != nil {
		return nil, err
	}
	res := &proto.MntRes{}
	fh, err := r.mount(a.Path)
	res.Status = mountStatusOf(err)
	if err != nil {
		r.s.logRefusal(slog.LevelInfo, "nfs mount refused", "path", a.Path, "remote", r.c.remote, "status", res.Status, "err", err)
		return res, nil
	}
	res.FH = fh
	res.Flavors = []uint32{rpc.AuthUnix, rpc.AuthNone}
	host := r.who.host
	if host == "" {
		host = r.c.remote.Addr().String()
	}
	r.s.mu.Lock()
	if len(r.s.mounts) < maxMountEntries {
		r.s.mounts[mountEntry{host: host, path: a.Path}] = struct{}{}
	}
	r.s.mu.Unlock()
	r.s.log.Info("nfs mount", "path", a.Path, "remote", r.c.remote, "host", host)
	return res, nil
}

// maxMountEntries bounds the advisory mount list DUMP reports (clients
// choose its entries).
const maxMountEntries = 4096

// errNoExport: no export has this path.
var errNoExport = errors.New("nfs: no such export")

func (r *request) mount(p string) (proto.FH, error) {
	x, rest, found := r.s.exports.Load().forMount(p, r.c.remote.Addr())
	switch {
	case !found:
		return nil, errNoExport
	case x == nil:
		return nil, errNotAllowed
	case x.RequireTLS && !r.c.tls:
		return nil, errTLSRequired
	}
	root, err := x.rootIno(r.ctx, true)
	if err != nil {
		return nil, err
	}
	a, err := x.FS.GetAttr(r.ctx, root)
	if err != nil {
		return nil, err
	}
	cred := x.cred(r.who)
	for _, name := range strings.Split(strings.Trim(rest, "/"), "/") {
		if name == "" {
			continue
		}
		if a, err = x.FS.Lookup(r.ctx, cred, a.Ino, name); err != nil {
			return nil, err
		}
		if a.Type != engine.TypeDir {
			return nil, engine.ErrNotDir
		}
	}
	h := handle{lineage: x.lineage, ino: a.Ino, gen: a.Gen, root: root, tag: x.tag}
	return h.encode(x.FS.MACKey()), nil
}
