package efsrepl

import (
	"math"
	"net/http"
	"time"

	"github.com/regionfs/regionfs/internal/control"
	"github.com/regionfs/regionfs/internal/control/replconf"
)

// replicationPolicy (regionfs): POST /2015-02-01/regionfs/replication-policy
// {"FileSystemId", "MaxPromotionLagSeconds"?, "AutoFailoverAfterSeconds"?}
// → 200 {"ReplicationId", "MaxPromotionLagSeconds",
// "AutoFailoverAfterSeconds"}: the promotion guard and the automatic
// failover delay of the configuration the file system takes part in,
// stored in this region (set them in the destination region, where
// failover reads them); 0 removes either.
func (h *Handler) replicationPolicy(w http.ResponseWriter, r *http.Request) {
	var req struct {
		FileSystemID             string   `json:"FileSystemId"`
		MaxPromotionLagSeconds   *float64 `json:"MaxPromotionLagSeconds"`
		AutoFailoverAfterSeconds *float64 `json:"AutoFailoverAfterSeconds"`
	}
	if err := readFSRequest(r, &req, &req.FileSystemID); err != nil {
		h.fail(w, r, err)
		return
	}
	bad := func(v *float64) bool { return math.IsNaN(*v) || *v < 0 || *v > (365*24*time.Hour).Seconds() }
	v, af := req.MaxPromotionLagSeconds, req.AutoFailoverAfterSeconds
	if (v == nil && af == nil) || (v != nil && bad(v)) || (af != nil && bad(af)) {
		h.fail(w, r, control.Errorf(control.ErrBadRequest, "MaxPromotionLagSeconds or AutoFailoverAfterSeconds is required, between 0 and 31536000."))
		return
	}
	var d replconf.Description
	var err error
	if v != nil {
		if d, err = h.m.SetPolicy(r.Context(), req.FileSystemID, time.Duration(*v*float64(time.Second))); err != nil {
			h.fail(w, r, err)
			return
		}
	}
	if af != nil {
		if d, err = h.m.SetAutoFailover(r.Context(), req.FileSystemID, time.Duration(*af*float64(time.Second))); err != nil {
			h.fail(w, r, err)
			return
		}
	}
	writeJSON(w, http.StatusOK, struct {
		ReplicationID            string  `json:"ReplicationId"`
		FileSystemID             string  `json:"FileSystemId"`
		MaxPromotionLagSeconds   float64 `json:"MaxPromotionLagSeconds"`
		AutoFailoverAfterSeconds float64 `json:"AutoFailoverAfterSeconds"`
	}{d.ID, req.FileSystemID, d.MaxPromotionLag.Seconds(), d.AutoFailoverAfter.Seconds()})
}
