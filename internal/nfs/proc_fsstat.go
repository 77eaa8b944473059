package nfs

import "github.com/regionfs/regionfs/internal/nfs/proto"

// procFSStat serves FSSTAT: space and inodes, total, free and available
// to the caller (none available on a read-only export).
func procFSStat(r *request) (proto.Message, error) {
	var a proto.FSStatArgs
	if err := r.decode(&a); err != nil {
		return nil, err
	}
	res := &proto.FSStatRes{}
	t, err := r.resolve(a.FH)
	if err != nil {
		res.Status = r.status("FSSTAT", err)
		return res, nil
	}
	at, err := t.stat(r.ctx, r.s)
	if err == nil {
		st, serr := t.fs.FSStat(r.ctx)
		if err = serr; err == nil {
			res.TBytes, res.FBytes, res.ABytes = st.TotalBytes, st.FreeBytes, st.AvailBytes
			res.TFiles, res.FFiles, res.AFiles = st.TotalFiles, st.FreeFiles, st.AvailFiles
			if t.x.readOnly() {
				res.ABytes, res.AFiles = 0, 0
			}
		}
	}
	res.Status = r.status("FSSTAT", err)
	if at.Ino != 0 {
		res.Attr = t.x.fattr(&at)
	}
	return res, nil
}
