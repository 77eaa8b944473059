package efsrepl

import (
	"net/http"
	"time"

	"github.com/regionfs/regionfs/internal/control/replconf"
)

// failover (regionfs): POST /2015-02-01/regionfs/failover
// {"FileSystemId", "Planned", "Force"} → 200 {"RecoveryPoint": …}.
// Planned (in the source region) hands over without losing a change;
// otherwise (in the destination region) it is the unplanned failover of
// DeleteReplicationConfiguration, Force not waiting for a hard-fencing
// lease. Repeated in the destination region after it completed (its
// answer lost), it answers with the same recovery point while that
// failover is the last thing that happened to the file system's
// replication (replconf.Manager.Failover).
func (h *Handler) failover(w http.ResponseWriter, r *http.Request) {
	var req struct {
		FileSystemID string `json:"FileSystemId"`
		Planned      bool   `json:"Planned"`
		Force        bool   `json:"Force"`
	}
	if err := readFSRequest(r, &req, &req.FileSystemID); err != nil {
		h.fail(w, r, err)
		return
	}
	start := time.Now()
	var (
		p   *replconf.Promotion
		err error
	)
	if req.Planned {
		p, err = h.m.PlannedFailover(r.Context(), req.FileSystemID)
	} else {
		p, err = h.m.Failover(r.Context(), req.FileSystemID, req.Force)
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, struct {
		RecoveryPoint recoveryPointShape `json:"RecoveryPoint"`
		Planned       bool               `json:"Planned"`
		Seconds       float64            `json:"Seconds"`
	}{recoveryPoint(p), req.Planned, time.Since(start).Seconds()})
}

type recoveryPointShape struct {
	Seq                     uint64 `json:"Seq"`
	Time                    *epoch `json:"Time,omitempty"`
	OldEpoch                uint64 `json:"OldEpoch"`
	NewEpoch                uint64 `json:"NewEpoch"`
	SourceDurableSeq        uint64 `json:"SourceDurableSeq"`
	SourceLastHeard         *epoch `json:"SourceLastHeard,omitempty"`
	AtLeastLostTransactions uint64 `json:"AtLeastLostTransactions"`
	// InitialSyncUnfinished: the replica's initial sync had not finished;
	// it was promoted as a new, empty file system (nothing recovered).
	// EmptyReason says so.
	InitialSyncUnfinished bool   `json:"InitialSyncUnfinished,omitempty"`
	EmptyReason           string `json:"EmptyReason,omitempty"`
	// ResyncAbandoned: the replica was being resynced (a failback) and
	// went back to its own state from before the resync (Seq is its
	// own); nothing the source wrote since the histories forked is in
	// it. AbandonedReason says so.
	ResyncAbandoned bool   `json:"ResyncAbandoned,omitempty"`
	AbandonedReason string `json:"AbandonedReason,omitempty"`
}

func recoveryPoint(p *replconf.Promotion) recoveryPointShape {
	if p == nil {
		return recoveryPointShape{}
	}
	s := recoveryPointShape{
		Seq: p.Seq, Time: epochPtr(p.Time), OldEpoch: p.OldEpoch, NewEpoch: p.NewEpoch,
		SourceDurableSeq: p.SourceDurable, SourceLastHeard: epochPtr(p.SourceHeard), AtLeastLostTransactions: p.AtLeastLost(),
		InitialSyncUnfinished: p.Empty,
	}
	if p.Empty {
		s.EmptyReason = p.EmptyReason()
	}
	if p.Abandoned {
		s.ResyncAbandoned, s.AbandonedReason = true, p.AbandonedReason()
	}
	return s
}
