package awserr

import (
	"log/slog"
	"net/http"

	"github.com/regionfs/regionfs/internal/api/awsproto"
)

// EFSRoutes serves a part of the EFS API (restJson1) from Mux and passes
// every other request to Next; with no Next, the request is EFS's unknown
// operation. Its Fail writes the errors of those routes.
type EFSRoutes struct {
	Mux  *http.ServeMux
	Next http.Handler
	Log  *slog.Logger // internal failures and refusals (see Responder)
}

// NewEFSRoutes returns routes with an empty mux in front of next; a nil log
// logs nothing.
func NewEFSRoutes(next http.Handler, log *slog.Logger) EFSRoutes {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return EFSRoutes{Mux: http.NewServeMux(), Next: next, Log: log}
}

func (e EFSRoutes) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if _, pattern := e.Mux.Handler(r); pattern != "" {
		e.Mux.ServeHTTP(w, r)
		return
	}
	if e.Next == nil {
		path := r.URL.Path
		if len(path) > 64 {
			path = path[:64] + "…"
		}
		e.Fail(w, r, Errorf(ErrUnknownOperation, "No EFS operation is %s %s.", r.Method, path))
		return
	}
	e.Next.ServeHTTP(w, r)
}

// Fail writes err as an EFS error of request r, under the request id the
// response already carries (X-Amzn-Requestid) or a new one.
func (e EFSRoutes) Fail(w http.ResponseWriter, r *http.Request, err error) {
	reqID := RequestID(w)
	Responder{Protocol: awsproto.RESTJSON, Service: awsproto.EFS, RequestID: reqID, Op: r.Method + " " + r.URL.Path, Log: e.Log}.Fail(w, err)
}
