package engine

import (
	"encoding/binary"
	"fmt"
	"time"
)

// FileType is the type of an inode.
type FileType uint8

// File types.
const (
	TypeRegular FileType = 1
	TypeDir     FileType = 2
	TypeBlock   FileType = 3
	TypeChar    FileType = 4
	TypeSymlink FileType = 5
	TypeSocket  FileType = 6
	TypeFIFO    FileType = 7
)

func (t FileType) String() string {
	switch t {
	case TypeRegular:
		return "file"
	case TypeDir:
		return "dir"
	case TypeBlock:
		return "blockdev"
	case TypeChar:
		return "chardev"
	case TypeSymlink:
		return "symlink"
	case TypeSocket:
		return "socket"
	case TypeFIFO:
		return "fifo"
	}
	return fmt.Sprintf("type(%d)", uint8(t))
}

func (t FileType) valid() bool { return t >= TypeRegular && t <= TypeFIFO }

// Mode bits beyond the permission bits.
const (
	ModeSetUID  = 0o4000
	ModeSetGID  = 0o2000
	ModeSticky  = 0o1000
	ModePerm    = 0o0777
	modeAllBits = 0o7777
)

// RootIno is the inode number of every file system's root directory.
const RootIno = 1

// Limits.
const (
	MaxNameLen = 255
	// MaxSymlinkLen is PATH_MAX less its NUL: Linux refuses longer
	// targets (ENAMETOOLONG), and its NFS client cannot read them back.
	MaxSymlinkLen = 4095
	MaxLinks      = 65000
	// MaxFileSize keeps block indexes and offsets far from overflow.
	MaxFileSize = 1 << 50
)

// inode flags.
const (
	flagInline  = 1 << 0 // data lives in the inline key
	flagTail    = 1 << 1 // stale block entries may remain beyond EOF (huge truncate in progress)
	flagExclVer = 1 << 2 // verifier holds an exclusive-create verifier
)

// Attr are the attributes of an inode.
type Attr struct {
	Ino   uint64
	Gen   uint64
	Type  FileType
	Mode  uint32 // permission and setuid/setgid/sticky bits (07777)
	UID   uint32
	GID   uint32
	Nlink uint32
	Size  uint64
	// Used is what the file occupies: for a regular file its size rounded
	// up to 4 KiB, or the bytes it holds when less (sparse files).
	Used  uint64
	Major uint32 // devices
	Minor uint32
	Atime time.Time
	Mtime time.Time
	Ctime time.Time
	// Parent is the parent directory of a directory (RootIno for the root).
	Parent uint64
}

// inode is the stored form of an inode.
type inode struct {
	typ        FileType
	mode       uint32
	uid, gid   uint32
	nlink      uint32
	size       uint64
	atime      int64 // ns since the Unix epoch
	mtime      int64
	ctime      int64
	major      uint32
	minor      uint32
	gen        uint64
	parent     uint64 // directories
	nextCookie uint64 // directories: next readdir cookie
	verifier   uint64 // exclusive create verifier
	// held is what the file's data takes in storage (regular files,
	// heldBytes): its block entries' lengths, its pending extents' and
	// its inline data's bytes, each rounded up to 4 KiB. Kept by every
	// transaction that stores or drops data (data.go).
	held uint64
	// heldOK: held is known. A record of version 1 (written before held
	// existed) does not say it; such an inode is encoded as version 1
	// again until a transaction that changes its data recounts it
	// (tx.knowHeld).
	heldOK bool
	flags  uint8
	target string // symlink target
}

// Inode record versions: 2 carries held after the verifier; 1 does not.
const (
	inodeVersion1 = 1
	inodeVersion  = 2
)

// inodeFixedSize is the encoded size of a version 2 record without the
// symlink target; version 1 has 8 bytes less (no held).
const inodeFixedSize = 1 + 1 + 4*4 + 8 + 8*3 + 4*2 + 8*5 + 1 + 2

// pageBytes is the granule in which stored data is counted (held): a
// piece of data holds at least one such page, like a file system block.
const pageBytes = 4096

// pages rounds n up to whole pages.
func pages(n uint64) uint64 { return (n + pageBytes - 1) &^ (pageBytes - 1) }

func (n *inode) encode() []byte {
	b := make([]byte, 0, inodeFixedSize+len(n.target))
	ver := byte(inodeVersion)
	if !n.heldOK {
		ver = inodeVersion1
	}
	b = append(b, ver, byte(n.typ))
	b = binary.BigEndian.AppendUint32(b, n.mode)
	b = binary.BigEndian.AppendUint32(b, n.uid)
	b = binary.BigEndian.AppendUint32(b, n.gid)
	b = binary.BigEndian.AppendUint32(b, n.nlink)
	b = binary.BigEndian.AppendUint64(b, n.size)
	b = binary.BigEndian.AppendUint64(b, uint64(n.atime))
	b = binary.BigEndian.AppendUint64(b, uint64(n.mtime))
	b = binary.BigEndian.AppendUint64(b, uint64(n.ctime))
	b = binary.BigEndian.AppendUint32(b, n.major)
	b = binary.BigEndian.AppendUint32(b, n.minor)
	b = binary.BigEndian.AppendUint64(b, n.gen)
	b = binary.BigEndian.AppendUint64(b, n.parent)
	b = binary.BigEndian.AppendUint64(b, n.nextCookie)
	b = binary.BigEndian.AppendUint64(b, n.verifier)
	if n.heldOK {
		b = binary.BigEndian.AppendUint64(b, n.held)
	}
	b = append(b, n.flags)
	b = binary.BigEndian.AppendUint16(b, uint16(len(n.target)))
	return append(b, n.target...)
}

