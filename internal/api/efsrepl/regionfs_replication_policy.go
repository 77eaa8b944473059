package efsrepl

import (
	"math"
	"net/http"
	"time"

	"github.com/regionfs/regionfs/internal/control"
)

// replicationPolicy (regionfs): POST /2015-02-01/regionfs/replication-policy
// {"FileSystemId", "MaxPromotionLagSeconds"} → 200 {"ReplicationId",
// "MaxPromotionLagSeconds"}: the promotion guard of the configuration the
// file system takes part in, stored in this region (set it in the
// destination region, where failover reads it); 0 removes it.
func (h *Handler) replicationPolicy(w http.ResponseWriter, r *http.Request) {
	var req struct {
		FileSystemID           string   `json:"FileSystemId"`
		MaxPromotionLagSeconds *float64 `json:"MaxPromotionLagSeconds"`
	}
	if err := readFSRequest(r, &req, &req.FileSystemID); err != nil {
		h.fail(w, r, err)
		return
	}
	v := req.MaxPromotionLagSeconds
	if v == nil || math.IsNaN(*v) || *v < 0 || *v > (365*24*time.Hour).Seconds() {
		h.fail(w, r, control.Errorf(control.ErrBadRequest, "MaxPromotionLagSeconds is required, between 0 and 31536000."))
		return
	}
	d, err := h.m.SetPolicy(r.Context(), req.FileSystemID, time.Duration(*v*float64(time.Second)))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, struct {
		ReplicationID          string  `json:"ReplicationId"`
		FileSystemID           string  `json:"FileSystemId"`
		MaxPromotionLagSeconds float64 `json:"MaxPromotionLagSeconds"`
	}{d.ID, req.FileSystemID, d.MaxPromotionLag.Seconds()})
}
