package drills

import (
	"math"
	"net/http"
	"time"

	"github.com/regionfs/regionfs/internal/drill"
)

// startDrill (StartDrill): POST /2015-02-01/regionfs/drills
// {"FileSystemId", "SubnetId", "SecurityGroups", "Keep", "HoldSeconds",
// "MaxRPOSeconds", "MaxRTOSeconds", "NotificationTopicArn"} → 200 Drill
// (RUNNING). FileSystemId is the replica in this region, or its source.
// HoldSeconds > 0 makes the drill wait, once its clone answers, for the
// caller's check result (ReportDrillCheck).
func (h *Handler) startDrill(w http.ResponseWriter, r *http.Request) {
	var req struct {
		FileSystemID         string   `json:"FileSystemId"`
		SubnetID             string   `json:"SubnetId"`
		SecurityGroups       []string `json:"SecurityGroups"`
		Keep                 bool     `json:"Keep"`
		HoldSeconds          float64  `json:"HoldSeconds"`
		MaxRPOSeconds        float64  `json:"MaxRPOSeconds"`
		MaxRTOSeconds        float64  `json:"MaxRTOSeconds"`
		NotificationTopicARN string   `json:"NotificationTopicArn"`
	}
	if err := readJSON(r, &req); err != nil {
		h.fail(w, r, err)
		return
	}
	for name, v := range map[string]float64{"HoldSeconds": req.HoldSeconds, "MaxRPOSeconds": req.MaxRPOSeconds, "MaxRTOSeconds": req.MaxRTOSeconds} {
		if math.IsNaN(v) || v < 0 || v > 86400 {
			h.fail(w, r, badRequest("%s must be between 0 and 86400.", name))
			return
		}
	}
	d, err := h.s.Start(r.Context(), drill.Input{
		FileSystemID: req.FileSystemID, SubnetID: req.SubnetID, SecurityGroups: req.SecurityGroups, Keep: req.Keep,
		Hold: dur(req.HoldSeconds), MaxRPO: dur(req.MaxRPOSeconds), MaxRTO: dur(req.MaxRTOSeconds),
		NotificationTopicARN: req.NotificationTopicARN,
	})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.writeJSON(w, r, d)
}

func dur(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }
