package engine

// Replica is a file system as replication sees it: its journal (durable
// records, the durable mark, truncation, the keys touched after a fork),
// its replication state (mode, epochs, applied point, pins), snapshots
// and checksums of its replicated keys, applying records, sync chunks and
// resync ranges, promotion and fencing, and its blocks by id. Package
// replication uses this view, and the control plane for failover; NFS and
// the control plane use FS for everything else. It is what FS.Replica
// returns and is safe for concurrent use.
type Replica struct{ fs *FS }

// Replica returns the replication view of fs.
func (fs *FS) Replica() *Replica { return &Replica{fs: fs} }

// CheckSpace reports, with an error wrapping ErrNoSpace, whether applying
// need more bytes would be refused for lack of space (FS.CheckSpace).
func (rep *Replica) CheckSpace(need int64) error { return rep.fs.CheckSpace(need) }

// Mode is the file system's mode and epoch (FS.Mode).
func (rep *Replica) Mode() (Mode, uint64) { return rep.fs.Mode() }

// Usage is the space and files in use (FS.Usage).
func (rep *Replica) Usage() (Usage, error) { return rep.fs.Usage() }

// Replica returns the replication view of the file system name (Engine.FS
// then FS.Replica).
func (e *Engine) Replica(name string) (*Replica, error) {
	fs, err := e.FS(name)
	if err != nil {
		return nil, err
	}
	return fs.Replica(), nil
}
