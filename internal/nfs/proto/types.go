package proto

import (
	"fmt"
	"time"

	"github.com/regionfs/regionfs/internal/nfs/xdr"
)

// Programs and versions.
const (
	ProgPortmap = 100000
	ProgNFS     = 100003
	ProgMount   = 100005
	ProgNLM     = 100021
	ProgNFSACL  = 100227

	VersPortmap = 2
	VersNFS     = 3
	VersMount   = 3

	// ProgRegionFS is regionfs's own RPC program, from the range RFC
	// 5531 leaves to local use. A server that answers its NULL procedure
	// promises that it runs the WRITEs, SETATTRs and COMMITs of one file
	// in the order it reads them from a connection, so a client may send
	// them without waiting for each reply (nfs.orderGate). Other servers
	// answer PROG_UNAVAIL. Version 1's procedures are NULL,
	// REGIONFS_CREATE (ProcRegionFSCreate), REGIONFS_CLOSE
	// (ProcRegionFSClose) and REGIONFS_CREATE_VISIBLE
	// (ProcRegionFSCreateVisible); a server older than one of them
	// answers it PROC_UNAVAIL.
	ProgRegionFS = 0x20524653 // " RFS"
	VersRegionFS = 1

	// ProcRegionFSCreate is an exclusive create that carries attributes
	// (ExclusiveCreateArgs; the reply is CREATE3res), as NFSv4.1's
	// EXCLUSIVE4_1 does: the file has the mode its creator asked for from
	// the start, where an NFSv3 EXCLUSIVE CREATE has no attributes (the
	// verifier may sit in the times) and a SETATTR must follow it. The
	// server keeps the verifier apart from the attributes, so the call
	// sent again after a lost reply (a server restart) finds the file it
	// made, as an NFSv3 EXCLUSIVE CREATE does, until the file is changed.
	ProcRegionFSCreate = 1

	// ProcRegionFSClose is a small file's close in one call
	// (CloseArgs; the reply is CloseRes): a WRITE of its data, a SETATTR
	// (no guard) of the attribute changes made through the open file,
	// and a COMMIT of the whole file, run one after the other as the
	// three NFSv3 calls sent back to back on one connection would be,
	// each with its own result. One request and one reply where the
	// three took three of each; the server runs it after the WRITEs and
	// SETATTRs of the file read before it, as it would run the COMMIT.
	ProcRegionFSClose = 2

	// ProcRegionFSCreateVisible is REGIONFS_CREATE (same arguments and
	// reply) answered once the file is visible, before it is durable:
	// the reply claims nothing durable. The create becomes durable with
	// the next durable change the server answers (its journal is
	// ordered: the file's REGIONFS_CLOSE, any COMMIT or SETATTR) or with
	// a COMMIT of any file or directory, which waits for it. If the
	// server restarts before that, the file is gone and its handle is
	// stale (its inode and generation are never handed out again).
	ProcRegionFSCreateVisible = 3
)

// RegionFSProcNames are the names of ProgRegionFS's procedures, indexed
// by number.
var RegionFSProcNames = [...]string{"REGIONFS_NULL", "REGIONFS_CREATE", "REGIONFS_CLOSE", "REGIONFS_CREATE_VISIBLE"}

// NFSv3 procedures.
const (
	ProcNull        = 0
	ProcGetAttr     = 1
	ProcSetAttr     = 2
	ProcLookup      = 3
	ProcAccess      = 4
	ProcReadlink    = 5
	ProcRead        = 6
	ProcWrite       = 7
	ProcCreate      = 8
	ProcMkdir       = 9
	ProcSymlink     = 10
	ProcMknod       = 11
	ProcRemove      = 12
	ProcRmdir       = 13
	ProcRename      = 14
	ProcLink        = 15
	ProcReadDir     = 16
	ProcReadDirPlus = 17
	ProcFSStat      = 18
	ProcFSInfo      = 19
	ProcPathConf    = 20
	ProcCommit      = 21
	NumProcs        = 22
)

// ProcNames are the NFSv3 procedure names, indexed by number.
var ProcNames = [NumProcs]string{
	"NULL", "GETATTR", "SETATTR", "LOOKUP", "ACCESS", "READLINK", "READ", "WRITE",
	"CREATE", "MKDIR", "SYMLINK", "MKNOD", "REMOVE", "RMDIR", "RENAME", "LINK",
	"READDIR", "READDIRPLUS", "FSSTAT", "FSINFO", "PATHCONF", "COMMIT",
}

