package engine

import (
	"errors"
	"fmt"
)

// Sentinel errors. Callers test them with errors.Is; the NFS and API edges
// map them to protocol errors in one ordered table each.
var (
	ErrNotFound     = errors.New("no such file or directory") // ENOENT
	ErrExist        = errors.New("file exists")               // EEXIST
	ErrNotEmpty     = errors.New("directory not empty")       // ENOTEMPTY
	ErrNotDir       = errors.New("not a directory")           // ENOTDIR
	ErrIsDir        = errors.New("is a directory")            // EISDIR
	ErrInvalid      = errors.New("invalid argument")          // EINVAL
	ErrNameTooLong  = errors.New("file name too long")        // ENAMETOOLONG
	ErrPermission   = errors.New("permission denied")         // EACCES
	ErrNotPermitted = errors.New("operation not permitted")   // EPERM
	ErrTooManyLinks = errors.New("too many links")            // EMLINK
	ErrFileTooBig   = errors.New("file too large")            // EFBIG
	ErrStale        = errors.New("stale file handle")         // ESTALE
	ErrNoSpace      = errors.New("no space left on device")   // ENOSPC
	ErrReadOnly     = errors.New("read-only file system")     // EROFS
	ErrCorrupt      = errors.New("corrupt data")              // EIO, counted
	ErrIO           = errors.New("input/output error")        // EIO
	ErrBadCookie    = errors.New("stale readdir cookie")      // NFS3ERR_BAD_COOKIE
	ErrClosed       = errors.New("engine closed")             // shutting down
	ErrFatal        = errors.New("engine stopped after a fatal storage error")
	ErrTooLarge     = errors.New("transaction exceeds the maximum record size")

	// File-system level.
	ErrFSNotFound = errors.New("file system not found")
	ErrFSExist    = errors.New("file system already exists")
	ErrFSBusy     = errors.New("file system busy")
	// ErrKeyUnavailable: the KMS key of an encrypted file system is
	// disabled, pending deletion or deleted; its data cannot be read or
	// written until the key is usable again (never read as garbage).
	ErrKeyUnavailable = errors.New("the file system's KMS key is unavailable")

	// Replication level.
	ErrNotReplica    = errors.New("file system is not a replica")
	ErrEpoch         = errors.New("record from a superseded epoch")
	ErrGap           = errors.New("journal record out of order")
	ErrMissingBlocks = errors.New("referenced blocks are missing")
	ErrTruncated     = errors.New("journal records were truncated")
	// ErrNotReady: a replica has no consistent state to show yet (initial
	// sync in progress); NFS answers NFS3ERR_JUKEBOX.
	ErrNotReady = errors.New("replica not yet consistent")
	// ErrNoState: a replica holds no superblock yet (a new one, or one
	// whose initial sync has not reached it): it cannot be resynced.
	ErrNoState = fmt.Errorf("replica holds no state yet: %w", ErrInvalid)
)

// Errors of individual operations.
var (
	ErrNotSync = errors.New("guard attributes do not match") // NFS3ERR_NOT_SYNC
	ErrBadType = errors.New("bad file type for this call")   // NFS3ERR_BADTYPE
)

// ErrPaused: the applier is stopped at a seq (stopApplyAt, in tests).
var ErrPaused = errors.New("applier paused")
