package proto

import "github.com/regionfs/regionfs/internal/nfs/xdr"

// CloseArgs are the arguments of REGIONFS_CLOSE (ProcRegionFSClose):
// WRITE3args (the file handle, the data), then the sattr3 of the
// SETATTR that follows it. The COMMIT covers the whole file.
type CloseArgs struct {
	Write WriteArgs
	Attr  Sattr
}

// Encode appends the arguments.
func (a *CloseArgs) Encode(e *xdr.Encoder) {
	a.Write.Encode(e) // the data padded
	a.Attr.Encode(e)
}

// EncodeTail appends what follows the WRITE's data and its padding: a
// client sends the data from where it lies (see WriteArgs.EncodeHead).
func (a *CloseArgs) EncodeTail(e *xdr.Encoder) { a.Attr.Encode(e) }

// Decode reads the arguments.
func (a *CloseArgs) Decode(d *xdr.Decoder) {
	a.Write.Decode(d)
	a.Attr.Decode(d)
}

// CloseRes is REGIONFS_CLOSE's result: the WRITE's, the SETATTR's and
// the COMMIT's, each as its NFSv3 procedure answers it (WRITE3res,
// SETATTR3res, COMMIT3res).
type CloseRes struct {
	Write   WriteRes
	SetAttr SetAttrRes
	Commit  CommitRes
}

// Encode appends the result.
func (r *CloseRes) Encode(e *xdr.Encoder) {
	r.Write.Encode(e)
	r.SetAttr.Encode(e)
	r.Commit.Encode(e)
}

// Decode reads the result.
func (r *CloseRes) Decode(d *xdr.Decoder) {
	r.Write.Decode(d)
	r.SetAttr.Decode(d)
	r.Commit.Decode(d)
}
