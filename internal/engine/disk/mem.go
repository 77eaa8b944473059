package disk

import (
	"io"
	"io/fs"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Mem is an in-memory FS that keeps, beside the current state, exactly what
// a crash would leave: file contents as of their last Sync and directory
// entries as of their directory's last SyncDir. CrashClone returns that
// state as a new Mem.
type Mem struct {
	mu      sync.Mutex // guards everything below and all nodes
	root    *node
	crashed bool
	usage   Usage
}

type node struct {
	dir bool
	// files
	data, synced []byte
	// directories
	entries, syncedEntries map[string]*node
	mtime                  time.Time
}

func newDirNode() *node {
	return &node{dir: true, entries: map[string]*node{}, syncedEntries: map[string]*node{}, mtime: time.Now()}
}

var _ FS = (*Mem)(nil)

// NewMem returns an empty Mem.
func NewMem() *Mem {
	return &Mem{root: newDirNode(), usage: Usage{TotalBytes: 1 << 40, FreeBytes: 1 << 39, TotalFiles: 1 << 30, FreeFiles: 1 << 29}}
}

// SetUsage sets what Usage reports.
func (m *Mem) SetUsage(u Usage) {
	m.mu.Lock()
	m.usage = u
	m.mu.Unlock()
}

// Crash makes every later operation on m and its open files fail.
func (m *Mem) Crash() {
	m.mu.Lock()
	m.crashed = true
	m.mu.Unlock()
}

// CrashClone returns what a crash at this moment would leave.
func (m *Mem) CrashClone() *Mem {
	m.mu.Lock()
	defer m.mu.Unlock()
	var clone func(n *node) *node
	clone = func(n *node) *node {
		if !n.dir {
			d := slices.Clone(n.synced)
			return &node{data: d, synced: slices.Clone(d), mtime: n.mtime}
		}
		c := newDirNode()
		for name, child := range n.syncedEntries {
			cc := clone(child)
			c.entries[name] = cc
			c.syncedEntries[name] = cc
		}
		return c
	}
	return &Mem{root: clone(m.root), usage: m.usage}
}

func pathErr(op, name string, err error) error { return &fs.PathError{Op: op, Path: name, Err: err} }

// split returns the parent directory components and the last name.
func split(name string) ([]string, string) {
	parts := strings.Split(name, "/")
	return parts[:len(parts)-1], parts[len(parts)-1]
}

// lookupLocked resolves a directory path (current entries).
func (m *Mem) dirLocked(op, name string, parts []string) (*node, error) {
	n := m.root
	for _, p := range parts {
		if p == "" || p == "." {
			continue
		}
		c, ok := n.entries[p]
		if !ok {
			return nil, pathErr(op, name, fs.ErrNotExist)
		}
		if !c.dir {
			return nil, pathErr(op, name, syscall.ENOTDIR)
		}
		n = c
	}
	return n, nil
}

func (m *Mem) nodeLocked(op, name string) (*node, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	if name == "." {
		return m.root, nil
	}
	dirs, last := split(name)
	d, err := m.dirLocked(op, name, dirs)
	if err != nil {
		return nil, err
	}
	if last == "." || last == "" {
		return d, nil
	}
	n, ok := d.entries[last]
	if !ok {
		return nil, pathErr(op, name, fs.ErrNotExist)
	}
	return n, nil
}

// lock locks m for an operation on names and the caller unlocks it, or
// fails with m unlocked if m has crashed or a name is not valid.
func (m *Mem) lock(names ...string) error {
	m.mu.Lock()
	var err error
	if m.crashed {
		err = ErrCrashed
	}
	for _, name := range names {
		if err == nil {
			err = checkName(name)
		}
	}
	if err != nil {
		m.mu.Unlock()
	}
	return err
}

func (m *Mem) Create(name string) (File, error) {
	if err := m.lock(name); err != nil {
		return nil, err
	}
	defer m.mu.Unlock()
	dirs, last := split(name)
	d, err := m.dirLocked("create", name, dirs)
	if err != nil {
		return nil, err
	}
	if _, ok := d.entries[last]; ok {
		return nil, pathErr("create", name, fs.ErrExist)
	}
	n := &node{mtime: time.Now()}
	d.entries[last] = n
	return &memFile{m: m, n: n, write: true}, nil
}

func (m *Mem) Open(name string) (File, error) {
	if err := m.lock(); err != nil {
		return nil, err
	}
	defer m.mu.Unlock()
	n, err := m.nodeLocked("open", name)
	if err != nil {
		return nil, err
	}
	return &memFile{m: m, n: n}, nil
}

func (m *Mem) Rename(oldname, newname string) error {
	if err := m.lock(oldname, newname); err != nil {
		return err
	}
	defer m.mu.Unlock()
	od, olast := split(oldname)
	nd, nlast := split(newname)
	src, err := m.dirLocked("rename", oldname, od)
	if err != nil {
		return err
	}
	dst, err := m.dirLocked("rename", newname, nd)
	if err != nil {
		return err
	}
	n, ok := src.entries[olast]
	if !ok {
		return pathErr("rename", oldname, fs.ErrNotExist)
	}
	if old, ok := dst.entries[nlast]; ok && old.dir && (!n.dir || len(old.entries) > 0) {
		return pathErr("rename", newname, syscall.EEXIST)
	}
	delete(src.entries, olast)
	dst.entries[nlast] = n
	return nil
}

func (m *Mem) Remove(name string) error {
	if err := m.lock(name); err != nil {
		return err
	}
	defer m.mu.Unlock()
	dirs, last := split(name)
	d, err := m.dirLocked("remove", name, dirs)
	if err != nil {
		return err
	}
	n, ok := d.entries[last]
	if !ok {
		return pathErr("remove", name, fs.ErrNotExist)
	}
	if n.dir && len(n.entries) > 0 {
		return pathErr("remove", name, syscall.ENOTEMPTY)
	}
	delete(d.entries, last)
	return nil
}

func (m *Mem) MkdirAll(name string) error {
	if err := m.lock(name); err != nil {
		return err
	}
	defer m.mu.Unlock()
	n := m.root
	for _, p := range strings.Split(name, "/") {
		if p == "" || p == "." {
			continue
		}
		c, ok := n.entries[p]
		if !ok {
			c = newDirNode()
			n.entries[p] = c
		} else if !c.dir {
			return pathErr("mkdir", name, syscall.ENOTDIR)
		}
		n = c
	}
	return nil
}

func (m *Mem) SyncDir(name string) error {
	if err := m.lock(); err != nil {
		return err
	}
	defer m.mu.Unlock()
	n, err := m.nodeLocked("sync", name)
	if err != nil {
		return err
	}
	if !n.dir {
		return pathErr("sync", name, syscall.ENOTDIR)
	}
	n.syncedEntries = make(map[string]*node, len(n.entries))
	for k, v := range n.entries {
		n.syncedEntries[k] = v
	}
	return nil
}

func (m *Mem) ReadDir(name string) ([]fs.DirEntry, error) {
	if err := m.lock(); err != nil {
		return nil, err
	}
	defer m.mu.Unlock()
	n, err := m.nodeLocked("readdir", name)
	if err != nil {
		return nil, err
	}
	if !n.dir {
		return nil, pathErr("readdir", name, syscall.ENOTDIR)
	}
	names := make([]string, 0, len(n.entries))
	for k := range n.entries {
		names = append(names, k)
	}
	slices.Sort(names)
	out := make([]fs.DirEntry, len(names))
	for i, k := range names {
		out[i] = fs.FileInfoToDirEntry(memInfo{name: k, n: n.entries[k]})
	}
	return out, nil
}

func (m *Mem) Stat(name string) (fs.FileInfo, error) {
	if err := m.lock(); err != nil {
		return nil, err
	}
	defer m.mu.Unlock()
	n, err := m.nodeLocked("stat", name)
	if err != nil {
		return nil, err
	}
	_, last := split(name)
	return memInfo{name: last, n: n}, nil
}

func (m *Mem) Usage(string) (Usage, error) {
	if err := m.lock(); err != nil {
		return Usage{}, err
	}
	defer m.mu.Unlock()
	return m.usage, nil
}

type memInfo struct {
	name string
	n    *node
}

func (i memInfo) Name() string { return i.name }
func (i memInfo) Size() int64  { return int64(len(i.n.data)) }
func (i memInfo) Mode() fs.FileMode {
	if i.n.dir {
		return fs.ModeDir | 0o755
	}
	return 0o600
}
func (i memInfo) ModTime() time.Time { return i.n.mtime }
func (i memInfo) IsDir() bool        { return i.n.dir }
func (i memInfo) Sys() any           { return nil }

type memFile struct {
	m      *Mem
	n      *node
	write  bool
	closed bool
}

func (f *memFile) Write(p []byte) (int, error) {
	if err := f.m.lock(); err != nil {
		return 0, err
	}
	defer f.m.mu.Unlock()
	if f.closed || !f.write {
		return 0, fs.ErrClosed
	}
	f.n.data = append(f.n.data, p...)
	return len(p), nil
}

func (f *memFile) ReadAt(p []byte, off int64) (int, error) {
	if err := f.m.lock(); err != nil {
		return 0, err
	}
	defer f.m.mu.Unlock()
	if f.closed {
		return 0, fs.ErrClosed
	}
	if off >= int64(len(f.n.data)) {
		return 0, io.EOF
	}
	n := copy(p, f.n.data[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (f *memFile) Sync() error {
	if err := f.m.lock(); err != nil {
		return err
	}
	defer f.m.mu.Unlock()
	f.n.synced = slices.Clone(f.n.data)
	return nil
}

func (f *memFile) Size() (int64, error) {
	if err := f.m.lock(); err != nil {
		return 0, err
	}
	defer f.m.mu.Unlock()
	return int64(len(f.n.data)), nil
}

func (f *memFile) Close() error {
	f.m.mu.Lock()
	defer f.m.mu.Unlock()
	f.closed = true
	return nil
}
