package engine

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// SetAttr says which attributes to change; nil fields stay as they are.
type SetAttr struct {
	Mode  *uint32
	UID   *uint32
	GID   *uint32
	Size  *uint64
	Atime *TimeSet
	Mtime *TimeSet
}

// TimeSet sets a time to a value or, with ServerTime, to the server's now.
type TimeSet struct {
	ServerTime bool
	Time       time.Time
}

// CreateMode is how Create treats an existing name.
type CreateMode uint8

const (
	// CreateUnchecked reuses an existing regular file (applying Size).
	CreateUnchecked CreateMode = iota
	// CreateGuarded fails with ErrExist when the name exists.
	CreateGuarded
	// CreateExclusive stores a verifier: a retry with the same verifier
	// succeeds (until the file is changed), anything else fails with
	// ErrExist. The verifier is kept apart from the attributes, so the
	// file is made with the ones given (regionfs's own exclusive create,
	// as NFSv4.1's EXCLUSIVE4_1; a size is refused with ErrInvalid);
	// without a mode (an NFSv3 EXCLUSIVE CREATE, which carries no
	// attributes) it is made private, mode 0, and its creator then sets
	// the mode it wants.
	CreateExclusive
)

// DirChange holds a directory's attributes before and after an operation
// (NFS weak cache consistency data).
type DirChange struct {
	Before Attr
	After  Attr
}

// Entry is the result of an operation that creates a name.
type Entry struct {
	Attr Attr
	Dir  DirChange
	// Created is false when Create found the file it was asked to create
	// (unchecked, or an exclusive retry).
	Created bool
}

// Create creates a regular file.
func (fs *FS) Create(ctx context.Context, cred Cred, dir uint64, name string, how CreateMode, sa SetAttr, verifier uint64) (Entry, error) {
	return fs.create(ctx, cred, dir, genWant{}, name, how, sa, verifier, false)
}

// CreateGen is Create in directory dir only while its generation is
// dirGen: ErrStale otherwise, as for a directory that is gone. An NFS
// server's file handle names an inode and its generation; checked here,
// in the transaction that reads the directory anyway, the server need not
// read the directory's attributes before the create (one store read less
// per CREATE: the create probe of issue 16).
func (fs *FS) CreateGen(ctx context.Context, cred Cred, dir, dirGen uint64, name string, how CreateMode, sa SetAttr, verifier uint64) (Entry, error) {
	return fs.create(ctx, cred, dir, genIs(dirGen), name, how, sa, verifier, false)
}

// CreateVisible is CreateGen answered once the create is readable, before
// its sync: anyone reads the file from then on, and it becomes durable
// with its group, before any later change is answered durable (groups are
// durable in order), or when SyncVisible returns. A crash before then
// loses it; its (inode, generation) is then never handed out again, so
// a handle of it is stale after the restart: when the generation's boot
// counter is not durable yet (the first creates after an open), the
// answer waits for the sync (txn.genDurable).
func (fs *FS) CreateVisible(ctx context.Context, cred Cred, dir, dirGen uint64, name string, how CreateMode, sa SetAttr, verifier uint64) (Entry, error) {
	return fs.create(ctx, cred, dir, genIs(dirGen), name, how, sa, verifier, true)
}

// genWant is the generation an operation expects of an inode: any (the
// zero value: no check), or one.
type genWant struct {
	check bool
	gen   uint64
}

// genIs expects generation gen.
func genIs(gen uint64) genWant { return genWant{check: true, gen: gen} }

// match is ErrStale when n's generation is not the one expected.
func (w genWant) match(ino uint64, n *inode) error {
	if w.check && n.gen != w.gen {
		return fmt.Errorf("inode %d generation %d, expected %d: %w", ino, n.gen, w.gen, ErrStale)
	}
	return nil
}

