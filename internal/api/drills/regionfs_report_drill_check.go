package drills

import (
	"math"
	"net/http"

	"github.com/regionfs/regionfs/internal/drill"
)

// reportDrillCheck (ReportDrillCheck): POST
// /2015-02-01/regionfs/drills/{DrillId}/check {"Passed", "ExitCode",
// "Output", "Command", "Seconds"} → 200 Drill: the result of the check the
// caller ran against a held drill's clone; the drill then goes on (clean-up,
// report).
func (h *Handler) reportDrillCheck(w http.ResponseWriter, r *http.Request) {
	id, err := drillID(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	var req struct {
		Passed   bool    `json:"Passed"`
		ExitCode int     `json:"ExitCode"`
		Output   string  `json:"Output"`
		Command  string  `json:"Command"`
		Seconds  float64 `json:"Seconds"`
	}
	if err := readJSON(r, &req); err != nil {
		h.fail(w, r, err)
		return
	}
	if math.IsNaN(req.Seconds) || req.Seconds < 0 || req.Seconds > 86400 {
		h.fail(w, r, badRequest("Seconds must be between 0 and 86400."))
		return
	}
	if len(req.Command) > 4096 {
		h.fail(w, r, badRequest("Command is longer than 4096 bytes."))
		return
	}
	if err := h.s.ReportCheck(r.Context(), id, drill.CheckResult{Passed: req.Passed, ExitCode: req.ExitCode, Output: req.Output,
		Command: req.Command, Seconds: req.Seconds}); err != nil {
		h.fail(w, r, err)
		return
	}
	h.writeDrill(w, r, id)
}
