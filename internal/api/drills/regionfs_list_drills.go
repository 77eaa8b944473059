package drills

import (
	"net/http"
	"strconv"

	"github.com/regionfs/regionfs/internal/control"
	"github.com/regionfs/regionfs/internal/drill"
)

// listDrills (ListDrills): GET /2015-02-01/regionfs/drills?FileSystemId=
// &MaxItems= → 200 {"Drills": […]}, newest first: the region's drill
// history, or that of one file system (the replica or its source).
func (h *Handler) listDrills(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	fsID := q.Get("FileSystemId")
	if fsID != "" && (len(fsID) > 128 || !control.FileSystemRefPattern.MatchString(fsID)) {
		h.fail(w, r, badRequest("%s", control.PatternMessage("FileSystemId", fsID, control.FileSystemRefPattern)))
		return
	}
	max := 0
	if v := q.Get("MaxItems"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			h.fail(w, r, badRequest("MaxItems must be an integer from 1 to 1000."))
			return
		}
		max = n
	}
	ds := h.s.List(r.Context(), fsID, max)
	if ds == nil {
		ds = []drill.Drill{}
	}
	h.writeJSON(w, r, struct{ Drills []drill.Drill }{ds})
}