// Changes reports whether an NFSv3 procedure changes the file system:
// running it twice can answer differently (a second REMOVE says NOENT,
// a second CREATE EXIST, a guarded SETATTR NOT_SYNC). The server answers
// their retransmissions from its duplicate request cache; the client
// retransmits them with the XID of the first attempt and never abandons
// one that may have been sent.
func Changes(proc uint32) bool {
	switch proc {
	case ProcSetAttr, ProcWrite, ProcCreate, ProcMkdir, ProcSymlink, ProcMknod,
		ProcRemove, ProcRmdir, ProcRename, ProcLink:
		return true
	}
	return false
}

// Sizes.
const (
	FHSize         = 64 // NFS3_FHSIZE
	CookieVerfSize = 8
	CreateVerfSize = 8
	WriteVerfSize  = 8
	// MaxName and MaxPath bound names and paths on the wire; longer ones
	// are garbage. (The engine's own limits, 255 and 4096, give
	// NFS3ERR_NAMETOOLONG below these.)
	MaxName = 8192
	MaxPath = 8192
)

// Status is an nfsstat3.
type Status uint32

// nfsstat3 values.
const (
	OK             Status = 0
	ErrPerm        Status = 1
	ErrNoEnt       Status = 2
	ErrIO          Status = 5
	ErrNXIO        Status = 6
	ErrAcces       Status = 13
	ErrExist       Status = 17
	ErrXDev        Status = 18
	ErrNoDev       Status = 19
	ErrNotDir      Status = 20
	ErrIsDir       Status = 21
	ErrInval       Status = 22
	ErrFBig        Status = 27
	ErrNoSpc       Status = 28
	ErrROFS        Status = 30
	ErrMLink       Status = 31
	ErrNameTooLong Status = 63
	ErrNotEmpty    Status = 66
	ErrDQuot       Status = 69
	ErrStale       Status = 70
	ErrRemote      Status = 71
	ErrBadHandle   Status = 10001
	ErrNotSync     Status = 10002
	ErrBadCookie   Status = 10003
	ErrNotSupp     Status = 10004
	ErrTooSmall    Status = 10005
	ErrServerFault Status = 10006
	ErrBadType     Status = 10007
	ErrJukebox     Status = 10008
)

var statusNames = map[Status]string{
	OK: "NFS3_OK", ErrPerm: "NFS3ERR_PERM", ErrNoEnt: "NFS3ERR_NOENT", ErrIO: "NFS3ERR_IO",
	ErrNXIO: "NFS3ERR_NXIO", ErrAcces: "NFS3ERR_ACCES", ErrExist: "NFS3ERR_EXIST",
	ErrXDev: "NFS3ERR_XDEV", ErrNoDev: "NFS3ERR_NODEV", ErrNotDir: "NFS3ERR_NOTDIR",
	ErrIsDir: "NFS3ERR_ISDIR", ErrInval: "NFS3ERR_INVAL", ErrFBig: "NFS3ERR_FBIG",
	ErrNoSpc: "NFS3ERR_NOSPC", ErrROFS: "NFS3ERR_ROFS", ErrMLink: "NFS3ERR_MLINK",
	ErrNameTooLong: "NFS3ERR_NAMETOOLONG", ErrNotEmpty: "NFS3ERR_NOTEMPTY",
	ErrDQuot: "NFS3ERR_DQUOT", ErrStale: "NFS3ERR_STALE", ErrRemote: "NFS3ERR_REMOTE",
	ErrBadHandle: "NFS3ERR_BADHANDLE", ErrNotSync: "NFS3ERR_NOT_SYNC",
	ErrBadCookie: "NFS3ERR_BAD_COOKIE", ErrNotSupp: "NFS3ERR_NOTSUPP",
	ErrTooSmall: "NFS3ERR_TOOSMALL", ErrServerFault: "NFS3ERR_SERVERFAULT",
	ErrBadType: "NFS3ERR_BADTYPE", ErrJukebox: "NFS3ERR_JUKEBOX",
}

func (s Status) String() string {
	if n, ok := statusNames[s]; ok {
		return n
	}
	return fmt.Sprintf("nfsstat3(%d)", uint32(s))
}

// Error makes a non-OK status usable as an error (client side).
func (s Status) Error() string { return s.String() }

// FileType is an ftype3.
type FileType uint32

// ftype3 values.
const (
	TypeReg  FileType = 1
	TypeDir  FileType = 2
	TypeBlk  FileType = 3
	TypeChr  FileType = 4
	TypeLnk  FileType = 5
	TypeSock FileType = 6
	TypeFIFO FileType = 7
)

// FH is an nfs_fh3: an opaque handle of at most FHSize bytes. A decoded FH
// aliases the message it came from.
type FH []byte

// Encode appends the handle.
func (h FH) Encode(e *xdr.Encoder) { e.Opaque(h) }

