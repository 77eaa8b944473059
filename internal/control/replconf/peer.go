package replconf

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/regionfs/regionfs/internal/control"
	"github.com/regionfs/regionfs/internal/engine"
	"github.com/regionfs/regionfs/internal/replication"
)

// The two ends' control planes coordinate through unary calls that the
// replication node carries (replication.Node.Call, answered by Hooks):
// the source region asks the destination region to create or adopt the
// destination, to delete the configuration (promoting it), and tells it
// that the source deleted it. Bodies are JSON.
const (
	callCreateDestination = "create-destination"
	// callExistingDestination asks the destination region whether a
	// retried creation names its existing destination (a KMS key named
	// otherwise: only that region can tell); it answers with that
	// configuration or refuses, and never makes one. A region from before
	// it refuses the call as unknown, without side effects: its
	// create-destination ignored the Existing field this question was
	// first sent as (it compared the keys as strings, and made a new
	// configuration and replica where it had none).
	callExistingDestination = "existing-destination"
	callDelete              = "delete"
	callDeleted             = "deleted"
	callPing                = "ping" // is the region's control plane up (automatic failover)
)

type createDestReq struct {
	ID            string              `json:"id"`
	SourceFS      string              `json:"sourceFs"`
	SourceARN     string              `json:"sourceArn"`
	SourceOwner   string              `json:"sourceOwner"`
	OriginalARN   string              `json:"originalArn"`
	Created       time.Time           `json:"created"`
	Dest          Destination         `json:"dest"`
	Lineage       []byte              `json:"lineage"`
	Epochs        []engine.EpochStart `json:"epochs"`
	SourceDurable uint64              `json:"durable"`
	// Existing: only an existing configuration of the source file system
	// answers (the source asks whether a retry names its destination's
	// key otherwise); none is made. Always so for callExistingDestination;
	// still honoured in create-destination, where the sources that
	// brought it sent it.
	Existing bool `json:"existing,omitempty"`
}

type createDestResp struct {
	ID       string `json:"id"`
	FS       string `json:"fs"`
	Owner    string `json:"owner"`
	KeptCopy string `json:"keptCopy,omitempty"`
}

type deleteReq struct {
	ID string `json:"id"`
	// Planned: a planned failover; the source is fenced, so the
	// promotion is not coordinated (a source that learns of it later
	// fences itself).
	Planned bool `json:"planned,omitempty"`
}

// deleteResp is the destination's answer to a delete: the promotion,
// and what the source learns of it (Gone). A promotion the source took no
// part in (Gone.Coordinated false: the destination was promoted in its
// own region while the source was out of reach, or automatically) fences
// the source, as when its stream learns of it. A destination of an
// earlier version sends no Gone: the promotion is taken as coordinated,
// as it was then, unless the source's stream learned of a promotion while
// the delete was in flight (nothing vouches for it then: the source
// fences itself, as when the call fails).
type deleteResp struct {
	replication.Promotion
	Gone *replication.Gone `json:"gone,omitempty"`
}

type deletedReq struct {
	ID   string           `json:"id"`
	Gone replication.Gone `json:"gone"`
}

// peerCodes name the refusals one region's control plane sends the other
// (the codes are those of the EFS errors they become, so that regions of
// different versions understand each other). Codes not in the table
// (a peer that could not authenticate the call, an unknown call) are the
// peer's failure, not the caller's.
var peerCodes = []struct {
	kind   error
	code   string
	status int
}{
	{control.ErrFileSystemNotFound, "FileSystemNotFound", http.StatusNotFound},
	{control.ErrReplicationNotFound, "ReplicationNotFound", http.StatusNotFound},
	{control.ErrIncorrectLifeCycleState, "IncorrectFileSystemLifeCycleState", http.StatusConflict},
	{control.ErrConflict, "ConflictException", http.StatusConflict},
	{control.ErrReplicationAlreadyExists, "ReplicationAlreadyExists", http.StatusConflict},
	{control.ErrValidation, "ValidationException", http.StatusBadRequest},
	{control.ErrBadRequest, "BadRequest", http.StatusBadRequest},
	// The engine's errors that control lets through: the destination's
	// file system has a disabled or deleted key, or the region is closing.
	{engine.ErrKeyUnavailable, "KMSKeyUnavailable", http.StatusBadRequest},
	{engine.ErrClosed, "ServiceUnavailable", http.StatusServiceUnavailable},
}

// toPeer turns a refusal of this region into the answer the calling
// region gets; other errors stay internal failures (the node answers them
// without their text).
func toPeer(err error) error {
	var ce *replication.CallError
	if errors.As(err, &ce) {
		return ce
	}
	for _, c := range peerCodes {
		if errors.Is(err, c.kind) {
			msg := "The replication request failed."
			if e := (*control.Error)(nil); errors.As(err, &e) {
				msg = e.Message
			} else if c.kind == engine.ErrKeyUnavailable || c.kind == engine.ErrClosed {
				msg = c.kind.Error() // the sentinel's text, not the wrapped details
			}
			return &replication.CallError{Status: c.status, Code: c.code, Message: msg}
		}
	}
	return err
}

// fromPeer turns the other region's refusal back into the control error
// it stands for; a refusal of the call itself stays an internal failure
// (logged with its cause).
func fromPeer(err error) error {
	var ce *replication.CallError
	if !errors.As(err, &ce) {
		return err
	}
	for _, c := range peerCodes {
		if ce.Code == c.code {
			return &control.Error{Kind: c.kind, Message: ce.Message}
		}
	}
	return &PeerError{Status: ce.Status, Code: ce.Code, Message: ce.Message, Err: err}
}