func (fs *FS) create(ctx context.Context, cred Cred, dir uint64, dirGen genWant, name string, how CreateMode, sa SetAttr, verifier uint64, visible bool) (Entry, error) {
	var res Entry
	durable := false // the answer waits for the sync (set by the transaction)
	if how == CreateExclusive && sa.Size != nil {
		return Entry{}, fmt.Errorf("engine: exclusive create with a size: %w", ErrInvalid)
	}
	if err := fs.e.admit(metaBytes); err != nil {
		return Entry{}, err
	}
	o := &op{kind: opMutate, name: "create", lazy: visible, fn: func(tx *txn) error {
		dn, d, found, err := tx.prepareCreateGen(cred, dir, dirGen, name)
		if err != nil {
			return err
		}
		before := dn.attr(dir)
		if found {
			n, err := tx.inode(d.ino)
			if err != nil {
				return err
			}
			switch {
			case how == CreateGuarded:
				return ErrExist
			case how == CreateExclusive:
				if n.typ != TypeRegular || n.flags&flagExclVer == 0 || n.verifier != verifier {
					return ErrExist
				}
			case n.typ == TypeDir:
				return ErrIsDir
			case n.typ != TypeRegular:
				return ErrExist
			case sa.Size != nil:
				if !cred.mayData(n, AccessWrite) {
					return ErrPermission
				}
				if err := tx.truncate(d.ino, n, *sa.Size); err != nil {
					return err
				}
				tx.putInode(d.ino, n)
			}
			res = Entry{Attr: n.attr(d.ino), Dir: DirChange{Before: before, After: before}}
			return nil
		}
		// An exclusive create without a mode (NFSv3's carries no
		// attributes) makes its file private (mode 0, as Linux's nfsd
		// makes it) until its creator sets them.
		mode := uint32(0o644)
		switch {
		case sa.Mode != nil:
			mode = *sa.Mode
		case how == CreateExclusive:
			mode = 0
		}
		n, ino, err := tx.create(cred, dir, dn, name, TypeRegular, mode)
		if err != nil {
			return err
		}
		durable = !tx.genDurable()
		tx.needSync = durable
		if err := tx.applyCreateAttrs(cred, ino, n, sa); err != nil {
			return err
		}
		if how == CreateExclusive {
			// After the attributes: a change clears the flag (touch).
			n.verifier, n.flags = verifier, n.flags|flagExclVer
		}
		res = tx.putCreated(ino, n, dir, dn, before)
		return nil
	}}
	if !visible {
		_, err := fs.doOp(ctx, o)
		return res, err
	}
	if _, err := fs.doVisible(ctx, o); err != nil {
		return res, err
	}
	if durable {
		<-o.done
		return res, o.err
	}
	return res, nil
}

// Mkdir creates a directory.
func (fs *FS) Mkdir(ctx context.Context, cred Cred, dir uint64, name string, sa SetAttr) (Entry, error) {
	mode := uint32(0o755)
	if sa.Mode != nil {
		mode = *sa.Mode
	}
	return fs.makeNode(ctx, "mkdir", cred, dir, name, TypeDir, mode, sa, nil, func(dn *inode) error {
		if dn.nlink >= MaxLinks {
			return ErrTooManyLinks
		}
		return nil
	}, func(n, dn *inode) {
		n.nlink, n.parent, n.nextCookie = 2, dir, 1
		dn.nlink++
	})
}

// Symlink creates a symbolic link to target. The server never follows it.
func (fs *FS) Symlink(ctx context.Context, cred Cred, dir uint64, name, target string, sa SetAttr) (Entry, error) {
	sa.Mode = nil
	return fs.makeNode(ctx, "symlink", cred, dir, name, TypeSymlink, 0o777, sa, func() error {
		switch {
		case target == "":
			return fmt.Errorf("empty symlink target: %w", ErrInvalid)
		case strings.IndexByte(target, 0) >= 0:
			// No path has a NUL: readlink(2) would cut it there.
			return fmt.Errorf("symlink target with a NUL: %w", ErrInvalid)
		case len(target) > MaxSymlinkLen:
			return ErrNameTooLong
		}
		return nil
	}, nil, func(n, _ *inode) {
		n.target, n.size = target, uint64(len(target))
	})
}

// Mknod creates a device, socket or FIFO.
func (fs *FS) Mknod(ctx context.Context, cred Cred, dir uint64, name string, typ FileType, major, minor uint32, sa SetAttr) (Entry, error) {
	mode := uint32(0o644)
	if sa.Mode != nil {
		mode = *sa.Mode
	}
	return fs.makeNode(ctx, "mknod", cred, dir, name, typ, mode, sa, func() error {
		switch typ {
		case TypeBlock, TypeChar:
			if !cred.isRoot() {
				return ErrNotPermitted
			}
		case TypeSocket, TypeFIFO:
			major, minor = 0, 0
		default:
			return ErrBadType
		}
		return nil
	}, nil, func(n, _ *inode) {
		n.major, n.minor = major, minor
	})
}

// makeNode is the transaction of Mkdir, Symlink and Mknod: it makes name
// in dir an inode of type typ and permission mode. check (optional) runs
// first, before the directory is read; checkDir (optional) once name is
// known to be free; fill sets what the type adds to the new inode (and to
// its directory), before sa, less its size, is applied.
func (fs *FS) makeNode(ctx context.Context, op string, cred Cred, dir uint64, name string, typ FileType, mode uint32, sa SetAttr,
	check func() error, checkDir func(dn *inode) error, fill func(n, dn *inode)) (Entry, error) {
	var res Entry
	if err := fs.e.admit(metaBytes); err != nil {
		return Entry{}, err
	}
	sa.Size = nil
	err := fs.do(ctx, opMutate, op, func(tx *txn) error {
		if check != nil {
			if err := check(); err != nil {
				return err
			}
		}
		dn, err := tx.prepareNew(cred, dir, name)
		if err != nil {
			return err
		}
		if checkDir != nil {
			if err := checkDir(dn); err != nil {
				return err
			}
		}
		before := dn.attr(dir)
		n, ino, err := tx.create(cred, dir, dn, name, typ, mode)
		if err != nil {
			return err
		}
		fill(n, dn)
		if err := tx.applyCreateAttrs(cred, ino, n, sa); err != nil {
			return err
		}
		res = tx.putCreated(ino, n, dir, dn, before)
		return nil
	})
	return res, err
}

