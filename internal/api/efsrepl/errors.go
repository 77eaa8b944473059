package efsrepl

import (
	"net/http"

	"github.com/regionfs/regionfs/internal/api/awserr"
	"github.com/regionfs/regionfs/internal/control"
)

// badRequest is a malformed request (EFS's BadRequest).
func badRequest(format string, args ...any) error {
	return awserr.Errorf(control.ErrBadRequest, format, args...)
}

// fail writes err as an EFS error through awserr's table (a refusal of
// the other region arrives as the control error it stands for); internal
// failures are logged with the request id.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error) { h.routes.Fail(w, r, err) }
