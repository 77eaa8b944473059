package client

import (
	"context"
	"errors"
	"fmt"

	"github.com/regionfs/regionfs/internal/nfs/proto"
	"github.com/regionfs/regionfs/internal/nfs/rpc"
)

func (c *Client) nfs(ctx context.Context, proc uint32, args, res proto.Message, st *proto.Status) error {
	return c.withStatus(ctx, proto.ProgNFS, proto.VersNFS, proc, args, res, st)
}

// withStatus runs a call whose result starts with an nfsstat3.
func (c *Client) withStatus(ctx context.Context, prog, vers, proc uint32, args, res proto.Message, st *proto.Status) error {
	resent, err := c.callResent(ctx, prog, vers, proc, args, res)
	if err != nil {
		return err
	}
	if *st != proto.OK {
		if resent {
			return &ResentError{Status: *st}
		}
		return *st
	}
	return nil
}

// ResentError is the failure of a change that was sent again on a new
// connection after the first one was lost. A server that restarted
// meanwhile has forgotten its replies (duplicate request cache), so the
// failure may be the change meeting its own first sending's effect: a
// REMOVE finding the name gone, a MKDIR finding it there. It unwraps to
// the status.
type ResentError struct {
	Status proto.Status
}

func (e *ResentError) Error() string {
	return e.Status.Error() + " (the call was sent again after its connection was lost)"
}

func (e *ResentError) Unwrap() error { return e.Status }

// Resent reports whether err is a ResentError with status st.
func Resent(err error, st proto.Status) bool {
	var r *ResentError
	return errors.As(err, &r) && r.Status == st
}

// GetAttr returns a file's attributes.
func (c *Client) GetAttr(ctx context.Context, fh proto.FH) (*proto.GetAttrRes, error) {
	res := &proto.GetAttrRes{}
	return res, c.nfs(ctx, proto.ProcGetAttr, &proto.FHArgs{FH: fh}, res, &res.Status)
}

// SetAttr changes attributes; guard, when set, is the ctime the file
// must still have.
func (c *Client) SetAttr(ctx context.Context, fh proto.FH, sa proto.Sattr, guard *proto.Time) (*proto.SetAttrRes, error) {
	res := &proto.SetAttrRes{}
	return res, c.nfs(ctx, proto.ProcSetAttr, &proto.SetAttrArgs{FH: fh, Attr: sa, Guard: guard}, res, &res.Status)
}

// Lookup finds a name in a directory.
func (c *Client) Lookup(ctx context.Context, dir proto.FH, name string) (*proto.LookupRes, error) {
	res := &proto.LookupRes{}
	return res, c.nfs(ctx, proto.ProcLookup, &proto.DirOp{Dir: dir, Name: name}, res, &res.Status)
}

// Access asks which of the access bits the caller holds.
func (c *Client) Access(ctx context.Context, fh proto.FH, mask uint32) (*proto.AccessRes, error) {
	res := &proto.AccessRes{}
	return res, c.nfs(ctx, proto.ProcAccess, &proto.AccessArgs{FH: fh, Access: mask}, res, &res.Status)
}

// Readlink returns a symbolic link's target.
func (c *Client) Readlink(ctx context.Context, fh proto.FH) (*proto.ReadlinkRes, error) {
	res := &proto.ReadlinkRes{}
	return res, c.nfs(ctx, proto.ProcReadlink, &proto.FHArgs{FH: fh}, res, &res.Status)
}

// Read reads count bytes at off: at most the server's rtmax (a short
// read, without EOF, when count is larger).
func (c *Client) Read(ctx context.Context, fh proto.FH, off uint64, count uint32) (*proto.ReadRes, error) {
	res := &proto.ReadRes{}
	args := &proto.ReadArgs{FH: fh, Offset: off, Count: min(count, c.readMax())}
	return res, c.nfs(ctx, proto.ProcRead, args, res, &res.Status)
}

