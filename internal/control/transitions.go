package control

import (
	"context"
	"errors"
	"time"

	"github.com/regionfs/regionfs/internal/engine"
)

// retryDelay is how long the worker waits after a failed transition;
// maxSleep bounds its sleep while a transition is pending, so that a clock
// that jumps ahead is noticed.
const (
	retryDelay = time.Second
	maxSleep   = 500 * time.Millisecond
)

// run is the transition worker: it moves resources out of transitional
// states once the transition delay has passed since they entered them,
// and deletes the engine state of deleted file systems.
func (r *Region) run() {
	defer close(r.done)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-r.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	for {
		next := r.step(ctx)
		var wake <-chan time.Time
		var timer *time.Timer
		if !next.IsZero() {
			timer = time.NewTimer(min(max(0, next.Sub(r.now())), maxSleep))
			wake = timer.C
		}
		select {
		case <-r.stop:
			if timer != nil {
				timer.Stop()
			}
			return
		case <-r.kick:
		case <-wake:
		}
		if timer != nil {
			timer.Stop()
		}
	}
}

// step performs every transition that is due and returns when the next one
// will be (zero when none is pending).
func (r *Region) step(ctx context.Context) time.Time {
	var next time.Time
	later := func(t time.Time) {
		if next.IsZero() || t.Before(next) {
			next = t
		}
	}
	r.mu.Lock()
	now := r.now()
	due := func(since time.Time) bool {
		at := since.Add(r.o.TransitionDelay)
		if at.After(now) {
			later(at)
			return false
		}
		return true
	}
	t := r.begin()
	var purge []*fsRecord
	for _, f := range sortedValues(r.fss) {
		n := *f
		changed := false
		switch f.State {
		case StateCreating, StateUpdating:
			if _, err := r.o.Engine.FS(f.ID); err != nil && !errors.Is(err, engine.ErrElsewhere) {
				later(now.Add(retryDelay)) // a copy still being cloned
			} else if due(f.Since) {
				n.State, n.Since, changed = StateAvailable, now, true
			}
		case StateDeleting:
			if !r.purging[f.ID] && due(f.Since) {
				r.purging[f.ID] = true
				purge = append(purge, f)
			}
		}
		switch f.Backup {
		case BackupEnabling, BackupDisabling:
			if due(f.BackupSince) {
				n.Backup, n.BackupSince, changed = map[string]string{BackupEnabling: BackupEnabled, BackupDisabling: BackupDisabled}[f.Backup], now, true
			}
		}
		if changed {
			t.putFS(&n)
		}
	}
	for _, m := range sortedValues(r.mts) {
		switch m.State {
		case StateCreating:
			if due(m.Since) {
				n := *m
				n.State, n.Since = StateAvailable, now
				t.putMT(&n)
			}
		case StateDeleting:
			if !r.stopping[m.ID] && due(m.Since) {
				t.deleteMT(m)
			}
		}
	}
	for _, a := range sortedValues(r.aps) {
		if f := r.fss[a.FileSystemID]; f != nil && f.State == StateDeleting {
			continue // removed with its file system
		}
		switch a.State {
		case StateCreating:
			if due(a.Since) {
				n := *a
				n.State, n.Since = StateAvailable, now
				t.putAP(&n)
			}
		case StateDeleting:
			if due(a.Since) {
				t.deleteAP(a)
			}
		}
	}
	if err := t.commit(); err != nil {
		r.log.Error("control transitions not recorded; retrying", "err", err)
		later(now.Add(retryDelay))
	}
	r.mu.Unlock()

	for _, f := range purge {
		if err := r.purge(ctx, f); err != nil {
			if ctx.Err() == nil {
				r.log.Error("file system not deleted; retrying", "fs_id", f.ID, "err", err)
			}
			later(r.now().Add(retryDelay))
		}
	}
	return next
}

// purge deletes a file system's engine state (outside the lock: it may
// take a while), then its record and its access points.
func (r *Region) purge(ctx context.Context, f *fsRecord) error {
	err := r.o.Engine.DeleteFS(ctx, f.ID)
	if errors.Is(err, engine.ErrFSNotFound) {
		err = nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.purging, f.ID)
	if err != nil {
		return err
	}
	t := r.begin()
	t.deleteFS(f)
	for _, a := range r.aps {
		if a.FileSystemID == f.ID {
			t.deleteAP(a)
		}
	}
	if err := t.commit(); err != nil {
		return err
	}
	r.log.Info("file system deleted", "fs_id", f.ID)
	return nil
}

// recreateEngineFileSystems creates the engine file systems of records a
// crash left between their durable record and their engine creation.
func (r *Region) recreateEngineFileSystems(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	names := map[string]bool{}
	for _, n := range r.o.Engine.Names() {
		names[n] = true
	}
	for _, f := range sortedValues(r.fss) {
		if names[f.ID] || f.State == StateDeleting {
			continue
		}
		var err error
		switch {
		case f.CopyOf != "" || f.CloneOf != "":
			// A copy whose clone did not finish: the engine discarded it.
			err = errors.New("the copy did not finish before a restart")
		case f.Replica:
			_, err = r.o.Engine.CreateReplica(ctx, f.ID, f.KMSKeyID)
		default:
			_, err = r.o.Engine.CreateFS(ctx, f.ID, engine.FSOptions{KMSKeyID: f.KMSKeyID})
		}
		n := *f
		if err != nil {
			r.log.Error("file system has no engine file system", "fs_id", f.ID, "err", err)
			n.State, n.Since = StateError, r.now()
		} else {
			r.log.Info("engine file system created after a restart", "fs_id", f.ID)
		}
		t := r.begin()
		t.putFS(&n)
		if err := t.commit(); err != nil {
			return err
		}
	}
	return nil
}
