package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"

	"github.com/regionfs/regionfs/internal/control"
	"github.com/regionfs/regionfs/internal/engine"
	"github.com/regionfs/regionfs/internal/engine/kv"
)

// pfxTarget starts the keys of the mount targets placed by the cluster:
// 't' mount-target-id → targetRecord (JSON), written by the node running
// the control plane (fenced by the region's lease).
const pfxTarget = 't'

func targetKey(id string) []byte { return append([]byte{pfxTarget}, id...) }

// targetRecord is a mount target's spec as the store keeps it: the
// engine's file system by name.
type targetRecord struct {
	ID           string                    `json:"id"`
	FileSystemID string                    `json:"fs"`
	Addr         netip.AddrPort            `json:"addr"`
	Ingress      []netip.Prefix            `json:"ingress,omitempty"`
	AccessPoints []control.AccessPointSpec `json:"access_points,omitempty"`
	ReadOnly     bool                      `json:"read_only,omitempty"`
	RequireTLS   bool                      `json:"require_tls,omitempty"`
}

func recordOf(mt control.MountTargetSpec) targetRecord {
	return targetRecord{ID: mt.ID, FileSystemID: mt.FileSystemID, Addr: mt.Addr, Ingress: mt.Ingress,
		AccessPoints: mt.AccessPoints, ReadOnly: mt.ReadOnly, RequireTLS: mt.RequireTLS}
}

func (r targetRecord) spec(fs *engine.FS) control.MountTargetSpec {
	return control.MountTargetSpec{ID: r.ID, FileSystemID: r.FileSystemID, Addr: r.Addr, FS: fs, Ingress: r.Ingress,
		AccessPoints: r.AccessPoints, ReadOnly: r.ReadOnly, RequireTLS: r.RequireTLS}
}

// Targets is the control plane's mount-target server on a region whose
// file systems are spread over nodes (control.MountTargetServer): the
// control plane, on the node holding the region's lease, starts, updates
// and stops mount targets through it; it records each in the shared store
// and serves it here only when this node serves the file system. Follow,
// on every node, serves the recorded mount targets of the file systems the
// node serves and stops the others, so a mount target's address follows
// its file system's owner (on one machine each mount target has its own
// loopback address; on a network, see the runbook: a floating address or
// DNS).
type Targets struct {
	kv    kv.Store
	local control.MountTargetServer
	eng   func() *engine.Engine
	log   *slog.Logger

	mu     sync.Mutex // guards served; held while local servers change
	served map[string]servedTarget
}

type servedTarget struct {
	rec targetRecord
	fs  *engine.FS
}

var _ control.MountTargetServer = (*Targets)(nil)

// NewTargets returns the cluster's mount-target server over store (the
// region's shared one), serving through local (the node's NFS servers) the
// file systems eng serves.
func NewTargets(store kv.Store, local control.MountTargetServer, eng func() *engine.Engine, log *slog.Logger) *Targets {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Targets{kv: store, local: local, eng: eng, log: log, served: map[string]servedTarget{}}
}

func (t *Targets) put(rec targetRecord) error {
	v, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	b := t.kv.NewBatch()
	defer b.Close()
	b.Set(targetKey(rec.ID), v)
	if err := b.Commit(true); err != nil {
		return fmt.Errorf("cluster: record mount target %s: %w", rec.ID, err)
	}
	return nil
}

// localFS returns the engine's file system when this node serves it.
func (t *Targets) localFS(mt control.MountTargetSpec) *engine.FS {
	if mt.FS != nil {
		return mt.FS
	}
	e := t.eng()
	if e == nil {
		return nil
	}
	fs, err := e.FS(mt.FileSystemID)
	if err != nil {
		return nil
	}
	return fs
}

