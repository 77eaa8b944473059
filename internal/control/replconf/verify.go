package replconf

import (
	"context"
	"errors"

	"github.com/regionfs/regionfs/internal/control"
	"github.com/regionfs/regionfs/internal/replication"
)

// VerifyResult is the outcome of a verification pass (replication's).
type VerifyResult = replication.VerifyResult

// Verify runs one verification pass of the configuration fsID (source or
// destination, id or ARN) takes part in: source and replica compare range
// checksums at a common seq, and what differs is repaired from the source.
func (m *Manager) Verify(ctx context.Context, fsID string) (Description, replication.VerifyResult, error) {
	m.mu.Lock()
	cs := m.findLocked(fsID)
	var c *Config
	for _, x := range cs {
		if c == nil || x.Role == replication.RoleSource {
			c = x // same-region: the source's end runs it
		}
	}
	m.mu.Unlock()
	if c == nil {
		if _, err := m.o.Region.DescribeFileSystem(ctx, fsID); err != nil {
			return Description{}, replication.VerifyResult{}, err
		}
		return Description{}, replication.VerifyResult{}, control.Errorf(control.ErrReplicationNotFound, "No replication configuration for %s.", fsID)
	}
	r, err := m.o.Node.Verify(ctx, c.ID)
	var ce *replication.CallError
	switch {
	case err == nil:
	case errors.Is(err, replication.ErrNotStreaming):
		err = control.Errorf(control.ErrConflict, "The replication of %s is not in steady state (link down, initial sync or resync running): nothing to compare yet. Try again once it is ENABLED.", fsID)
	case errors.As(err, &ce) && ce.Code == "NotStreaming":
		err = control.Errorf(control.ErrConflict, "The replication of %s is not in steady state (link down, initial sync or resync running): nothing to compare yet. Try again once it is ENABLED.", fsID)
	case errors.As(err, &ce) && ce.Code == "Timeout":
		err = control.Errorf(control.ErrConflict, "The verification of %s did not finish in time.", fsID)
	case errors.As(err, &ce):
		err = control.Errorf(control.ErrConflict, "The source region refused the verification of %s: %s", fsID, ce.Message)
	}
	if err != nil {
		return Description{}, r, err
	}
	m.mu.Lock()
	d := m.describeLocked(c)
	m.mu.Unlock()
	return d, r, nil
}
