package replication

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/regionfs/regionfs/internal/engine/kv"
)

// Progress is what one end of a replication has done, kept across restarts
// of its region so that its status does not start from zero: the shipped
// and applied counters, and the last initial sync or resync once it ended.
type Progress struct {
	ShippedRecords uint64
	ShippedBytes   uint64
	ShippedBlocks  uint64
	AppliedRecords uint64
	// Sync is the last initial sync or resync that finished (Done), or
	// zero.
	Sync SyncProgress
	// LastReplicated is Status.LastReplicated as last saved: a restarted
	// destination reports it (or its replica's applied time, if newer)
	// until its source is heard again, never none; a restarted source
	// reports it until its destination answers (AddOutbound).
	LastReplicated time.Time `json:",omitzero"`
	// Released (a source's): the retention limits released the
	// destination's journal pin and it needs a resync; saved durably
	// before the pin is cleared, and until a resync begins. A record
	// without it (older) reads as not released.
	Released bool `json:",omitzero"`
}

// ProgressStore keeps Progress by role and replication id. Saves need not
// be durable: a crash loses at most the last few seconds of counting.
type ProgressStore interface {
	LoadProgress(role Role, id string) (Progress, bool, error)
	SaveProgress(role Role, id string, p Progress, durable bool) error
	DeleteProgress(role Role, id string) error
}

// progressSaveInterval is how often changed progress is saved.
const progressSaveInterval = 5 * time.Second

// KVProgress is a ProgressStore in a region's metadata store, under
// 'r' 'p' role id (JSON).
func KVProgress(s kv.Store) ProgressStore { return kvProgress{s} }

type kvProgress struct{ s kv.Store }

func progressKey(role Role, id string) []byte { return []byte("rp" + string(role[0]) + id) }

func (k kvProgress) LoadProgress(role Role, id string) (Progress, bool, error) {
	v, err := k.s.Get(progressKey(role, id))
	if errors.Is(err, kv.ErrNotFound) {
		return Progress{}, false, nil
	}
	if err != nil {
		return Progress{}, false, err
	}
	var p Progress
	if err := json.Unmarshal(v, &p); err != nil {
		return Progress{}, false, fmt.Errorf("replication: progress of %s: %w", id, err)
	}
	return p, true, nil
}

func (k kvProgress) SaveProgress(role Role, id string, p Progress, durable bool) error {
	v, err := json.Marshal(p)
	if err != nil {
		return err
	}
	b := k.s.NewBatch()
	defer b.Close()
	b.Set(progressKey(role, id), v)
	return b.Commit(durable)
}

func (k kvProgress) DeleteProgress(role Role, id string) error {
	b := k.s.NewBatch()
	defer b.Close()
	b.Delete(progressKey(role, id))
	return b.Commit(false)
}

// progressOf is the part of a status that is kept.
func progressOf(st Status) Progress {
	p := Progress{ShippedRecords: st.ShippedRecords, ShippedBytes: st.ShippedBytes, ShippedBlocks: st.ShippedBlocks,
		AppliedRecords: st.AppliedRecords}
	if st.Sync.Done && !st.Sync.Active {
		p.Sync = st.Sync
	}
	p.LastReplicated = st.LastReplicated
	p.Released = st.released
	return p
}

// restore seeds a new status with kept progress (the counters and the
// last sync: AddOutbound reads Released, with what it implies).
func (p Progress) restore(st *Status) {
	st.ShippedRecords, st.ShippedBytes, st.ShippedBlocks = p.ShippedRecords, p.ShippedBytes, p.ShippedBlocks
	st.AppliedRecords = p.AppliedRecords
	if p.Sync.Done {
		st.Sync = p.Sync
	}
}

// loadProgress returns the kept progress of a replication end (zero when
// none is kept or no store is configured).
func (n *Node) loadProgress(role Role, id string) Progress {
	if n.opts.Progress == nil {
		return Progress{}
	}
	p, _, err := n.opts.Progress.LoadProgress(role, id)
	if err != nil {
		n.log.Warn("replication progress not restored", "replication", id, "err", err)
	}
	return p
}

// saveProgress keeps the progress of the status st returns when it changed
// since the last save (durable: at the end of a sync, and the retention
// limits' release mark, so that a crash does not lose them). st is read
// under the lock that orders the saves: a periodic save cannot write an
// older status over a newer one saved meanwhile (the release mark saved
// durably, then cleared again by a save whose status was read before
// it). The error is logged, and returned for the callers that act on it.
func (n *Node) saveProgress(role Role, id string, st func() Status, durable bool) error {
	if n.opts.Progress == nil {
		return nil
	}
	key := string(role) + "/" + id
	n.progressMu.Lock()
	defer n.progressMu.Unlock()
	p := progressOf(st())
	if last, ok := n.progressSaved[key]; ok && last == p && !durable {
		return nil
	}
	if err := n.opts.Progress.SaveProgress(role, id, p, durable); err != nil {
		n.log.Warn("replication progress not saved", "replication", id, "durable", durable, "err", err)
		return err
	}
	n.progressSaved[key] = p
	return nil
}

func (n *Node) forgetProgress(role Role, id string) {
	if n.opts.Progress == nil {
		return
	}
	n.progressMu.Lock()
	delete(n.progressSaved, string(role)+"/"+id)
	n.progressMu.Unlock()
	if err := n.opts.Progress.DeleteProgress(role, id); err != nil {
		n.log.Warn("replication progress not removed", "replication", id, "err", err)
	}
}

// saveAllProgress saves the progress of every replication end that
// changed.
func (n *Node) saveAllProgress() {
	n.mu.Lock()
	outs, ins := n.endsLocked()
	n.mu.Unlock()
	for _, o := range outs {
		n.saveProgress(RoleSource, o.spec.ID, o.snapshot, false)
	}
	for _, in := range ins {
		n.saveProgress(RoleDestination, in.spec.ID, in.snapshot, false)
	}
}

func (n *Node) progressLoop() {
	n.every(progressSaveInterval, n.saveAllProgress)
}
