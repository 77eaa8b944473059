package drills

import "net/http"

// describeDrill (DescribeDrill): GET /2015-02-01/regionfs/drills/{DrillId}
// → 200 Drill, as far as it got.
func (h *Handler) describeDrill(w http.ResponseWriter, r *http.Request) {
	id, err := drillID(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.writeDrill(w, r, id)
}
