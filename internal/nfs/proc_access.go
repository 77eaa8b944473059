package nfs

import (
	"github.com/regionfs/regionfs/internal/engine"
	"github.com/regionfs/regionfs/internal/nfs/proto"
)

// procAccess serves ACCESS: which of the asked rights the caller has,
// from the mode bits, owner and groups (AUTH_UNIX, after squashing), as
// Linux's server computes them (without the owner override the engine
// applies to READ and WRITE of an already open file, so a client's open
// of a file its owner made read-only fails as POSIX wants): for a directory LOOKUP needs search and
// MODIFY, EXTEND and DELETE need write and search; for a file MODIFY and
// EXTEND need write and EXECUTE needs execute. A read-only export grants
// none of the modifying rights.
func procAccess(r *request) (proto.Message, error) {
	var a proto.AccessArgs
	if err := r.decode(&a); err != nil {
		return nil, err
	}
	res := &proto.AccessRes{}
	t, err := r.resolve(a.FH)
	if err != nil {
		res.Status = r.status("ACCESS", err)
		return res, nil
	}
	at, err := t.stat(r.ctx, r.s)
	if err == nil {
		granted := t.cred.Granted(&at)
		rd, wr, ex := granted&engine.AccessRead != 0, granted&engine.AccessWrite != 0, granted&engine.AccessExec != 0
		var bits uint32
		if rd {
			bits |= proto.AccessRead
		}
		if at.Type == engine.TypeDir {
			if ex {
				bits |= proto.AccessLookup
			}
			if wr && ex {
				bits |= proto.AccessModify | proto.AccessExtend | proto.AccessDelete
			}
		} else {
			if wr {
				bits |= proto.AccessModify | proto.AccessExtend
			}
			if ex {
				bits |= proto.AccessExecute
			}
		}
		if t.x.readOnly() {
			bits &^= proto.AccessModify | proto.AccessExtend | proto.AccessDelete
		}
		res.Access = bits & a.Access
		res.Attr = t.x.fattr(&at)
	}
	res.Status = r.status("ACCESS", err)
	return res, nil
}
