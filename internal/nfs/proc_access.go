package nfs

import (
	"slices"

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
		granted := modeAccess(t.cred, &at)
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

// modeAccess returns the permission triplet bits (engine.AccessRead,
// AccessWrite, AccessExec) cred holds on a by its mode: root may read and
// write anything and execute what anyone may execute (or search any
// directory); others get the owner's, the group's or everyone's bits.
func modeAccess(cred engine.Cred, a *engine.Attr) uint32 {
	if cred.UID == 0 {
		g := uint32(engine.AccessRead | engine.AccessWrite)
		if a.Type == engine.TypeDir || a.Mode&0o111 != 0 {
			g |= engine.AccessExec
		}
		return g
	}
	switch {
	case cred.UID == a.UID:
		return a.Mode >> 6 & 7
	case cred.GID == a.GID || slices.Contains(cred.Groups, a.GID):
		return a.Mode >> 3 & 7
	default:
		return a.Mode & 7
	}
}