// Write writes data at off with the given stability, in several WRITEs
// when data is larger than the server's wtmax (see writeSplit).
func (c *Client) Write(ctx context.Context, fh proto.FH, off uint64, data []byte, stable proto.StableHow) (*proto.WriteRes, error) {
	wtmax, err := c.writeMax(ctx, fh, len(data))
	if err != nil {
		return &proto.WriteRes{}, err
	}
	if len(data) > wtmax {
		return c.writeSplit(ctx, fh, off, data, stable, wtmax)
	}
	return c.write(ctx, fh, off, data, stable)
}

// Create creates a regular file (UNCHECKED or GUARDED with attributes).
func (c *Client) Create(ctx context.Context, dir proto.FH, name string, mode proto.CreateMode, sa proto.Sattr) (*proto.CreateRes, error) {
	res := &proto.CreateRes{}
	args := &proto.CreateArgs{Where: proto.DirOp{Dir: dir, Name: name}, Mode: mode, Attr: sa}
	return res, c.nfs(ctx, proto.ProcCreate, args, res, &res.Status)
}

// CreateExclusive creates a regular file with an exclusive-create verifier.
func (c *Client) CreateExclusive(ctx context.Context, dir proto.FH, name string, verf [proto.CreateVerfSize]byte) (*proto.CreateRes, error) {
	res := &proto.CreateRes{}
	args := &proto.CreateArgs{Where: proto.DirOp{Dir: dir, Name: name}, Mode: proto.Exclusive, Verf: verf}
	return res, c.nfs(ctx, proto.ProcCreate, args, res, &res.Status)
}

// CreateExclusiveAttrs creates a regular file with an exclusive-create
// verifier and the attributes sa (no size) with regionfs's own procedure
// (proto.ProcRegionFSCreate): nobody sees the file without them. A
// server that does not have the procedure fails it with ErrNoProc.
func (c *Client) CreateExclusiveAttrs(ctx context.Context, dir proto.FH, name string, verf [proto.CreateVerfSize]byte, sa proto.Sattr) (*proto.CreateRes, error) {
	return c.createExclusiveAttrs(ctx, proto.ProcRegionFSCreate, dir, name, verf, sa)
}

// CreateExclusiveVisible is CreateExclusiveAttrs answered once the file
// is visible, before it is durable (proto.ProcRegionFSCreateVisible): the
// caller makes it durable with a later durable change of the file or a
// COMMIT, and finds its handle stale if the server restarted before.
// A server that does not have the procedure fails it with ErrNoProc.
func (c *Client) CreateExclusiveVisible(ctx context.Context, dir proto.FH, name string, verf [proto.CreateVerfSize]byte, sa proto.Sattr) (*proto.CreateRes, error) {
	return c.createExclusiveAttrs(ctx, proto.ProcRegionFSCreateVisible, dir, name, verf, sa)
}

func (c *Client) createExclusiveAttrs(ctx context.Context, proc uint32, dir proto.FH, name string, verf [proto.CreateVerfSize]byte, sa proto.Sattr) (*proto.CreateRes, error) {
	res := &proto.CreateRes{}
	args := &proto.ExclusiveCreateArgs{Where: proto.DirOp{Dir: dir, Name: name}, Verf: verf, Attr: sa}
	err := c.withStatus(ctx, proto.ProgRegionFS, proto.VersRegionFS, proc, args, res, &res.Status)
	var re *rpc.ReplyError
	if errors.As(err, &re) && re.Accepted &&
		(re.AcceptStat == rpc.ProcUnavail || re.AcceptStat == rpc.ProgUnavail || re.AcceptStat == rpc.ProgMismatch) {
		return res, fmt.Errorf("%w: %w", ErrNoProc, err)
	}
	return res, err
}

