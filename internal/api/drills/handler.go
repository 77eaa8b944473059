package drills

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/regionfs/regionfs/internal/api/awserr"
	"github.com/regionfs/regionfs/internal/api/awsproto"
	"github.com/regionfs/regionfs/internal/drill"
)

// Service is what the handlers need of drill.Service.
type Service interface {
	Start(ctx context.Context, in drill.Input) (drill.Drill, error)
	Get(ctx context.Context, id string) (drill.Drill, error)
	List(ctx context.Context, fsID string, max int) []drill.Drill
	ReportCheck(ctx context.Context, id string, r drill.CheckResult) error
}

var _ Service = (*drill.Service)(nil)

// Handler serves the drill operations.
type Handler struct {
	s      Service
	routes awserr.EFSRoutes
}

// Wrap returns a handler that serves the drill operations and passes every
// other request to next.
func Wrap(next http.Handler, s Service, log *slog.Logger) *Handler {
	h := &Handler{s: s, routes: awserr.NewEFSRoutes(next, log)}
	h.routes.Mux.HandleFunc("POST /2015-02-01/regionfs/drills", h.startDrill)
	h.routes.Mux.HandleFunc("GET /2015-02-01/regionfs/drills", h.listDrills)
	h.routes.Mux.HandleFunc("GET /2015-02-01/regionfs/drills/{DrillId}", h.describeDrill)
	h.routes.Mux.HandleFunc("POST /2015-02-01/regionfs/drills/{DrillId}/check", h.reportDrillCheck)
	return h
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.routes.ServeHTTP(w, r) }

func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error) { h.routes.Fail(w, r, err) }

func badRequest(format string, args ...any) error {
	return awserr.Errorf(drill.ErrBadRequest, format, args...)
}

func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

// maxRequestBytes bounds a request body.
const maxRequestBytes = 64 << 10

// readJSON decodes a request body into v (unknown members are ignored).
func readJSON(r *http.Request, v any) error {
	if err := awsproto.ReadRESTJSON(r, maxRequestBytes, v); err != nil {
		return badRequest("%v", err)
	}
	return nil
}

func (h *Handler) writeJSON(w http.ResponseWriter, r *http.Request, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		h.fail(w, r, fmt.Errorf("drills: encode response: %w", err))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	w.Write(b)
}

// writeDrill answers with drill id as it stands now.
func (h *Handler) writeDrill(w http.ResponseWriter, r *http.Request, id string) {
	d, err := h.s.Get(r.Context(), id)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.writeJSON(w, r, d)
}

func drillID(r *http.Request) (string, error) {
	id := r.PathValue("DrillId")
	if !drill.ValidDrillID(id) {
		return "", badRequest("DrillId '%s' is not a drill id (drill- and 17 hex digits).", clip(id))
	}
	return id, nil
}