// Start records mt and serves it when this node serves its file system.
func (t *Targets) Start(ctx context.Context, mt control.MountTargetSpec) error {
	rec := recordOf(mt)
	if err := t.put(rec); err != nil {
		return err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.serveLocked(ctx, rec, t.localFS(mt))
}

// Update records mt's new spec and applies it where it is served here.
func (t *Targets) Update(ctx context.Context, mt control.MountTargetSpec) error {
	rec := recordOf(mt)
	if err := t.put(rec); err != nil {
		return err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	s, ok := t.served[mt.ID]
	if !ok {
		return nil
	}
	if err := t.local.Update(ctx, rec.spec(s.fs)); err != nil {
		return err
	}
	t.served[mt.ID] = servedTarget{rec: rec, fs: s.fs}
	return nil
}

// Stop forgets the mount target and stops serving it here.
func (t *Targets) Stop(ctx context.Context, id string) error {
	b := t.kv.NewBatch()
	defer b.Close()
	b.Delete(targetKey(id))
	if err := b.Commit(true); err != nil {
		return fmt.Errorf("cluster: forget mount target %s: %w", id, err)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.stopLocked(ctx, id)
}

// Flush flushes the buffered writes of the file system's mount targets
// served here. Those another node serves are not reached: a planned
// failover of a spread region's file system is not supported yet.
func (t *Targets) Flush(ctx context.Context, fsID string) error {
	return t.local.Flush(ctx, fsID)
}

// serveLocked serves rec with fs here (nil: stops serving it here).
func (t *Targets) serveLocked(ctx context.Context, rec targetRecord, fs *engine.FS) error {
	s, ok := t.served[rec.ID]
	switch {
	case fs == nil:
		return t.stopLocked(ctx, rec.ID)
	case ok && s.fs == fs:
		if err := t.local.Update(ctx, rec.spec(fs)); err != nil {
			return err
		}
	default:
		if ok {
			// The file system was detached and attached again here: a new
			// engine file system behind the same mount target.
			if err := t.stopLocked(ctx, rec.ID); err != nil {
				return err
			}
		}
		if err := t.local.Start(ctx, rec.spec(fs)); err != nil {
			return err
		}
		t.log.Info("mount target served here", "mount_target", rec.ID, "fs_id", rec.FileSystemID, "addr", rec.Addr)
	}
	t.served[rec.ID] = servedTarget{rec: rec, fs: fs}
	return nil
}

func (t *Targets) stopLocked(ctx context.Context, id string) error {
	s, ok := t.served[id]
	if !ok {
		return nil
	}
	delete(t.served, id)
	if err := t.local.Stop(ctx, id); err != nil {
		return err
	}
	t.log.Info("mount target no longer served here", "mount_target", id, "fs_id", s.rec.FileSystemID)
	return nil
}

// Follow serves every recorded mount target whose file system this node
// serves and stops the others (called after the node's domains changed,
// and every round).
func (t *Targets) Follow(ctx context.Context) error {
	recs := map[string]targetRecord{}
	p := []byte{pfxTarget}
	it, err := t.kv.NewIter(p, []byte{pfxTarget + 1})
	if err != nil {
		return fmt.Errorf("cluster: list mount targets: %w", err)
	}
	for ok := it.First(); ok; ok = it.Next() {
		v, err := it.Value()
		if err != nil {
			it.Close()
			return fmt.Errorf("cluster: list mount targets: %w", err)
		}
		var rec targetRecord
		if err := json.Unmarshal(v, &rec); err != nil {
			t.log.Warn("unreadable mount target record", "key", string(it.Key()), "err", err)
			continue
		}
		recs[rec.ID] = rec
	}
	if err := it.Close(); err != nil {
		return fmt.Errorf("cluster: list mount targets: %w", err)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	var errs []error
	for id := range t.served {
		if _, ok := recs[id]; !ok {
			errs = append(errs, t.stopLocked(ctx, id))
		}
	}
	for _, rec := range recs {
		fs := t.localFS(control.MountTargetSpec{FileSystemID: rec.FileSystemID})
		if s, ok := t.served[rec.ID]; ok && s.fs == fs && fs != nil {
			continue
		}
		if err := t.serveLocked(ctx, rec, fs); err != nil {
			errs = append(errs, fmt.Errorf("mount target %s: %w", rec.ID, err))
		}
	}
	return errors.Join(errs...)
}

// Serving lists the mount targets served here.
func (t *Targets) Serving() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]string, 0, len(t.served))
	for id := range t.served {
		out = append(out, id)
	}
	return out
}
