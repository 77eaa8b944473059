package efsrepl

import (
	"net/http"
)

// lossReport (regionfs): GET /2015-02-01/regionfs/loss-report?FileSystemId&MaxItems
// → 200: the changes a former source committed after the recovery point of
// the destination that was promoted without it.
func (h *Handler) lossReport(w http.ResponseWriter, r *http.Request) {
	id := r.URL.Query().Get("FileSystemId")
	if err := checkFSID("FileSystemId", id); err != nil {
		h.fail(w, r, err)
		return
	}
	max, ok, err := queryInt(r, "MaxItems")
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if !ok {
		max = 10000
	}
	if max < 1 || max > 1000000 {
		h.fail(w, r, badRequest("MaxItems must be between 1 and 1000000"))
		return
	}
	t, losses, complete, err := h.m.LossReport(r.Context(), id, max)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	type change struct {
		Seq    uint64   `json:"Seq"`
		Time   epoch    `json:"Time"`
		Op     string   `json:"Operation"`
		Paths  []string `json:"Paths"`
		Inodes []uint64 `json:"Inodes"`
	}
	resp := struct {
		FileSystemID         string `json:"FileSystemId"`
		PromotedFileSystemID string `json:"PromotedFileSystemId"`
		RecoverySeq          uint64 `json:"RecoverySeq"`
		RecoveryTime         *epoch `json:"RecoveryTime,omitempty"`
		PromotedEpoch        uint64 `json:"PromotedEpoch"`
		// InitialSyncUnfinished: the destination was promoted before
		// its initial sync finished and holds nothing of this file
		// system: every change is lost to it.
		InitialSyncUnfinished bool `json:"InitialSyncUnfinished,omitempty"`
		// ResyncAbandoned: the destination was being resynced from
		// this file system (a failback) and went back to its own state
		// from before the resync: every change after RecoverySeq (the
		// fork) is lost to it.
		ResyncAbandoned bool     `json:"ResyncAbandoned,omitempty"`
		Complete        bool     `json:"Complete"`
		Changes         []change `json:"Changes"`
	}{FileSystemID: t.SourceFS, PromotedFileSystemID: t.DestFS, RecoverySeq: t.RecoverySeq, RecoveryTime: epochPtr(t.RecoveryTime),
		PromotedEpoch: t.Epoch, InitialSyncUnfinished: t.Empty, ResyncAbandoned: t.Abandoned, Complete: complete, Changes: []change{}}
	for _, l := range losses {
		resp.Changes = append(resp.Changes, change{Seq: l.Seq, Time: epoch(l.Time), Op: l.Op, Paths: l.Paths, Inodes: l.Inos})
	}
	writeJSON(w, http.StatusOK, resp)
}
