package proto

import "github.com/regionfs/regionfs/internal/nfs/xdr"

// MOUNT v3 procedures.
const (
	MountProcNull    = 0
	MountProcMnt     = 1
	MountProcDump    = 2
	MountProcUmnt    = 3
	MountProcUmntAll = 4
	MountProcExport  = 5
	MountNumProcs    = 6
)

// MountProcNames are the MOUNT procedure names, indexed by number.
var MountProcNames = [MountNumProcs]string{"MNT_NULL", "MNT", "DUMP", "UMNT", "UMNTALL", "EXPORT"}

// Limits of MOUNT v3.
const (
	MountMaxPath = 1024 // MNTPATHLEN
	MountMaxName = 255  // MNTNAMLEN
)

// MountStatus is a mountstat3.
type MountStatus uint32

// mountstat3 values.
const (
	MountOK             MountStatus = 0
	MountErrPerm        MountStatus = 1
	MountErrNoEnt       MountStatus = 2
	MountErrIO          MountStatus = 5
	MountErrAcces       MountStatus = 13
	MountErrNotDir      MountStatus = 20
	MountErrInval       MountStatus = 22
	MountErrNameTooLong MountStatus = 63
	MountErrNotSupp     MountStatus = 10004
	MountErrServerFault MountStatus = 10006
)

func (s MountStatus) String() string {
	switch s {
	case MountOK:
		return "MNT3_OK"
	case MountErrPerm:
		return "MNT3ERR_PERM"
	case MountErrNoEnt:
		return "MNT3ERR_NOENT"
	case MountErrIO:
		return "MNT3ERR_IO"
	case MountErrAcces:
		return "MNT3ERR_ACCES"
	case MountErrNotDir:
		return "MNT3ERR_NOTDIR"
	case MountErrInval:
		return "MNT3ERR_INVAL"
	case MountErrNameTooLong:
		return "MNT3ERR_NAMETOOLONG"
	case MountErrNotSupp:
		return "MNT3ERR_NOTSUPP"
	case MountErrServerFault:
		return "MNT3ERR_SERVERFAULT"
	}
	return "mountstat3(" + itoa(uint32(s)) + ")"
}

// Error makes a non-OK status usable as an error (client side).
func (s MountStatus) Error() string { return s.String() }

func itoa(v uint32) string {
	var b [10]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + v%10)
		v /= 10
		if v == 0 {
			return string(b[i:])
		}
	}
}

// DirPathArgs are the arguments of MNT and UMNT: a dirpath.
type DirPathArgs struct {
	Path string
}

// Encode appends the arguments.
func (a *DirPathArgs) Encode(e *xdr.Encoder) { e.String(a.Path) }

// Decode reads the arguments.
func (a *DirPathArgs) Decode(d *xdr.Decoder) { a.Path = d.String(MountMaxPath) }

// MntRes is mountres3.
type MntRes struct {
	Status  MountStatus
	FH      FH       // OK
	Flavors []uint32 // OK
}

// Encode appends the result.
func (r *MntRes) Encode(e *xdr.Encoder) {
	e.Uint32(uint32(r.Status))
	if r.Status == MountOK {
		r.FH.Encode(e)
		e.Uint32(uint32(len(r.Flavors)))
		for _, f := range r.Flavors {
			e.Uint32(f)
		}
	}
}

// Decode reads the result.
func (r *MntRes) Decode(d *xdr.Decoder) {
	r.Status = MountStatus(d.Uint32())
	if r.Status == MountOK {
		r.FH = DecodeFH(d)
		n := d.Count(64, 4)
		r.Flavors = make([]uint32, n)
		for i := range r.Flavors {
			r.Flavors[i] = d.Uint32()
		}
	}
}

// MountEntry is one entry of the DUMP list.
type MountEntry struct {
	Host string
	Path string
}

// DumpRes is the mountlist DUMP returns.
type DumpRes struct {
	Entries []MountEntry
}

// Encode appends the list.
func (r *DumpRes) Encode(e *xdr.Encoder) {
	for _, m := range r.Entries {
		e.Bool(true)
		e.String(m.Host)
		e.String(m.Path)
	}
	e.Bool(false)
}

// Decode reads the list.
func (r *DumpRes) Decode(d *xdr.Decoder) {
	r.Entries = nil
	for d.Bool() && d.Err() == nil {
		m := MountEntry{Host: d.String(MountMaxName), Path: d.String(MountMaxPath)}
		if d.Err() != nil {
			return
		}
		r.Entries = append(r.Entries, m)
	}
}

// ExportEntry is one entry of the EXPORT list: a path and the groups
// (client names or CIDRs) allowed to mount it; no groups = everyone.
type ExportEntry struct {
	Dir    string
	Groups []string
}

// ExportRes is the exports list EXPORT returns.
type ExportRes struct {
	Entries []ExportEntry
}

// Encode appends the list.
func (r *ExportRes) Encode(e *xdr.Encoder) {
	for _, x := range r.Entries {
		e.Bool(true)
		e.String(x.Dir)
		for _, g := range x.Groups {
			e.Bool(true)
			e.String(g)
		}
		e.Bool(false)
	}
	e.Bool(false)
}

// Decode reads the list.
func (r *ExportRes) Decode(d *xdr.Decoder) {
	r.Entries = nil
	for d.Bool() && d.Err() == nil {
		x := ExportEntry{Dir: d.String(MountMaxPath)}
		for d.Bool() && d.Err() == nil {
			x.Groups = append(x.Groups, d.String(MountMaxName))
		}
		if d.Err() != nil {
			return
		}
		r.Entries = append(r.Entries, x)
	}
}

// Void is the empty argument or result.
type Void struct{}

// Encode appends nothing.
func (Void) Encode(*xdr.Encoder) {}

// Decode reads nothing.
func (Void) Decode(*xdr.Decoder) {}