// Link makes name in dir a new hard link to ino.
func (fs *FS) Link(ctx context.Context, cred Cred, ino, dir uint64, name string) (Attr, DirChange, error) {
	var (
		attr Attr
		dc   DirChange
	)
	if err := fs.e.admit(metaBytes); err != nil {
		return Attr{}, DirChange{}, err
	}
	err := fs.do(ctx, opMutate, "link", func(tx *txn) error {
		n, err := tx.inode(ino)
		if err != nil {
			return err
		}
		if n.typ == TypeDir {
			return ErrIsDir
		}
		dn, err := tx.prepareNew(cred, dir, name)
		if err != nil {
			return err
		}
		if n.nlink >= MaxLinks {
			return ErrTooManyLinks
		}
		dc.Before = dn.attr(dir)
		tx.addEntry(dir, dn, name, ino, n.typ)
		n.nlink++
		n.touch(tx.now, false)
		tx.putInode(ino, n)
		tx.putInode(dir, dn)
		tx.note([]uint64{dir, ino}, name)
		attr, dc.After = n.attr(ino), dn.attr(dir)
		return nil
	})
	return attr, dc, err
}

// prepareCreate checks the directory, the caller's permission and the name,
// and looks the name up.
func (tx *txn) prepareCreate(cred Cred, dir uint64, name string) (*inode, dentry, bool, error) {
	return tx.prepareCreateGen(cred, dir, genWant{}, name)
}

// prepareCreateGen is prepareCreate of a directory expected at dirGen.
func (tx *txn) prepareCreateGen(cred Cred, dir uint64, dirGen genWant, name string) (*inode, dentry, bool, error) {
	dn, err := tx.inode(dir)
	if err != nil {
		return nil, dentry{}, false, err
	}
	// The generation before the type: a handle of an inode number
	// reused for a file is stale, not a file.
	if err := dirGen.match(dir, dn); err != nil {
		return nil, dentry{}, false, err
	}
	if dn.typ != TypeDir {
		return nil, dentry{}, false, ErrNotDir
	}
	if isDot(name) {
		return nil, dentry{}, false, ErrExist
	}
	if err := checkName(name); err != nil {
		return nil, dentry{}, false, err
	}
	if err := cred.checkDirWrite(dn); err != nil {
		return nil, dentry{}, false, err
	}
	d, found, err := tx.entry(dir, name)
	return dn, d, found, err
}

// putCreated writes a created inode and its directory and returns the
// entry the create reports (before: the directory's attributes before).
func (tx *txn) putCreated(ino uint64, n *inode, dir uint64, dn *inode, before Attr) Entry {
	tx.putInode(ino, n)
	tx.putInode(dir, dn)
	return Entry{Attr: n.attr(ino), Dir: DirChange{Before: before, After: dn.attr(dir)}, Created: true}
}

// prepareNew is prepareCreate for a name that must not exist yet
// (ErrExist).
func (tx *txn) prepareNew(cred Cred, dir uint64, name string) (*inode, error) {
	dn, _, found, err := tx.prepareCreate(cred, dir, name)
	if err == nil && found {
		err = ErrExist
	}
	return dn, err
}

// create allocates an inode and links it under dir.
func (tx *txn) create(cred Cred, dir uint64, dn *inode, name string, typ FileType, mode uint32) (*inode, uint64, error) {
	if mode&^modeAllBits != 0 {
		return nil, 0, fmt.Errorf("mode %o: %w", mode, ErrInvalid)
	}
	ino, err := tx.allocIno()
	if err != nil {
		return nil, 0, err
	}
	n, err := tx.newInode(cred, dn, typ, mode)
	if err != nil {
		return nil, 0, err
	}
	tx.addEntry(dir, dn, name, ino, typ)
	tx.usage(0, 1)
	tx.note([]uint64{dir, ino}, name)
	return n, ino, nil
}

// applyCreateAttrs applies the attributes given with a create call.
func (tx *txn) applyCreateAttrs(cred Cred, ino uint64, n *inode, sa SetAttr) error {
	sa.Mode = nil // already used
	if sa.UID == nil && sa.GID == nil && sa.Size == nil && sa.Atime == nil && sa.Mtime == nil {
		return nil
	}
	return tx.setattr(cred, ino, n, sa)
}
