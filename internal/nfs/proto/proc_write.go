package proto

import (
	"fmt"
	"math"

	"github.com/regionfs/regionfs/internal/nfs/xdr"
)

// StableHow is a stable_how.
type StableHow uint32

// stable_how values.
const (
	Unstable StableHow = 0
	DataSync StableHow = 1
	FileSync StableHow = 2
)

func (s StableHow) String() string {
	switch s {
	case Unstable:
		return "UNSTABLE"
	case DataSync:
		return "DATA_SYNC"
	case FileSync:
		return "FILE_SYNC"
	}
	return fmt.Sprintf("stable_how(%d)", uint32(s))
}

// WriteArgs are WRITE3args. The data aliases the request.
type WriteArgs struct {
	FH     FH
	Offset uint64
	Count  uint32
	Stable StableHow
	Data   []byte
}

// Encode appends the arguments.
func (a *WriteArgs) Encode(e *xdr.Encoder) {
	a.EncodeHead(e)
	e.Fixed(a.Data)
}

// EncodeHead appends the arguments up to the data: what Encode writes
// is this, the data, then its padding (WritePad). A client sends the data
// from where it lies instead of copying it behind the head.
func (a *WriteArgs) EncodeHead(e *xdr.Encoder) {
	a.FH.Encode(e)
	e.Uint64(a.Offset)
	e.Uint32(a.Count)
	e.Uint32(uint32(a.Stable))
	e.Uint32(uint32(len(a.Data)))
}

// WritePad is the XDR padding after a WRITE's data of n bytes.
func WritePad(n int) []byte { return zeroPad[:(4-n%4)%4] }

var zeroPad [4]byte

// Decode reads the arguments.
func (a *WriteArgs) Decode(d *xdr.Decoder) {
	a.FH = DecodeFH(d)
	a.Offset = d.Uint64()
	a.Count = d.Uint32()
	a.Stable = StableHow(d.Uint32())
	if a.Stable > FileSync {
		d.Fail(fmt.Errorf("%w: stable_how %d", xdr.ErrBadValue, a.Stable))
	}
	a.Data = d.Opaque(math.MaxInt32)
}

// WriteRes is WRITE3res.
type WriteRes struct {
	Status    Status
	Wcc       Wcc // both arms
	Count     uint32
	Committed StableHow
	Verf      [WriteVerfSize]byte
}

// Encode appends the result.
func (r *WriteRes) Encode(e *xdr.Encoder) {
	e.Uint32(uint32(r.Status))
	r.Wcc.Encode(e)
	if r.Status == OK {
		e.Uint32(r.Count)
		e.Uint32(uint32(r.Committed))
		e.Fixed(r.Verf[:])
	}
}

// Decode reads the result.
func (r *WriteRes) Decode(d *xdr.Decoder) {
	r.Status = Status(d.Uint32())
	r.Wcc.Decode(d)
	if r.Status == OK {
		r.Count = d.Uint32()
		r.Committed = StableHow(d.Uint32())
		copy(r.Verf[:], d.Fixed(WriteVerfSize))
	}
}
