package efsrepl

import (
	"net/http"
	"time"
)

// replicationStatus (regionfs): GET
// /2015-02-01/regionfs/replication-status?FileSystemId → 200: what
// DescribeReplicationConfigurations shows plus what this region knows
// beyond it: lag, pending and shipped records and bytes, the link, and the
// initial sync's progress.
func (h *Handler) replicationStatus(w http.ResponseWriter, r *http.Request) {
	id := r.URL.Query().Get("FileSystemId")
	if r.URL.Query().Has("FileSystemId") {
		if err := checkFSID("FileSystemId", id); err != nil {
			h.fail(w, r, err)
			return
		}
	}
	ds, err := h.m.DescribeEnds(r.Context(), id) // both ends of a same-region replication
	if err != nil {
		h.fail(w, r, err)
		return
	}
	type syncShape struct {
		Active     bool   `json:"Active"`
		Done       bool   `json:"Done"`
		Method     string `json:"Method,omitempty"`
		BytesDone  uint64 `json:"BytesDone"`
		BytesTotal uint64 `json:"BytesTotal"`
		FilesDone  uint64 `json:"FilesDone"`
		FilesTotal uint64 `json:"FilesTotal"`
		KeysDone   uint64 `json:"KeysDone"`
		KeysTotal  uint64 `json:"KeysTotal"`
		Started    *epoch `json:"Started,omitempty"`
		Finished   *epoch `json:"Finished,omitempty"`
	}
	type statusShape struct {
		descriptionShape
		ReplicationID  string    `json:"ReplicationId"`
		Role           string    `json:"Role"`
		LagSeconds     *float64  `json:"LagSeconds,omitempty"`
		SourceDurable  uint64    `json:"SourceDurableSeq"`
		Applied        uint64    `json:"AppliedSeq"`
		PendingRecords uint64    `json:"PendingRecords"`
		PendingBytes   uint64    `json:"PendingBytes"`
		ShippedRecords uint64    `json:"ShippedRecords"`
		ShippedBytes   uint64    `json:"ShippedBytes"`
		ShippedBlocks  uint64    `json:"ShippedBlocks"`
		AppliedRecords uint64    `json:"AppliedRecords"`
		LinkUp         bool      `json:"LinkUp"`
		LastContact    *epoch    `json:"LastContact,omitempty"`
		LastError      string    `json:"LastError,omitempty"`
		KeptCopy       string    `json:"KeptCopyFileSystemId,omitempty"`
		InitialSync    syncShape `json:"InitialSync"`
		// MaxPromotionLagSeconds is the promotion guard (absent: none).
		MaxPromotionLagSeconds *float64 `json:"MaxPromotionLagSeconds,omitempty"`
		// AutoFailoverAfterSeconds is the automatic failover delay
		// (absent: off).
		AutoFailoverAfterSeconds *float64 `json:"AutoFailoverAfterSeconds,omitempty"`
	}
	now := time.Now()
	out := struct {
		Replications []statusShape `json:"Replications"`
	}{Replications: []statusShape{}}
	for _, d := range ds {
		st := d.Live
		s := statusShape{
			descriptionShape: describe(d), ReplicationID: d.ID, Role: string(d.Role),
			SourceDurable: st.SourceDurable, Applied: st.Applied, PendingRecords: st.PendingRecords, PendingBytes: st.PendingBytes,
			ShippedRecords: st.ShippedRecords, ShippedBytes: st.ShippedBytes, ShippedBlocks: st.ShippedBlocks,
			AppliedRecords: st.AppliedRecords, LinkUp: st.LinkUp, LastContact: epochPtr(st.LastContact), LastError: st.LastError,
			KeptCopy: d.KeptCopy,
			InitialSync: syncShape{Active: st.Sync.Active, Done: st.Sync.Done, Method: st.Sync.Method,
				BytesDone: st.Sync.BytesDone, BytesTotal: st.Sync.BytesTotal, FilesDone: st.Sync.FilesDone, FilesTotal: st.Sync.FilesTotal,
				KeysDone: st.Sync.KeysDone, KeysTotal: st.Sync.KeysTotal,
				Started: epochPtr(st.Sync.Started), Finished: epochPtr(st.Sync.Finished)},
		}
		if d.MaxPromotionLag > 0 {
			v := d.MaxPromotionLag.Seconds()
			s.MaxPromotionLagSeconds = &v
		}
		if d.AutoFailoverAfter > 0 {
			v := d.AutoFailoverAfter.Seconds()
			s.AutoFailoverAfterSeconds = &v
		}
		if !d.LastReplicated.IsZero() {
			lag := st.Lag(now).Seconds()
			s.LagSeconds = &lag
		}
		out.Replications = append(out.Replications, s)
	}
	writeJSON(w, http.StatusOK, out)
}
