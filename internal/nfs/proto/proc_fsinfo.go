package proto

import "github.com/regionfs/regionfs/internal/nfs/xdr"

// FSINFO properties.
const (
	FSFLink        = 0x01
	FSFSymlink     = 0x02
	FSFHomogeneous = 0x08
	FSFCanSetTime  = 0x10
)

// FSInfoArgs are FSINFO3args.
type FSInfoArgs = FHArgs

// FSInfoRes is FSINFO3res.
type FSInfoRes struct {
	Status                Status
	Attr                  *Attr // both arms
	RTMax, RTPref, RTMult uint32
	WTMax, WTPref, WTMult uint32
	DTPref                uint32
	MaxFileSize           uint64
	TimeDelta             Time
	Properties            uint32
}

// Encode appends the result.
func (r *FSInfoRes) Encode(e *xdr.Encoder) {
	e.Uint32(uint32(r.Status))
	EncodePostOp(e, r.Attr)
	if r.Status == OK {
		for _, v := range []uint32{r.RTMax, r.RTPref, r.RTMult, r.WTMax, r.WTPref, r.WTMult, r.DTPref} {
			e.Uint32(v)
		}
		e.Uint64(r.MaxFileSize)
		r.TimeDelta.Encode(e)
		e.Uint32(r.Properties)
	}
}

// Decode reads the result.
func (r *FSInfoRes) Decode(d *xdr.Decoder) {
	r.Status = Status(d.Uint32())
	r.Attr = DecodePostOp(d)
	if r.Status == OK {
		for _, p := range []*uint32{&r.RTMax, &r.RTPref, &r.RTMult, &r.WTMax, &r.WTPref, &r.WTMult, &r.DTPref} {
			*p = d.Uint32()
		}
		r.MaxFileSize = d.Uint64()
		r.TimeDelta = DecodeTime(d)
		r.Properties = d.Uint32()
	}
}
