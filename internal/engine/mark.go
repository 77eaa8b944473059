package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/regionfs/regionfs/internal/engine/kv"
)

// Marks are small replicated values outside the file tree (a drill's
// canary). A mark is committed like any change of a primary: journaled,
// shipped and applied in order, so a replica holds a mark exactly when it
// holds every change committed before it. Marks are not visible over NFS.
// Their keys are meta keys "mark/<name>".

// Limits of marks.
const (
	MaxMarkName  = 64
	MaxMarkValue = 1024
	markPrefix   = "mark/"
)

// Mark commits value under name on a primary (ErrReadOnly on a replica or
// a fenced file system) and returns the seq of its journal record and its
// commit time.
func (rep *Replica) Mark(ctx context.Context, name string, value []byte) (uint64, time.Time, error) {
	fs := rep.fs
	if name == "" || len(name) > MaxMarkName || len(value) > MaxMarkValue {
		return 0, time.Time{}, fmt.Errorf("engine: mark %q: %w", name, ErrInvalid)
	}
	var at time.Time
	seq, err := fs.doOp(ctx, &op{kind: opMutate, name: "mark", fn: func(tx *txn) error {
		tx.set(metaKey(markPrefix+name), value)
		tx.note(nil, name)
		at = tx.now
		return nil
	}})
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("engine: mark %s %q: %w", fs.name, name, err)
	}
	return seq, at, nil
}

// ReadMark returns the value of a mark as the file system holds it now
// (ErrNotFound when it holds none).
func (rep *Replica) ReadMark(name string) ([]byte, error) {
	fs := rep.fs
	v := fs.readView()
	defer v.close()
	b, err := v.r.Get(metaKey(markPrefix + name))
	if errors.Is(err, kv.ErrNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fs.corrupt(err)
	}
	return b, nil
}