// CloseFile sends a small file's close in one call, regionfs's REGIONFS_CLOSE
// (proto.ProcRegionFSClose): data written at off with the stability
// given, then the change sa (a SETATTR without guard), then a COMMIT of
// the file. Each part's outcome is in its result (res.Write, res.SetAttr,
// res.Commit: a failed part does not stop the ones after it); err is only
// a call that got no reply (the session retries until ctx ends) or could
// not be decoded. A server that does not have the procedure fails it with
// ErrNoProc, and did nothing. Data larger than the server's wtmax is
// written with WRITEs first, all but its last wtmax bytes; when one of
// them fails (err, res.Write), nothing else is sent.
func (c *Client) CloseFile(ctx context.Context, fh proto.FH, off uint64, data []byte, stable proto.StableHow, sa proto.Sattr) (*proto.CloseRes, error) {
	res := &proto.CloseRes{}
	off, data, err := c.closeHead(ctx, fh, off, data, stable, res)
	if err != nil {
		return res, err
	}
	head := res.Write // the WRITEs of all but the last wtmax bytes, if any
	defer func() {
		if head.Count > 0 && res.Write.Status == proto.OK {
			res.Write.Count += head.Count
			res.Write.Wcc.Before, res.Write.Verf = head.Wcc.Before, head.Verf
			res.Write.Committed = min(res.Write.Committed, head.Committed)
		}
	}()
	args := &proto.CloseArgs{Write: proto.WriteArgs{FH: fh, Offset: off, Count: uint32(len(data)), Stable: stable, Data: data}, Attr: sa}
	_, err = c.callResent(ctx, proto.ProgRegionFS, proto.VersRegionFS, proto.ProcRegionFSClose, args, res)
	var re *rpc.ReplyError
	if errors.As(err, &re) && re.Accepted &&
		(re.AcceptStat == rpc.ProcUnavail || re.AcceptStat == rpc.ProgUnavail || re.AcceptStat == rpc.ProgMismatch) {
		return res, fmt.Errorf("%w: %w", ErrNoProc, err)
	}
	return res, err
}

// ErrNoProc: the server does not have the procedure called.
var ErrNoProc = errors.New("nfs client: the server does not have the procedure")

// Mkdir creates a directory.
func (c *Client) Mkdir(ctx context.Context, dir proto.FH, name string, sa proto.Sattr) (*proto.CreateRes, error) {
	res := &proto.CreateRes{}
	return res, c.nfs(ctx, proto.ProcMkdir, &proto.MkdirArgs{Where: proto.DirOp{Dir: dir, Name: name}, Attr: sa}, res, &res.Status)
}

// Symlink creates a symbolic link.
func (c *Client) Symlink(ctx context.Context, dir proto.FH, name, target string, sa proto.Sattr) (*proto.CreateRes, error) {
	res := &proto.CreateRes{}
	args := &proto.SymlinkArgs{Where: proto.DirOp{Dir: dir, Name: name}, Attr: sa, Target: target}
	return res, c.nfs(ctx, proto.ProcSymlink, args, res, &res.Status)
}

// Mknod creates a device, socket or FIFO.
func (c *Client) Mknod(ctx context.Context, dir proto.FH, name string, typ proto.FileType, sa proto.Sattr, major, minor uint32) (*proto.CreateRes, error) {
	res := &proto.CreateRes{}
	args := &proto.MknodArgs{Where: proto.DirOp{Dir: dir, Name: name}, Type: typ, Attr: sa, Major: major, Minor: minor}
	return res, c.nfs(ctx, proto.ProcMknod, args, res, &res.Status)
}

// Remove removes a non-directory.
func (c *Client) Remove(ctx context.Context, dir proto.FH, name string) (*proto.WccRes, error) {
	res := &proto.WccRes{}
	return res, c.nfs(ctx, proto.ProcRemove, &proto.DirOp{Dir: dir, Name: name}, res, &res.Status)
}

// Rmdir removes an empty directory.
func (c *Client) Rmdir(ctx context.Context, dir proto.FH, name string) (*proto.WccRes, error) {
	res := &proto.WccRes{}
	return res, c.nfs(ctx, proto.ProcRmdir, &proto.DirOp{Dir: dir, Name: name}, res, &res.Status)
}

