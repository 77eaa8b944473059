package efsrepl

import (
	"net/http"

	"github.com/regionfs/regionfs/internal/control/replconf"
)

// deleteReplicationConfiguration: DELETE
// /2015-02-01/file-systems/{SourceFileSystemId}/replication-configuration?deletionMode
// → 204. In the destination region this is the failover: the replica is
// promoted durably before the reply. The id may be either end's.
//
// Repeated after the failover ended (the caller had no answer: the
// process killed before the reply, a timeout), it keeps AWS's answer for
// a file system without a configuration, 404 ReplicationNotFound, its
// message naming the failover that deleted it and its recovery point;
// regionfs's failover call repeated answers 200 with that recovery point.
// Only a failover completed by a start (the process ended before the
// failover did) answers the repeated delete 204, as it answers no one
// else.
func (h *Handler) deleteReplicationConfiguration(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("SourceFileSystemId")
	if err := checkFSID("SourceFileSystemId", id); err != nil {
		h.fail(w, r, err)
		return
	}
	mode := r.URL.Query().Get("deletionMode")
	if r.URL.Query().Has("deletionMode") && mode != replconf.DeleteAll && mode != replconf.DeleteLocalOnly {
		h.fail(w, r, badRequest("deletionMode must be %s or %s", replconf.DeleteAll, replconf.DeleteLocalOnly))
		return
	}
	if _, err := h.m.Delete(r.Context(), id, mode); err != nil {
		h.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