// PeerError is the other region's refusal of a call that no control error
// stands for: the status, code and message as the peer answered them, so
// that a front end can read them back in its own protocol. Err, the peer's
// answer on the wire, stays in the chain for the log.
type PeerError struct {
	Status  int
	Code    string
	Message string
	Err     error
}

func (e *PeerError) Error() string {
	return "replconf: the other region refused the call: " + e.Err.Error()
}

func (e *PeerError) Unwrap() error { return e.Err }

// codeUnknownCall is every release's answer to a call it does not know.
const codeUnknownCall = "UnknownOperation"

func malformed() error {
	return &replication.CallError{Status: http.StatusBadRequest, Code: "BadRequest", Message: "malformed request"}
}

// Hooks returns the node hooks through which peers reach the manager.
func (m *Manager) Hooks() replication.Hooks { return managerHooks{m} }

type managerHooks struct{ m *Manager }

func (h managerHooks) Call(ctx context.Context, from, method string, body []byte) ([]byte, error) {
	m := h.m
	switch method {
	case callPing:
		return []byte(`{}`), nil
	case callCreateDestination, callExistingDestination:
		var req createDestReq
		// The configuration's id and its source file system name it here
		// (its records' keys, the replica's creation token).
		if err := json.Unmarshal(body, &req); err != nil || req.ID == "" || req.SourceFS == "" {
			return nil, malformed()
		}
		if method == callExistingDestination {
			req.Existing = true
		}
		resp, err := m.createDestination(ctx, from, req)
		if err != nil {
			return nil, toPeer(err)
		}
		return json.Marshal(resp)
	case callDelete:
		var req deleteReq
		if err := json.Unmarshal(body, &req); err != nil {
			return nil, malformed()
		}
		// Deleted here already (a failover, completed at a start if the
		// process ended in the middle of it, or while this call waited
		// for it): the same answer, and whether the source took part in
		// it. Only to the configuration's source region (a tombstone of
		// an earlier version does not say which it was).
		deleted := func() ([]byte, bool) {
			t, ok := m.Tombstone(replication.RoleDestination, req.ID)
			if !ok || t.Role != replication.RoleDestination || t.Promotion == nil || t.SourceRegion != "" && t.SourceRegion != from {
				return nil, false
			}
			g := t.Gone
			b, err := json.Marshal(deleteResp{Promotion: *t.Promotion, Gone: &g})
			return b, err == nil
		}
		m.mu.Lock()
		c := m.configs[mapKey(replication.RoleDestination, req.ID)]
		m.mu.Unlock()
		if c == nil {
			if b, ok := deleted(); ok {
				return b, nil
			}
		}
		if c == nil || c.SourceRegion != from {
			return nil, toPeer(control.Errorf(control.ErrReplicationNotFound, "No such replication configuration."))
		}
		// Forced: the lease hard fencing waits out is there for a source
		// cut off from its destination, which may still take writes until
		// it runs out. This source is not cut off; it asks: a planned
		// failover's stopped its writes before, and a delete's stays
		// writable beside the promoted replica by AWS's semantics. Waiting
		// (1.5 leases from the last acknowledgement) outlasted the
		// caller's call (2 s): every delete at the source failed as if
		// this region did not answer, and a planned failover never
		// completed.
		p, g, err := m.promoteDestinationGone(ctx, c, promotion{sourceAsked: true, fenceSource: req.Planned, force: true})
		if errors.Is(err, control.ErrReplicationNotFound) {
			if b, ok := deleted(); ok {
				return b, nil
			}
		}
		if err != nil {
			return nil, toPeer(err)
		}
		return json.Marshal(deleteResp{Promotion: *p, Gone: &g})
	case callDeleted:
		var req deletedReq
		if err := json.Unmarshal(body, &req); err != nil {
			return nil, malformed()
		}
		// Only the configuration's destination region ends it here (a
		// promotion not coordinated fences the source).
		m.mu.Lock()
		c := m.configs[mapKey(replication.RoleSource, req.ID)]
		m.mu.Unlock()
		if c != nil && c.DestRegion != from {
			return nil, toPeer(control.Errorf(control.ErrReplicationNotFound, "No such replication configuration."))
		}
		m.sourceGone(ctx, req.ID, req.Gone)
		return []byte("{}"), nil
	}
	return nil, &replication.CallError{Status: http.StatusNotFound, Code: codeUnknownCall, Message: "unknown call " + method}
}

func (h managerHooks) Gone(_ context.Context, from, id string) replication.Gone {
	if t, ok := h.m.Tombstone(replication.RoleDestination, id); ok && (t.SourceRegion == "" || t.SourceRegion == from) {
		return t.Gone
	}
	return replication.Gone{Reason: fmt.Sprintf("region %s has no replication configuration %s (deleted there)", h.m.o.Name, id)}
}

// Known reports whether this region receives replication id (its
// configuration is kept here, whether or not its replica is open on this
// node).
func (h managerHooks) Known(id string) bool {
	h.m.mu.Lock()
	defer h.m.mu.Unlock()
	c := h.m.configs[mapKey(replication.RoleDestination, id)]
	return c != nil && !c.Deleting
}

func (h managerHooks) SourceGone(ctx context.Context, id string, g replication.Gone) {
	h.m.sourceGone(ctx, id, g)
}
