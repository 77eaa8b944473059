package pebblekv

import (
	"errors"
	"strings"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// overwriteWAL is a vfs.FS whose new WAL files are written with zeros to
// size before Pebble gets them (Options.OverwriteWAL). Pebble's WAL
// reader ends the last log at its first chunk that is not of that log
// (zeros here, the records of the log it held before in a recycled
// file), and an older log at the EOF trailer Pebble wrote when it closed
// it: TestCrashOverwriteWAL.
type overwriteWAL struct {
	vfs.FS
	size int64
}

// walZeroChunk is the size of the writes that fill a new WAL file.
const walZeroChunk = 1 << 20

func (o overwriteWAL) Create(name string, cat vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := o.FS.Create(name, cat)
	if err != nil || !strings.HasSuffix(name, ".log") {
		return f, err
	}
	if err := f.Close(); err != nil {
		return nil, err
	}
	if f, err = o.FS.OpenReadWrite(name, cat); err != nil {
		return nil, err
	}
	if zerr := zeroFill(f, o.size); zerr != nil {
		// No room for it, or another failure: the log is appended to
		// as without this option (Create truncates it again).
		if err := f.Close(); err != nil {
			return nil, errors.Join(zerr, err)
		}
		return o.FS.Create(name, cat)
	}
	return f, nil
}

// zeroFill writes size zero bytes at the start of f and syncs them.
func zeroFill(f vfs.File, size int64) error {
	zero := make([]byte, walZeroChunk)
	for off := int64(0); off < size; off += walZeroChunk {
		if _, err := f.WriteAt(zero[:min(walZeroChunk, size-off)], off); err != nil {
			return err
		}
	}
	return f.Sync()
}
