package nfs

import (
	"slices"

	"github.com/regionfs/regionfs/internal/engine"
	"github.com/regionfs/regionfs/internal/nfs/rpc"
)

// caller is who sent a request, from its RPC credential.
type caller struct {
	null bool // AUTH_NONE: an anonymous caller
	uid  uint32
	gid  uint32
	gids []uint32
	host string // AUTH_UNIX machine name
}

// parseCaller reads the credential of a call; the AUTH_ERROR status to
// answer when it is unacceptable.
func parseCaller(h *rpc.CallHeader) (caller, rpc.AuthStat) {
	switch h.Cred.Flavor {
	case rpc.AuthNone:
		return caller{null: true}, rpc.AuthOK
	case rpc.AuthUnix:
		c, err := rpc.ParseUnixCred(h.Cred.Body)
		if err != nil {
			return caller{}, rpc.AuthBadCred
		}
		return caller{uid: c.UID, gid: c.GID, gids: c.GIDs, host: c.MachineName}, rpc.AuthOK
	default:
		return caller{}, rpc.AuthBadCred
	}
}

// cred returns the identity the engine checks permissions with for c
// through export x: the export's PosixUser, or the caller with AUTH_NONE
// and (with root squash) root mapped to the anonymous identity.
func (x *export) cred(c caller) engine.Cred {
	if pu := x.PosixUser; pu != nil {
		return engine.Cred{UID: pu.UID, GID: pu.GID, Groups: slices.Clone(pu.Groups)}
	}
	if c.null {
		return engine.Cred{UID: x.anonUID, GID: x.anonGID}
	}
	cr := engine.Cred{UID: c.uid, GID: c.gid, Groups: c.gids}
	if x.RootSquash {
		if cr.UID == 0 {
			cr.UID = x.anonUID
		}
		if cr.GID == 0 {
			cr.GID = x.anonGID
		}
		if slices.Contains(cr.Groups, 0) {
			g := make([]uint32, 0, len(cr.Groups))
			for _, v := range cr.Groups {
				if v == 0 {
					v = x.anonGID
				}
				g = append(g, v)
			}
			cr.Groups = g
		}
	}
	return cr
}
