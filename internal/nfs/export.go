package nfs

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"net/netip"
	"path"
	"strings"
	"sync"

	"github.com/regionfs/regionfs/internal/engine"
)

// Export is one file system (or one of its directories) served under a
// MOUNT path.
type Export struct {
	// Path is the MOUNT path; "" and "/" both mean the file system root
	// export. Clients may also mount any directory below it
	// (Path + "/sub/dir").
	Path string
	FS   *engine.FS
	// Dir is an optional sub-directory of FS that is the export root
	// ("" = the root of FS); for EFS access points. It is resolved without
	// following symbolic links.
	Dir string
	// ReadOnly makes every mutating procedure answer NFS3ERR_ROFS
	// (replicas also get NFS3ERR_ROFS from engine.ErrReadOnly).
	ReadOnly bool
	// RootSquash maps uid 0 (and gid 0) to AnonUID/AnonGID.
	RootSquash bool
	// AnonUID and AnonGID are the identity of squashed and AUTH_NONE
	// callers; both zero means 65534.
	AnonUID, AnonGID uint32
	// Clients are the allowed client networks; empty = any.
	Clients []netip.Prefix
	// PosixUser, when set, replaces the caller's AUTH_UNIX identity on
	// every request through this export (EFS access point).
	PosixUser *engine.Cred
	// CreateDir, when set with Dir, creates Dir with this owner and mode
	// if it is missing at the first MOUNT (EFS access point CreationInfo).
	CreateDir *DirCreation
	// RequireTLS refuses MOUNT (MNT3ERR_ACCES) and every request with a
	// handle of this export (NFS3ERR_ACCES) on connections that are not
	// protected by TLS (a file system policy denying requests without
	// aws:SecureTransport).
	RequireTLS bool
}

// DirCreation is the owner and mode of an export directory created at the
// first MOUNT.
type DirCreation struct {
	UID, GID uint32
	Mode     uint32
}

// Default squash identity.
const anonID = 65534

// export is an Export prepared for serving.
type export struct {
	Export
	path    string // cleaned MOUNT path, "/" for the root
	dir     string // cleaned Dir, "" for the root of FS
	tag     uint32
	lineage [lineageSize]byte
	fsid    uint64
	anonUID uint32
	anonGID uint32

	mu   sync.Mutex // guards root
	root uint64     // resolved inode of dir (0 = not resolved yet)
}

// cleanPath normalises a MOUNT or export path: "" and "/" are "/".
func cleanPath(p string) string {
	return path.Clean("/" + p)
}

// cleanDir normalises an export sub-directory: "" for the root.
func cleanDir(d string) string {
	c := path.Clean("/" + d)
	if c == "/" {
		return ""
	}
	return c
}

// exportTag identifies an export among those of the same file system; it
// is part of every handle the export issues.
func exportTag(p, dir string, pu *engine.Cred) uint32 {
	h := fnv.New32a()
	h.Write([]byte(p))
	h.Write([]byte{0})
	h.Write([]byte(dir))
	h.Write([]byte{0})
	if pu != nil {
		var b [4]byte
		for _, v := range append([]uint32{pu.UID, pu.GID}, pu.Groups...) {
			binary.BigEndian.PutUint32(b[:], v)
			h.Write(b[:])
		}
	}
	return h.Sum32()
}

func prepareExport(x Export) (*export, error) {
	if x.FS == nil {
		return nil, fmt.Errorf("nfs: export %q has no file system", x.Path)
	}
	lin := x.FS.Lineage()
	if len(lin) != lineageSize || len(x.FS.MACKey()) == 0 {
		return nil, fmt.Errorf("nfs: export %q: file system %q has no lineage yet", x.Path, x.FS.Name())
	}
	for _, p := range x.Clients {
		if !p.IsValid() {
			return nil, fmt.Errorf("nfs: export %q: invalid client prefix", x.Path)
		}
	}
	e := &export{Export: x, path: cleanPath(x.Path), dir: cleanDir(x.Dir)}
	e.tag = exportTag(e.path, e.dir, x.PosixUser)
	copy(e.lineage[:], lin)
	e.fsid = binary.BigEndian.Uint64(lin[:8]) ^ binary.BigEndian.Uint64(lin[8:])
	e.anonUID, e.anonGID = x.AnonUID, x.AnonGID
	if e.anonUID == 0 && e.anonGID == 0 {
		e.anonUID, e.anonGID = anonID, anonID
	}
	if e.dir == "" {
		e.root = engine.RootIno
	}
	return e, nil
}

