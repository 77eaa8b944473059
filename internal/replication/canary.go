package replication

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/regionfs/regionfs/internal/engine"
)

// Canaries (a drill's RPO measure): the destination asks the source region
// to commit a canary mark on the source file system (engine.FS.Mark); the
// mark travels like every change (journal, shipping, ordered apply), so the
// time until the replica holds it is the data a failover at that instant
// would lose.

// CanaryMark is the name of the canary mark.
const CanaryMark = "drill-canary"

const callCanary = "canary"

// ErrBadCanary: a canary token is empty or longer than a mark's value.
var ErrBadCanary = errors.New("replication: bad canary token")

type canaryReq struct {
	ID    string `json:"id"`
	Token string `json:"token"`
}

type canaryResp struct {
	Seq  uint64    `json:"seq"`
	Time time.Time `json:"time"`
}

// Canary asks the source of the received replication id to commit a canary
// holding token, and returns the seq of its record and its commit time (on
// the source's clock). It fails with ErrUnreachable when the source region
// does not answer within about two seconds.
func (n *Node) Canary(ctx context.Context, id, token string) (seq uint64, at time.Time, err error) {
	n.mu.Lock()
	in := n.inbound[id]
	n.mu.Unlock()
	if in == nil {
		return 0, time.Time{}, fmt.Errorf("replication %s: %w", id, ErrNotFound)
	}
	if len(token) == 0 || len(token) > engine.MaxMarkValue {
		return 0, time.Time{}, errorf(ErrBadCanary, "A canary token has 1 to %d bytes.", engine.MaxMarkValue)
	}
	var resp canaryResp
	if err := n.Call(ctx, in.spec.SourceRegion, callCanary, canaryReq{ID: id, Token: token}, &resp); err != nil {
		return 0, time.Time{}, err
	}
	return resp.Seq, resp.Time, nil
}

// WaitCanary waits until the replica of the received replication id has
// applied seq and holds the canary token, and returns when it saw it.
func (n *Node) WaitCanary(ctx context.Context, id string, seq uint64, token string) (time.Time, error) {
	n.mu.Lock()
	in := n.inbound[id]
	n.mu.Unlock()
	if in == nil {
		return time.Time{}, fmt.Errorf("replication %s: %w", id, ErrNotFound)
	}
	fs := in.fs
	for {
		durable, advanced := fs.DurableNotify()
		if _, applied, _ := fs.Applied(); applied >= seq && durable >= seq {
			now := n.now()
			b, err := fs.ReadMark(CanaryMark)
			if err != nil && !errors.Is(err, engine.ErrNotFound) {
				return time.Time{}, err
			}
			if bytes.Equal(b, []byte(token)) {
				return now, nil
			}
			if applied > seq {
				// A later canary replaced it: it was applied too.
				return now, nil
			}
			return time.Time{}, fmt.Errorf("replication %s: the replica applied seq %d but holds another canary", id, seq)
		}
		select {
		case <-advanced:
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		}
	}
}

// serveCanary is the source region's side of Canary.
func (n *Node) serveCanary(ctx context.Context, from string, body []byte) ([]byte, error) {
	var req canaryReq
	if err := json.Unmarshal(body, &req); err != nil || req.Token == "" || len(req.Token) > engine.MaxMarkValue {
		return nil, &CallError{Status: http.StatusBadRequest, Code: "BadRequest", Message: "malformed canary request"}
	}
	n.mu.Lock()
	o := n.outbound[req.ID]
	n.mu.Unlock()
	if o == nil || o.spec.DestRegion != from {
		return nil, &CallError{Status: http.StatusNotFound, Code: "NotFound", Message: "no such replication configuration"}
	}
	seq, at, err := o.fs.Mark(ctx, CanaryMark, []byte(req.Token))
	switch {
	case errors.Is(err, engine.ErrReadOnly):
		return nil, &CallError{Status: http.StatusConflict, Code: "ReadOnly",
			Message: fmt.Sprintf("The source file system %s does not take writes (it is fenced or read-only).", o.spec.SourceFS)}
	case errors.Is(err, engine.ErrNoSpace):
		return nil, &CallError{Status: http.StatusServiceUnavailable, Code: "NoSpace",
			Message: fmt.Sprintf("The source region's storage is full; file system %s takes no writes.", o.spec.SourceFS)}
	case err != nil:
		return nil, err
	}
	return json.Marshal(canaryResp{Seq: seq, Time: at})
}
