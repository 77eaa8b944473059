package nfs

import (
	"context"
	"errors"

	"github.com/regionfs/regionfs/internal/engine"
	"github.com/regionfs/regionfs/internal/nfs/proto"
)

// statusTable maps errors to nfsstat3, in order: the first entry whose
// error matches (errors.Is) wins. Context errors come first (the server
// is shutting down or the request outlived its deadline: the client should
// retry), then this package's own errors, then the engine's sentinels; an
// unknown error is a server fault.
var statusTable = []struct {
	err    error
	status proto.Status
}{
	{context.Canceled, proto.ErrJukebox},
	{context.DeadlineExceeded, proto.ErrJukebox},
	{errBadHandle, proto.ErrBadHandle},
	{errForged, proto.ErrBadHandle},
	{errStaleExport, proto.ErrStale},
	{errExportDir, proto.ErrStale},
	{errNotAllowed, proto.ErrAcces},
	{errTLSRequired, proto.ErrAcces},
	{errNoExport, proto.ErrNoEnt},
	{errROFS, proto.ErrROFS},
	{errBadName, proto.ErrAcces},
	{errTooSmall, proto.ErrTooSmall},
	{engine.ErrStale, proto.ErrStale},
	{engine.ErrFSNotFound, proto.ErrStale},
	{engine.ErrReadOnly, proto.ErrROFS},
	{engine.ErrNotFound, proto.ErrNoEnt},
	{engine.ErrExist, proto.ErrExist},
	{engine.ErrNotEmpty, proto.ErrNotEmpty},
	{engine.ErrNotDir, proto.ErrNotDir},
	{engine.ErrIsDir, proto.ErrIsDir},
	{engine.ErrNameTooLong, proto.ErrNameTooLong},
	{engine.ErrPermission, proto.ErrAcces},
	{engine.ErrNotPermitted, proto.ErrPerm},
	{engine.ErrTooManyLinks, proto.ErrMLink},
	{engine.ErrFileTooBig, proto.ErrFBig},
	{engine.ErrNoSpace, proto.ErrNoSpc},
	{engine.ErrBadCookie, proto.ErrBadCookie},
	{engine.ErrNotSync, proto.ErrNotSync},
	{engine.ErrBadType, proto.ErrBadType},
	{engine.ErrInvalid, proto.ErrInval},
	{engine.ErrTooLarge, proto.ErrFBig},
	{engine.ErrFSBusy, proto.ErrJukebox},
	{engine.ErrNotReady, proto.ErrJukebox}, // a replica before its first consistent point
	{engine.ErrClosed, proto.ErrJukebox},
	// Another node of the region took the file system over (or serves
	// it): nothing was applied here; the client retries and reaches the
	// owner once the mount target's address moved to it.
	{engine.ErrFenced, proto.ErrJukebox},
	{engine.ErrElsewhere, proto.ErrJukebox},
	{engine.ErrKeyUnavailable, proto.ErrIO}, // the file system's KMS key is disabled or deleted
	{engine.ErrCorrupt, proto.ErrIO},
	{engine.ErrIO, proto.ErrIO},
	{engine.ErrFatal, proto.ErrIO},
}

// Errors of this package that map to NFS statuses.
var (
	errStaleExport = errors.New("nfs: the export that issued this handle is gone")
	errNotAllowed  = errors.New("nfs: client not allowed by the export")
	errTLSRequired = errors.New("nfs: the export requires TLS (the file system policy denies plain-text access)")
	errROFS        = errors.New("nfs: read-only export")
	errBadName     = errors.New("nfs: invalid file name")
	errTooSmall    = errors.New("nfs: reply size too small for one entry")
)

// statusOf maps err to an nfsstat3.
func statusOf(err error) proto.Status {
	if err == nil {
		return proto.OK
	}
	for _, e := range statusTable {
		if errors.Is(err, e.err) {
			return e.status
		}
	}
	return proto.ErrServerFault
}

// mountStatusOf maps err to a mountstat3.
func mountStatusOf(err error) proto.MountStatus {
	switch statusOf(err) {
	case proto.OK:
		return proto.MountOK
	case proto.ErrNoEnt, proto.ErrStale:
		return proto.MountErrNoEnt
	case proto.ErrAcces:
		return proto.MountErrAcces
	case proto.ErrPerm:
		return proto.MountErrPerm
	case proto.ErrNotDir:
		return proto.MountErrNotDir
	case proto.ErrInval:
		return proto.MountErrInval
	case proto.ErrNameTooLong:
		return proto.MountErrNameTooLong
	case proto.ErrIO:
		return proto.MountErrIO
	}
	return proto.MountErrServerFault
}
