package efsrepl

import (
	"errors"
	"net/http"

	"github.com/regionfs/regionfs/internal/api/awserr"
	"github.com/regionfs/regionfs/internal/api/awsproto"
	"github.com/regionfs/regionfs/internal/replication"
)

// badRequest is a malformed request (EFS's BadRequest).
func badRequest(format string, args ...any) error {
	return awserr.Errorf(replication.ErrBadRequest, format, args...)
}

// fail writes err as an EFS error through awserr's table. An error the
// peer region answered (a *replication.CallError) is written as the peer
// chose it; internal failures are logged with the request id.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	var ce *replication.CallError
	if errors.As(err, &ce) {
		err = awserr.FromREST(ce.Status, ce.Code, ce.Message)
	}
	reqID := w.Header().Get("X-Amzn-Requestid")
	if reqID == "" {
		reqID = awserr.NewRequestID()
	}
	awserr.Responder{Protocol: awsproto.RESTJSON, Service: awsproto.EFS, RequestID: reqID, Op: r.Method + " " + r.URL.Path, Log: h.log}.Fail(w, err)
}