func decodeInode(b []byte) (*inode, error) {
	fixed := inodeFixedSize
	if len(b) > 0 && b[0] == inodeVersion1 {
		fixed -= 8
	}
	if len(b) < fixed || b[0] != inodeVersion1 && b[0] != inodeVersion {
		return nil, fmt.Errorf("%w: inode record of %d bytes", ErrCorrupt, len(b))
	}
	n := &inode{typ: FileType(b[1]), heldOK: b[0] == inodeVersion}
	p := b[2:]
	u32 := func() uint32 { v := binary.BigEndian.Uint32(p); p = p[4:]; return v }
	u64 := func() uint64 { v := binary.BigEndian.Uint64(p); p = p[8:]; return v }
	n.mode, n.uid, n.gid, n.nlink = u32(), u32(), u32(), u32()
	n.size = u64()
	n.atime, n.mtime, n.ctime = int64(u64()), int64(u64()), int64(u64())
	n.major, n.minor = u32(), u32()
	n.gen, n.parent, n.nextCookie, n.verifier = u64(), u64(), u64(), u64()
	if n.heldOK {
		n.held = u64()
	}
	n.flags = p[0]
	tl := int(binary.BigEndian.Uint16(p[1:3]))
	p = p[3:]
	if len(p) != tl || !n.typ.valid() || n.mode&^modeAllBits != 0 {
		return nil, fmt.Errorf("%w: inode record", ErrCorrupt)
	}
	n.target = string(p)
	return n, nil
}

// used is what the inode's data occupies as clients see it (GETATTR's
// used, st_blocks): for a regular file, like EFS meters it, its size
// rounded up to 4 KiB, or what it holds when that is less (a sparse
// file); while held is not known (a version 1 record) the rounded size.
func (n *inode) used() uint64 {
	switch {
	case n.typ == TypeSymlink:
		return uint64(len(n.target))
	case n.typ == TypeRegular && n.heldOK:
		return min(pages(n.size), n.held)
	}
	return pages(n.size)
}

// counted is the inode's share of the file system's usage counter ('M'
// "usage" bytes): its used bytes for a linked regular file whose held is
// known; its size while held is not known (the share the counter has
// had for it since before held existed); nothing for other inodes.
func (n *inode) counted() uint64 {
	switch {
	case n.typ != TypeRegular || n.nlink == 0:
		return 0
	case !n.heldOK:
		return n.size
	}
	return n.used()
}

func (n *inode) attr(ino uint64) Attr {
	used := n.used()
	return Attr{
		Ino: ino, Gen: n.gen, Type: n.typ, Mode: n.mode, UID: n.uid, GID: n.gid,
		Nlink: n.nlink, Size: n.size, Used: used, Major: n.major, Minor: n.minor,
		Atime: time.Unix(0, n.atime).UTC(), Mtime: time.Unix(0, n.mtime).UTC(),
		Ctime: time.Unix(0, n.ctime).UTC(), Parent: n.parent,
	}
}

// dentry is the value of a directory entry and of its readdir order entry.
type dentry struct {
	ino    uint64
	typ    FileType
	cookie uint64
}

func (d dentry) encode() []byte {
	b := make([]byte, 0, 17)
	b = binary.BigEndian.AppendUint64(b, d.ino)
	b = append(b, byte(d.typ))
	return binary.BigEndian.AppendUint64(b, d.cookie)
}

func decodeDentry(b []byte) (dentry, error) {
	if len(b) != 17 || !FileType(b[8]).valid() {
		return dentry{}, fmt.Errorf("%w: dentry of %d bytes", ErrCorrupt, len(b))
	}
	return dentry{ino: binary.BigEndian.Uint64(b), typ: FileType(b[8]), cookie: binary.BigEndian.Uint64(b[9:])}, nil
}

// orderEntry is the value of a readdir order key: the child and its name.
type orderEntry struct {
	ino  uint64
	typ  FileType
	name string
}

func (o orderEntry) encode() []byte {
	b := make([]byte, 0, 9+len(o.name))
	b = binary.BigEndian.AppendUint64(b, o.ino)
	b = append(b, byte(o.typ))
	return append(b, o.name...)
}

func decodeOrder(b []byte) (orderEntry, error) {
	if len(b) < 10 || len(b) > 9+MaxNameLen || !FileType(b[8]).valid() {
		return orderEntry{}, fmt.Errorf("%w: order entry of %d bytes", ErrCorrupt, len(b))
	}
	return orderEntry{ino: binary.BigEndian.Uint64(b), typ: FileType(b[8]), name: string(b[9:])}, nil
}