// DecodeFH reads a handle.
func DecodeFH(d *xdr.Decoder) FH { return FH(d.Opaque(FHSize)) }

// Time is an nfstime3.
type Time struct {
	Sec  uint32
	Nsec uint32
}

// TimeOf converts t (clamped to the representable range).
func TimeOf(t time.Time) Time {
	if x, ok := TimeExact(t); ok {
		return x
	}
	if t.Unix() < 0 {
		return Time{}
	}
	return Time{Sec: 1<<32 - 1, Nsec: 999999999}
}

// TimeExact converts t, or reports that an nfstime3 cannot hold it: its
// seconds are unsigned 32 bits, 1970-01-01 to 2106-02-07 06:28:15 UTC.
// A client setting a time outside that range refuses it (EINVAL) rather
// than store another time (TimeOf's clamp, which the Linux NFSv3 client
// applies silently: its superblock's s_time_min is 0).
func TimeExact(t time.Time) (Time, bool) {
	s := t.Unix()
	if s < 0 || s > 1<<32-1 {
		return Time{}, false
	}
	return Time{Sec: uint32(s), Nsec: uint32(t.Nanosecond())}, true
}

// Go returns the time as a time.Time.
func (t Time) Go() time.Time { return time.Unix(int64(t.Sec), int64(t.Nsec)) }

// Encode appends the time.
func (t Time) Encode(e *xdr.Encoder) {
	e.Uint32(t.Sec)
	e.Uint32(t.Nsec)
}

// DecodeTime reads a time; nanoseconds of a second or more are garbage.
func DecodeTime(d *xdr.Decoder) Time {
	t := Time{Sec: d.Uint32(), Nsec: d.Uint32()}
	if t.Nsec >= 1e9 {
		d.Fail(fmt.Errorf("%w: nseconds %d", xdr.ErrBadValue, t.Nsec))
	}
	return t
}

// Attr is an fattr3.
type Attr struct {
	Type                FileType
	Mode                uint32
	Nlink               uint32
	UID, GID            uint32
	Size, Used          uint64
	RdevMajor           uint32
	RdevMinor           uint32
	FSID                uint64
	FileID              uint64
	Atime, Mtime, Ctime Time
}

// AttrSize is the encoded size of an fattr3.
const AttrSize = 84

// Encode appends the attributes.
func (a *Attr) Encode(e *xdr.Encoder) {
	e.Uint32(uint32(a.Type))
	e.Uint32(a.Mode)
	e.Uint32(a.Nlink)
	e.Uint32(a.UID)
	e.Uint32(a.GID)
	e.Uint64(a.Size)
	e.Uint64(a.Used)
	e.Uint32(a.RdevMajor)
	e.Uint32(a.RdevMinor)
	e.Uint64(a.FSID)
	e.Uint64(a.FileID)
	a.Atime.Encode(e)
	a.Mtime.Encode(e)
	a.Ctime.Encode(e)
}

// Decode reads the attributes.
func (a *Attr) Decode(d *xdr.Decoder) {
	a.Type = FileType(d.Uint32())
	a.Mode = d.Uint32()
	a.Nlink = d.Uint32()
	a.UID = d.Uint32()
	a.GID = d.Uint32()
	a.Size = d.Uint64()
	a.Used = d.Uint64()
	a.RdevMajor = d.Uint32()
	a.RdevMinor = d.Uint32()
	a.FSID = d.Uint64()
	a.FileID = d.Uint64()
	a.Atime = DecodeTime(d)
	a.Mtime = DecodeTime(d)
	a.Ctime = DecodeTime(d)
}

// EncodePostOp appends a post_op_attr.
func EncodePostOp(e *xdr.Encoder, a *Attr) {
	e.Bool(a != nil)
	if a != nil {
		a.Encode(e)
	}
}

// DecodePostOp reads a post_op_attr.
func DecodePostOp(d *xdr.Decoder) *Attr {
	if !d.Bool() {
		return nil
	}
	a := new(Attr)
	a.Decode(d)
	return a
}

// WccAttr is a wcc_attr: the attributes a client checks its cache with.
type WccAttr struct {
	Size         uint64
	Mtime, Ctime Time
}

// Wcc is wcc_data: attributes before and after an operation (either may
// be absent).
type Wcc struct {
	Before *WccAttr
	After  *Attr
}

// Encode appends wcc_data.
func (w *Wcc) Encode(e *xdr.Encoder) {
	e.Bool(w.Before != nil)
	if b := w.Before; b != nil {
		e.Uint64(b.Size)
		b.Mtime.Encode(e)
		b.Ctime.Encode(e)
	}
	EncodePostOp(e, w.After)
}

