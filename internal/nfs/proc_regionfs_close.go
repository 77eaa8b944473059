package nfs

import (
	"github.com/regionfs/regionfs/internal/nfs/proto"
	"github.com/regionfs/regionfs/internal/nfs/xdr"
)

// procRegionFSClose serves REGIONFS_CLOSE (proto.ProcRegionFSClose): the
// WRITE, the SETATTR and the COMMIT that `regionfs mount` sends when it
// closes a small file with attribute changes waiting for its data (cp -a),
// each served by its own procedure, one after the other, each with its
// own result: what the three NFSv3 calls sent back to back on one
// connection do (orderGate), with one request read, one worker woken and
// one reply written instead of three of each. The SETATTR lands after
// the data (the mtime it sets stays) and writes the buffered data and the
// change in one durable commit (writeback.settleAttr); the COMMIT then
// answers once both are durable. A part that fails does not stop the
// others, as it would not stop the calls sent after it: a change the
// caller may not make fails alone, and the data is still committed.
func procRegionFSClose(r *request) (proto.Message, error) {
	var a proto.CloseArgs
	if err := r.decode(&a); err != nil {
		return nil, err
	}
	// The arguments start with WRITE3args (procWrite ignores what follows
	// them); the SETATTR's and the COMMIT's are made from the same handle,
	// before the WRITE may keep the record they are read from
	// (request.takeRecord).
	e := xdr.NewEncoder(make([]byte, 0, 2*len(a.Write.FH)+96))
	sa := proto.SetAttrArgs{FH: a.Write.FH, Attr: a.Attr}
	sa.Encode(e)
	split := e.Len()
	ca := proto.CommitArgs{FH: a.Write.FH}
	ca.Encode(e)
	setattrArgs, commitArgs := e.Bytes()[:split], e.Bytes()[split:]

	args := r.args
	defer func() { r.args = args }()
	res := &proto.CloseRes{}
	m, err := procWrite(r)
	if err != nil {
		return nil, err
	}
	res.Write = *m.(*proto.WriteRes)
	r.args = setattrArgs
	if m, err = procSetAttr(r); err != nil {
		return nil, err
	}
	res.SetAttr = *m.(*proto.SetAttrRes)
	r.args = commitArgs
	if m, err = procCommit(r); err != nil {
		return nil, err
	}
	res.Commit = *m.(*proto.CommitRes)
	return res, nil
}
