package fuse

import (
	"syscall"
	"time"

	gofuse "github.com/hanwen/go-fuse/v2/fuse"

	"github.com/regionfs/regionfs/internal/nfs/proto"
)

// The kernel forgets a directory's attributes whenever a name in it
// changes, and asks for them again at the next lookup in it (it checks
// the search permission with them): one GETATTR per file created. And it
// asks for every name a program creates first (LOOKUP, expecting ENOENT).
// A directory node therefore keeps:
//   - the attributes the server last reported for it (GETATTR, SETATTR,
//     and the post-operation attributes of the wcc data of every name
//     operation in it), answering GETATTR for AttrTimeout after they
//     came, as the kernel's own cache would;
//   - for a directory this client created, the set of its names: empty at
//     MKDIR, then kept current through the wcc data of each operation in
//     it while the "before" attributes of each reply are the "after"
//     attributes of the previous one (nobody else changed the directory
//     in between). A lookup of a name not in the set is ENOENT without a
//     call, for EntryTimeout after the last such proof. Any gap in the
//     chain (another client's change, a failure, a reply without wcc
//     data) drops the set for good.

// maxKnownNames bounds the names kept for one directory.
const maxKnownNames = 16384

// nameMax is the longest name Linux file systems take (NAME_MAX).
const nameMax = 255

type dirCache struct {
	attr      proto.Attr
	attrUntil time.Time
	// names is nil when the directory's names are not known.
	names      map[string]struct{}
	namesCA    changeAttrs // the directory's state names describe
	namesUntil time.Time
}

func wccMatches(b *proto.WccAttr, ca changeAttrs) bool {
	return b.Size == ca.size && b.Mtime == ca.mtime && b.Ctime == ca.ctime
}

// setAttr records a directory's attributes as the server reported them.
func (n *node) setAttr(a *proto.Attr) {
	if a == nil || a.Type != proto.TypeDir {
		return
	}
	n.mu.Lock()
	n.d.attr, n.d.attrUntil = *a, time.Now().Add(n.f.o.AttrTimeout)
	n.mu.Unlock()
}

// cachedAttr fills out from the recorded attributes while they are fresh.
func (n *node) cachedAttr(out *gofuse.AttrOut) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	left := time.Until(n.d.attrUntil)
	if left <= 0 {
		return false
	}
	fillAttr(&n.d.attr, &out.Attr)
	out.SetTimeout(left)
	return true
}

// newDir starts the name set of a directory this client just created.
func (n *node) newDir(a *proto.Attr) {
	if a == nil || a.Type != proto.TypeDir {
		return
	}
	n.mu.Lock()
	n.d.names, n.d.namesCA = map[string]struct{}{}, changeOf(a)
	n.d.namesUntil = time.Now().Add(n.f.o.EntryTimeout)
	n.mu.Unlock()
	n.setAttr(a)
}

// dirChanged takes the wcc data of an operation in the directory: its
// attributes, and, when the operation follows the known state, the
// change to the names (apply nil: the operation failed, or its effect is
// unknown; the names are dropped).
func (n *node) dirChanged(w proto.Wcc, apply func(names map[string]struct{})) {
	now := time.Now()
	n.mu.Lock()
	defer n.mu.Unlock()
	if w.After != nil && w.After.Type == proto.TypeDir {
		n.d.attr, n.d.attrUntil = *w.After, now.Add(n.f.o.AttrTimeout)
	} else {
		n.d.attrUntil = time.Time{}
	}
	if n.d.names == nil {
		return
	}
	if apply == nil || w.Before == nil || w.After == nil || !wccMatches(w.Before, n.d.namesCA) {
		n.d.names = nil
		return
	}
	apply(n.d.names)
	n.d.namesCA, n.d.namesUntil = changeOf(w.After), now.Add(n.f.o.EntryTimeout)
	if len(n.d.names) > maxKnownNames {
		n.d.names = nil
	}
}

// knownAbsent reports whether name is known not to exist in the directory.
// It never answers for a name longer than NAME_MAX: the server refuses
// those (ENAMETOOLONG), which is the error to give, not ENOENT.
func (n *node) knownAbsent(name string) bool {
	if len(name) > nameMax {
		return false
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.d.names == nil || time.Now().After(n.d.namesUntil) {
		return false
	}
	_, ok := n.d.names[name]
	return !ok
}

// lookedUp checks a LOOKUP's answer against the known names: a
// difference means the set is wrong, and it is dropped.
func (n *node) lookedUp(name string, err error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.d.names == nil {
		return
	}
	_, known := n.d.names[name]
	if (err == nil) != known || (err != nil && errno(err) != syscall.ENOENT) {
		n.d.names = nil
	}
}

func addName(name string) func(map[string]struct{}) {
	return func(m map[string]struct{}) { m[name] = struct{}{} }
}

func removeName(name string) func(map[string]struct{}) {
	return func(m map[string]struct{}) { delete(m, name) }
}

func renameIn(from, to string) func(map[string]struct{}) {
	return func(m map[string]struct{}) {
		delete(m, from)
		m[to] = struct{}{}
	}
}
