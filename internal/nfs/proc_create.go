package nfs

import (
	"encoding/binary"
	"errors"

	"github.com/regionfs/regionfs/internal/engine"
	"github.com/regionfs/regionfs/internal/nfs/proto"
)

// procCreate serves CREATE: UNCHECKED (an existing regular file is
// reused, truncated if a size is given), GUARDED (NFS3ERR_EXIST if the
// name exists) and EXCLUSIVE (the verifier is kept in the inode, so the
// client's retransmission succeeds and anyone else's create fails).
func procCreate(r *request) (proto.Message, error) {
	var a proto.CreateArgs
	if err := r.decode(&a); err != nil {
		return nil, err
	}
	var how engine.CreateMode
	var sa engine.SetAttr
	var verf uint64
	switch a.Mode {
	case proto.Unchecked:
		how, sa = engine.CreateUnchecked, sattr(&a.Attr)
	case proto.Guarded:
		how, sa = engine.CreateGuarded, sattr(&a.Attr)
	case proto.Exclusive:
		how, verf = engine.CreateExclusive, binary.BigEndian.Uint64(a.Verf[:])
	}
	return r.create("CREATE", a.Where, how, sa, verf, false), nil
}

// create makes the regular file of a CREATE or REGIONFS_CREATE.
//
// A create that no check before the engine refuses and that truncates no
// existing file does not read the directory's attributes first: the
// engine checks the handle's generation in the transaction that reads the
// directory anyway (CreateGen), and its result carries the directory's
// attributes before and after (one store read less per file in the
// create probe of issue 16, counted by TestCreateProbeStoreReads). Only a
// refused one reads them, for its reply and to answer what the general
// path would have: a stale handle before the engine's refusal.
//
// visible answers the create once it is readable, before its sync
// (engine.FS.CreateVisible: REGIONFS_CREATE_VISIBLE); a create that takes
// the general path (one that fails before the engine) never gets there.
func (r *request) create(op string, where proto.DirOp, how engine.CreateMode, sa engine.SetAttr, verf uint64, visible bool) *proto.CreateRes {
	t, err := r.resolve(where.Dir)
	if err != nil {
		return r.createReply(op, nil, engine.Attr{}, engine.Entry{}, err)
	}
	truncates := how == engine.CreateUnchecked && sa.Size != nil
	if !truncates && t.writable() == nil && checkNewName(where.Name) == nil {
		create := t.fs.CreateGen
		if visible {
			create = t.fs.CreateVisible
		}
		ent, err := create(r.ctx, t.cred, t.h.ino, t.h.gen, where.Name, how, sa, verf)
		if err != nil {
			dir, serr := t.stat(r.ctx, r.s)
			if serr != nil {
				err = serr
			}
			return r.createReply(op, t, dir, ent, err)
		}
		if sa.Size != nil {
			r.s.wb.truncated(t.fs, ent.Attr.Ino, *sa.Size)
		}
		return r.createReply(op, t, engine.Attr{}, ent, nil)
	}
	t, dir, err := r.dirChecks(t, where.Name, true)
	var ent engine.Entry
	if err == nil {
		if how == engine.CreateUnchecked && sa.Size != nil {
			// Truncating an existing file: its buffered data goes first.
			err = r.commitExisting(t, dir, where.Name)
		}
		if err == nil {
			ent, err = t.fs.Create(r.ctx, t.cred, t.h.ino, where.Name, how, sa, verf)
		}
		if err == nil && sa.Size != nil {
			r.s.wb.truncated(t.fs, ent.Attr.Ino, *sa.Size)
		}
	}
	return r.createReply(op, t, dir, ent, err)
}

// commitExisting makes the buffered data of an existing file in dir durable
// before a CREATE truncates it. A create the engine will refuse (the
// caller may not write the directory or the file) is left to refuse with
// the data still buffered: writing it would give the file new times.
func (r *request) commitExisting(t *target, dir engine.Attr, name string) error {
	at, err := t.fs.Lookup(r.ctx, t.cred, t.h.ino, name)
	if errors.Is(err, engine.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if at.Type != engine.TypeRegular || !r.s.wb.has(t.fs, at.Ino) {
		return nil
	}
	const dirWrite = engine.AccessWrite | engine.AccessExec
	if t.cred.Granted(&dir)&dirWrite != dirWrite || t.fs.MayWrite(r.ctx, t.cred, at.Ino) != nil {
		return nil
	}
	return r.s.wb.settle(r.ctx, t.fs, at.Ino)
}
