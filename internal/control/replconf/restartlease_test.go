package replconf_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/regionfs/regionfs/internal/engine"
	"github.com/regionfs/regionfs/internal/testkit"
)

// TestRestartedSourceHasNoLease: with hard fencing (a lease) and automatic
// failover, a source restarted while cut off from its destination takes no
// write until the destination answers: the destination may have promoted
// itself meanwhile (it waited 1.5 leases from its last contact). Before,
// the restarted source granted itself a fresh lease and took writes beside
// the promoted destination for up to a lease (found by review16).
func TestRestartedSourceHasNoLease(t *testing.T) {
	ctx := context.Background()
	p := newFencedPair(t, time.Second)
	srcID := p.a.createFS("src")
	d := replicate(t, p.a, p.b, srcID)
	if _, err := p.b.m.SetAutoFailover(ctx, d.DestFileSystemID, time.Second); err != nil {
		t.Fatal(err)
	}
	p.partition()
	p.a.stop() // before its lease ran out
	testkit.WaitFor(t, "the automatic failover", 30*time.Second, func() bool { return len(p.failovers()) > 0 })
	p.a.restart() // still cut off
	_, err := p.a.fs(srcID).Mkdir(ctx, engine.RootCred, engine.RootIno, "after-restart", engine.SetAttr{})
	mode, _ := p.b.fs(d.DestFileSystemID).Mode()
	t.Logf("restarted source write: %v; destination %v", err, mode)
	if !errors.Is(err, engine.ErrReadOnly) {
		t.Fatalf("a restarted source cut off from its destination took a write with no lease (the destination is %v)", mode)
	}
}
