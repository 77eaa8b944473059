package nfs

import (
	"github.com/regionfs/regionfs/internal/nfs/proto"
)

// status maps err to the reply status, logging errors that are the
// server's fault (a client's mistake is a status, not a log line).
func (r *request) status(op string, err error) proto.Status {
	st := statusOf(err)
	switch st {
	case proto.ErrServerFault, proto.ErrIO:
		r.s.log.Error("nfs operation failed", "op", op, "remote", r.c.remote, "xid", r.h.XID, "status", st, "err", err)
	}
	return st
}
