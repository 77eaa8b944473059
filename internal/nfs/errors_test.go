package nfs

import (
	"context"
	"fmt"
	"testing"

	"github.com/regionfs/regionfs/internal/engine"
	"github.com/regionfs/regionfs/internal/engine/kv"
	"github.com/regionfs/regionfs/internal/nfs/proto"
)

// TestStatusOfOwnership: a commit fenced because another node of the
// region took the file system over, and a file system served by another
// node, make the client retry (JUKEBOX), not fail with an I/O error.
func TestStatusOfOwnership(t *testing.T) {
	for _, c := range []struct {
		err  error
		want proto.Status
	}{
		{fmt.Errorf("engine: %w: %w", engine.ErrFenced, kv.ErrFenced), proto.ErrJukebox},
		{fmt.Errorf("engine: %q: %w", "fs-1", engine.ErrElsewhere), proto.ErrJukebox},
		{fmt.Errorf("commit: %w", context.Canceled), proto.ErrJukebox},
		{fmt.Errorf("%w: disk", engine.ErrFatal), proto.ErrIO},
	} {
		if got := statusOf(c.err); got != c.want {
			t.Errorf("statusOf(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}
