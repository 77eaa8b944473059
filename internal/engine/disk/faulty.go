package disk

import (
	"io/fs"
	"sync"
)

// Op is a kind of operation Faulty can fail.
type Op uint8

// Operations.
const (
	OpWrite Op = iota
	OpSync
	OpRename
	OpCreate
	OpSyncDir
	numOps
)

// Fault fails the Nth operation of kind Op (counted from Inject, 1-based)
// with Err, and every later one too when Sticky.
type Fault struct {
	Op     Op
	Nth    int
	Err    error
	Sticky bool
	// Done: the operation takes effect before it fails (OpCreate only):
	// the file exists, as after an open the kernel refuses once it has
	// created the file, or a remote create whose reply was lost.
	Done bool
}

// Faulty wraps an FS and injects errors (ENOSPC, EIO, …).
type Faulty struct {
	inner FS

	mu     sync.Mutex // guards the fields below
	faults []*armed
	counts [numOps]int
}

type armed struct {
	Fault
	seen  int
	fired bool
}

var _ FS = (*Faulty)(nil)

// NewFaulty wraps inner.
func NewFaulty(inner FS) *Faulty { return &Faulty{inner: inner} }

// Inject arms a fault.
func (f *Faulty) Inject(ft Fault) {
	f.mu.Lock()
	f.faults = append(f.faults, &armed{Fault: ft})
	f.mu.Unlock()
}

// Clear disarms every fault.
func (f *Faulty) Clear() {
	f.mu.Lock()
	f.faults = nil
	f.mu.Unlock()
}

// Count returns how many operations of kind op were attempted.
func (f *Faulty) Count(op Op) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.counts[op]
}

// hit counts an operation and returns the error to fail it with, if any.
func (f *Faulty) hit(op Op) error {
	err, _ := f.hitDone(op)
	return err
}

// hitDone is hit, and reports whether the failing operation takes effect
// first (Fault.Done).
func (f *Faulty) hitDone(op Op) (err error, done bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.counts[op]++
	for _, a := range f.faults {
		if a.Op != op {
			continue
		}
		a.seen++
		if a.seen == a.Nth || a.Sticky && a.fired {
			a.fired = true
			if err == nil {
				err, done = a.Err, a.Done
			}
		}
	}
	return err, done
}

func (f *Faulty) Create(name string) (File, error) {
	if err, done := f.hitDone(OpCreate); err != nil {
		if done {
			if file, cerr := f.inner.Create(name); cerr == nil {
				_ = file.Close()
			}
		}
		return nil, &fs.PathError{Op: "create", Path: name, Err: err}
	}
	file, err := f.inner.Create(name)
	if err != nil {
		return nil, err
	}
	return &faultyFile{File: file, f: f, name: name}, nil
}

func (f *Faulty) Open(name string) (File, error) { return f.inner.Open(name) }

func (f *Faulty) Rename(oldname, newname string) error {
	if err := f.hit(OpRename); err != nil {
		return &fs.PathError{Op: "rename", Path: oldname, Err: err}
	}
	return f.inner.Rename(oldname, newname)
}

func (f *Faulty) Remove(name string) error   { return f.inner.Remove(name) }
func (f *Faulty) MkdirAll(name string) error { return f.inner.MkdirAll(name) }

func (f *Faulty) SyncDir(name string) error {
	if err := f.hit(OpSyncDir); err != nil {
		return &fs.PathError{Op: "sync", Path: name, Err: err}
	}
	return f.inner.SyncDir(name)
}

func (f *Faulty) ReadDir(name string) ([]fs.DirEntry, error) { return f.inner.ReadDir(name) }
func (f *Faulty) Stat(name string) (fs.FileInfo, error)      { return f.inner.Stat(name) }
func (f *Faulty) Usage(name string) (Usage, error)           { return f.inner.Usage(name) }

type faultyFile struct {
	File
	f    *Faulty
	name string
}

func (ff *faultyFile) Write(p []byte) (int, error) {
	if err := ff.f.hit(OpWrite); err != nil {
		return 0, &fs.PathError{Op: "write", Path: ff.name, Err: err}
	}
	return ff.File.Write(p)
}

func (ff *faultyFile) Sync() error {
	if err := ff.f.hit(OpSync); err != nil {
		return &fs.PathError{Op: "sync", Path: ff.name, Err: err}
	}
	return ff.File.Sync()
}