// Decode reads wcc_data.
func (w *Wcc) Decode(d *xdr.Decoder) {
	w.Before = nil
	if d.Bool() {
		w.Before = &WccAttr{Size: d.Uint64(), Mtime: DecodeTime(d), Ctime: DecodeTime(d)}
	}
	w.After = DecodePostOp(d)
}

// EncodePostOpFH appends a post_op_fh3.
func EncodePostOpFH(e *xdr.Encoder, h FH) {
	e.Bool(h != nil)
	if h != nil {
		h.Encode(e)
	}
}

// DecodePostOpFH reads a post_op_fh3 (nil when absent).
func DecodePostOpFH(d *xdr.Decoder) FH {
	if !d.Bool() {
		return nil
	}
	h := DecodeFH(d)
	if h == nil {
		h = FH{}
	}
	return h
}

// TimeHow says how SETATTR sets a time.
type TimeHow uint32

// time_how values.
const (
	DontChange      TimeHow = 0
	SetToServerTime TimeHow = 1
	SetToClientTime TimeHow = 2
)

// SetTime is a set_atime / set_mtime.
type SetTime struct {
	How  TimeHow
	Time Time // with SetToClientTime
}

// Sattr is an sattr3: the attributes to set (nil = leave alone).
type Sattr struct {
	Mode  *uint32
	UID   *uint32
	GID   *uint32
	Size  *uint64
	Atime SetTime
	Mtime SetTime
}

func encodeOpt32(e *xdr.Encoder, v *uint32) {
	e.Bool(v != nil)
	if v != nil {
		e.Uint32(*v)
	}
}

func decodeOpt32(d *xdr.Decoder) *uint32 {
	if !d.Bool() {
		return nil
	}
	v := d.Uint32()
	return &v
}

func encodeSetTime(e *xdr.Encoder, t SetTime) {
	e.Uint32(uint32(t.How))
	if t.How == SetToClientTime {
		t.Time.Encode(e)
	}
}

func decodeSetTime(d *xdr.Decoder) SetTime {
	t := SetTime{How: TimeHow(d.Uint32())}
	switch t.How {
	case DontChange, SetToServerTime:
	case SetToClientTime:
		t.Time = DecodeTime(d)
	default:
		d.Fail(fmt.Errorf("%w: time_how %d", xdr.ErrBadValue, t.How))
	}
	return t
}

// Encode appends the sattr3.
func (s *Sattr) Encode(e *xdr.Encoder) {
	encodeOpt32(e, s.Mode)
	encodeOpt32(e, s.UID)
	encodeOpt32(e, s.GID)
	e.Bool(s.Size != nil)
	if s.Size != nil {
		e.Uint64(*s.Size)
	}
	encodeSetTime(e, s.Atime)
	encodeSetTime(e, s.Mtime)
}

// Decode reads an sattr3.
func (s *Sattr) Decode(d *xdr.Decoder) {
	s.Mode = decodeOpt32(d)
	s.UID = decodeOpt32(d)
	s.GID = decodeOpt32(d)
	s.Size = nil
	if d.Bool() {
		v := d.Uint64()
		s.Size = &v
	}
	s.Atime = decodeSetTime(d)
	s.Mtime = decodeSetTime(d)
}

// DirOp is a diropargs3: a directory and a name in it.
type DirOp struct {
	Dir  FH
	Name string
}

// Encode appends the diropargs3.
func (a *DirOp) Encode(e *xdr.Encoder) {
	a.Dir.Encode(e)
	e.String(a.Name)
}

// Decode reads a diropargs3.
func (a *DirOp) Decode(d *xdr.Decoder) {
	a.Dir = DecodeFH(d)
	a.Name = d.String(MaxName)
}

// FHArgs are the arguments of procedures that take only a handle
// (GETATTR, READLINK, FSSTAT, FSINFO, PATHCONF).
type FHArgs struct {
	FH FH
}

// Encode appends the arguments.
func (a *FHArgs) Encode(e *xdr.Encoder) { a.FH.Encode(e) }

// Decode reads the arguments.
func (a *FHArgs) Decode(d *xdr.Decoder) { a.FH = DecodeFH(d) }

// Message is any argument or result type.
type Message interface {
	Encode(*xdr.Encoder)
	Decode(*xdr.Decoder)
}

// Unmarshal decodes a whole message from b: b must hold exactly one m.
func Unmarshal(b []byte, m Message) error {
	d := xdr.NewDecoder(b)
	m.Decode(d)
	return d.Done()
}

// Marshal appends m to buf.
func Marshal(buf []byte, m Message) []byte {
	e := xdr.NewEncoder(buf)
	m.Encode(e)
	return e.Bytes()
}