// Rename moves a name.
func (c *Client) Rename(ctx context.Context, fromDir proto.FH, from string, toDir proto.FH, to string) (*proto.RenameRes, error) {
	res := &proto.RenameRes{}
	args := &proto.RenameArgs{From: proto.DirOp{Dir: fromDir, Name: from}, To: proto.DirOp{Dir: toDir, Name: to}}
	return res, c.nfs(ctx, proto.ProcRename, args, res, &res.Status)
}

// Link makes a hard link.
func (c *Client) Link(ctx context.Context, fh, dir proto.FH, name string) (*proto.LinkRes, error) {
	res := &proto.LinkRes{}
	return res, c.nfs(ctx, proto.ProcLink, &proto.LinkArgs{FH: fh, Link: proto.DirOp{Dir: dir, Name: name}}, res, &res.Status)
}

// ReadDir reads one page of a directory.
func (c *Client) ReadDir(ctx context.Context, dir proto.FH, cookie uint64, verf [proto.CookieVerfSize]byte, count uint32) (*proto.ReadDirRes, error) {
	res := &proto.ReadDirRes{}
	args := &proto.ReadDirArgs{FH: dir, Cookie: cookie, Verf: verf, Count: min(count, c.readMax())}
	return res, c.nfs(ctx, proto.ProcReadDir, args, res, &res.Status)
}

// ReadDirPlus reads one page of a directory with attributes and handles.
func (c *Client) ReadDirPlus(ctx context.Context, dir proto.FH, cookie uint64, verf [proto.CookieVerfSize]byte, dirCount, maxCount uint32) (*proto.ReadDirPlusRes, error) {
	res := &proto.ReadDirPlusRes{}
	rtmax := c.readMax()
	args := &proto.ReadDirPlusArgs{FH: dir, Cookie: cookie, Verf: verf, DirCount: min(dirCount, rtmax), MaxCount: min(maxCount, rtmax)}
	return res, c.nfs(ctx, proto.ProcReadDirPlus, args, res, &res.Status)
}

// ReadDirAll lists a whole directory with READDIRPLUS, "." and ".."
// included.
func (c *Client) ReadDirAll(ctx context.Context, dir proto.FH) ([]proto.DirEntry, error) {
	var all []proto.DirEntry
	var cookie uint64
	var verf [proto.CookieVerfSize]byte
	for {
		res, err := c.ReadDirPlus(ctx, dir, cookie, verf, 64<<10, 256<<10)
		if err != nil {
			return all, err
		}
		all = append(all, res.Entries...)
		if res.EOF || len(res.Entries) == 0 {
			return all, nil
		}
		cookie, verf = res.Entries[len(res.Entries)-1].Cookie, res.Verf
	}
}

// FSStat returns space and inode counts.
func (c *Client) FSStat(ctx context.Context, fh proto.FH) (*proto.FSStatRes, error) {
	res := &proto.FSStatRes{}
	return res, c.nfs(ctx, proto.ProcFSStat, &proto.FHArgs{FH: fh}, res, &res.Status)
}

// FSInfo returns the server's transfer sizes and properties; the client
// keeps the sizes (limits.go).
func (c *Client) FSInfo(ctx context.Context, fh proto.FH) (*proto.FSInfoRes, error) {
	res := &proto.FSInfoRes{}
	err := c.nfs(ctx, proto.ProcFSInfo, &proto.FHArgs{FH: fh}, res, &res.Status)
	if err == nil {
		c.learn(res)
	}
	return res, err
}

// PathConf returns name and link limits.
func (c *Client) PathConf(ctx context.Context, fh proto.FH) (*proto.PathConfRes, error) {
	res := &proto.PathConfRes{}
	return res, c.nfs(ctx, proto.ProcPathConf, &proto.FHArgs{FH: fh}, res, &res.Status)
}

// Commit makes UNSTABLE writes durable.
func (c *Client) Commit(ctx context.Context, fh proto.FH, off uint64, count uint32) (*proto.CommitRes, error) {
	res := &proto.CommitRes{}
	return res, c.nfs(ctx, proto.ProcCommit, &proto.CommitArgs{FH: fh, Offset: off, Count: count}, res, &res.Status)
}
