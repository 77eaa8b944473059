package proto

import "github.com/regionfs/regionfs/internal/nfs/xdr"

// FSStatArgs are FSSTAT3args.
type FSStatArgs = FHArgs

// FSStatRes is FSSTAT3res.
type FSStatRes struct {
	Status                 Status
	Attr                   *Attr // both arms
	TBytes, FBytes, ABytes uint64
	TFiles, FFiles, AFiles uint64
	InvarSec               uint32
}

// Encode appends the result.
func (r *FSStatRes) Encode(e *xdr.Encoder) {
	e.Uint32(uint32(r.Status))
	EncodePostOp(e, r.Attr)
	if r.Status == OK {
		for _, v := range []uint64{r.TBytes, r.FBytes, r.ABytes, r.TFiles, r.FFiles, r.AFiles} {
			e.Uint64(v)
		}
		e.Uint32(r.InvarSec)
	}
}

// Decode reads the result.
func (r *FSStatRes) Decode(d *xdr.Decoder) {
	r.Status = Status(d.Uint32())
	r.Attr = DecodePostOp(d)
	if r.Status == OK {
		for _, p := range []*uint64{&r.TBytes, &r.FBytes, &r.ABytes, &r.TFiles, &r.FFiles, &r.AFiles} {
			*p = d.Uint64()
		}
		r.InvarSec = d.Uint32()
	}
}
