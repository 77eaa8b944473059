package efsrepl

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"strconv"
	"time"

	"github.com/regionfs/regionfs/internal/api/awserr"
	"github.com/regionfs/regionfs/internal/api/awsproto"
	"github.com/regionfs/regionfs/internal/control"
	"github.com/regionfs/regionfs/internal/control/replconf"
)

// Manager is what the handlers need of replconf.Manager.
type Manager interface {
	Create(ctx context.Context, sourceID string, dests []replconf.Destination) (replconf.Description, error)
	Describe(ctx context.Context, fsID string) ([]replconf.Description, error)
	DescribeEnds(ctx context.Context, fsID string) ([]replconf.Description, error)
	Delete(ctx context.Context, fsID, mode string) (*replconf.Promotion, error)
	PlannedFailover(ctx context.Context, fsID string) (*replconf.Promotion, error)
	Failover(ctx context.Context, fsID string, force bool) (*replconf.Promotion, error)
	LossReport(ctx context.Context, fsID string, max int) (replconf.Tombstone, []replconf.Change, bool, error)
	SetPolicy(ctx context.Context, fsID string, maxLag time.Duration) (replconf.Description, error)
	Verify(ctx context.Context, fsID string) (replconf.Description, replconf.VerifyResult, error)
	SetAutoFailover(ctx context.Context, fsID string, after time.Duration) (replconf.Description, error)
}

var _ Manager = (*replconf.Manager)(nil)

// Handler serves the replication operations.
type Handler struct {
	m      Manager
	routes awserr.EFSRoutes
}

// Wrap returns a handler that serves the replication operations and passes
// every other request to next (the rest of the EFS API).
func Wrap(next http.Handler, m Manager, log *slog.Logger) *Handler {
	h := &Handler{m: m, routes: awserr.NewEFSRoutes(next, log)}
	h.routes.Mux.HandleFunc("POST /2015-02-01/file-systems/{SourceFileSystemId}/replication-configuration", h.createReplicationConfiguration)
	h.routes.Mux.HandleFunc("DELETE /2015-02-01/file-systems/{SourceFileSystemId}/replication-configuration", h.deleteReplicationConfiguration)
	h.routes.Mux.HandleFunc("GET /2015-02-01/file-systems/replication-configurations", h.describeReplicationConfigurations)
	h.routes.Mux.HandleFunc("POST /2015-02-01/regionfs/failover", h.failover)
	h.routes.Mux.HandleFunc("GET /2015-02-01/regionfs/loss-report", h.lossReport)
	h.routes.Mux.HandleFunc("GET /2015-02-01/regionfs/replication-status", h.replicationStatus)
	h.routes.Mux.HandleFunc("POST /2015-02-01/regionfs/replication-policy", h.replicationPolicy)
	h.routes.Mux.HandleFunc("POST /2015-02-01/regionfs/verify", h.verify)
	return h
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.routes.ServeHTTP(w, r) }

// Validation patterns of the EFS model.
var (
	regionPattern   = regexp.MustCompile(`^[a-z]{2}-((iso[a-z]{0,1}-)|(gov-)){0,1}[a-z]+-{0,1}[0-9]{0,1}$`)
	kmsKeyPattern   = regexp.MustCompile(`^([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|mrk-[0-9a-f]{32}|alias/[a-zA-Z0-9/_-]+|(arn:aws[-a-z]*:kms:[a-z0-9-]+:\d{12}:((key/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})|(key/mrk-[0-9a-f]{32})|(alias/[a-zA-Z0-9/_-]+))))$`)
	roleArnPattern  = regexp.MustCompile(`^arn:(aws[a-zA-Z-]*)?:iam::\d{12}:role/?[a-zA-Z_0-9+=,.@\-_/]+$`)
	maxRequestBytes = int64(1 << 20)
)

func checkFSID(name, v string) error {
	if v == "" {
		return badRequest("%s is required", name)
	}
	if len(v) > 128 || !control.FileSystemRefPattern.MatchString(v) {
		return badRequest("%s", control.PatternMessage(name, v, control.FileSystemRefPattern))
	}
	return nil
}

func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

// readJSON decodes a request body into v (unknown members are ignored).
func readJSON(r *http.Request, v any) error {
	if err := awsproto.ReadRESTJSON(r, maxRequestBytes, v); err != nil {
		return badRequest("%v", err)
	}
	return nil
}

// readFSRequest reads the body of a regionfs operation on one file system
// into req and checks its FileSystemId, *fsID (a member of req).
func readFSRequest(r *http.Request, req any, fsID *string) error {
	if err := readJSON(r, req); err != nil {
		return err
	}
	return checkFSID("FileSystemId", *fsID)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		awserr.Responder{Protocol: awsproto.RESTJSON, Service: awsproto.EFS, RequestID: w.Header().Get("X-Amzn-Requestid")}.
			Fail(w, fmt.Errorf("efsrepl: encode response: %w", err))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(b)
}

// epoch is a timestamp as EFS sends it: epoch seconds, a JSON number.
type epoch time.Time

func (t epoch) MarshalJSON() ([]byte, error) {
	tt := time.Time(t)
	return []byte(strconv.FormatFloat(float64(tt.UnixNano())/1e9, 'f', -1, 64)), nil
}

func epochPtr(t time.Time) *epoch {
	if t.IsZero() {
		return nil
	}
	e := epoch(t)
	return &e
}

func queryInt(r *http.Request, name string) (int, bool, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return 0, false, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, false, badRequest("%s must be an integer", name)
	}
	return n, true, nil
}

func fmtErr(format string, args ...any) string { return fmt.Sprintf(format, args...) }