// allows reports whether a client at addr may use the export.
func (x *export) allows(addr netip.Addr) bool {
	if len(x.Clients) == 0 {
		return true
	}
	addr = addr.Unmap()
	for _, p := range x.Clients {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// readOnly reports whether mutations must be refused with NFS3ERR_ROFS.
func (x *export) readOnly() bool {
	if x.ReadOnly {
		return true
	}
	m, _ := x.FS.Mode()
	return m != engine.ModePrimary
}

// errExportDir: the export's directory is missing or not a directory.
var errExportDir = errors.New("nfs: export directory is missing")

// rootIno resolves the export's root directory from the file system's
// root (creating Dir with CreateDir when create is set) and remembers it:
// handles are checked against the remembered root (checkRoot), MOUNT
// resolves again, so a replaced directory is noticed.
func (x *export) rootIno(ctx context.Context, create bool) (uint64, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.dir == "" {
		return x.root, nil
	}
	ino := uint64(engine.RootIno)
	for _, name := range strings.Split(strings.TrimPrefix(x.dir, "/"), "/") {
		a, err := x.FS.Lookup(ctx, engine.RootCred, ino, name)
		if errors.Is(err, engine.ErrNotFound) && create && x.CreateDir != nil && !x.readOnly() {
			mode, uid, gid := x.CreateDir.Mode&07777, x.CreateDir.UID, x.CreateDir.GID
			var ent engine.Entry
			ent, err = x.FS.Mkdir(ctx, engine.RootCred, ino, name, engine.SetAttr{Mode: &mode, UID: &uid, GID: &gid})
			if errors.Is(err, engine.ErrExist) { // raced with another MOUNT
				a, err = x.FS.Lookup(ctx, engine.RootCred, ino, name)
			} else {
				a = ent.Attr
			}
		}
		if err != nil {
			if errors.Is(err, engine.ErrNotFound) {
				return 0, fmt.Errorf("%w: %s: %w", errExportDir, x.dir, err)
			}
			return 0, err
		}
		if a.Type != engine.TypeDir {
			return 0, fmt.Errorf("%w: %s: %w", errExportDir, x.dir, engine.ErrNotDir)
		}
		ino = a.Ino
	}
	x.root = ino
	return ino, nil
}

// exportSet is an immutable set of exports, replaced as a whole.
type exportSet struct {
	list  []*export
	byKey map[exportKey][]*export // lineage+tag → exports issuing such handles
}

type exportKey struct {
	lineage [lineageSize]byte
	tag     uint32
}

func newExportSet(list []*export) *exportSet {
	s := &exportSet{list: list, byKey: map[exportKey][]*export{}}
	for _, x := range list {
		k := exportKey{x.lineage, x.tag}
		s.byKey[k] = append(s.byKey[k], x)
	}
	return s
}

// forMount returns the export a MOUNT path names and the rest of the path
// below it: the longest export path that is the path or one of its
// ancestors, among the exports the client may use. found reports whether
// any export (allowed or not) matched.
func (s *exportSet) forMount(p string, addr netip.Addr) (x *export, rest string, found bool) {
	p = cleanPath(p)
	best := -1
	for _, c := range s.list {
		var r string
		switch {
		case c.path == p:
		case c.path == "/":
			r = p
		case strings.HasPrefix(p, c.path+"/"):
			r = p[len(c.path):]
		default:
			continue
		}
		found = true
		if !c.allows(addr) || len(c.path) <= best {
			continue
		}
		x, rest, best = c, r, len(c.path)
	}
	return x, rest, found
}
