// Package enginetest holds checks over engine file systems that the tests
// of the packages above the engine (replication, replication
// configurations) share.
package enginetest

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/regionfs/regionfs/internal/engine"
)

// Converged waits until the replica dst has applied everything the source
// src has durable and is consistent, then fails t unless both hold the same
// state (checksum).
func Converged(t testing.TB, src, dst *engine.FS) {
	t.Helper()
	// Generous: under -race with other packages' tests beside it, a
	// replica that resumes after crashes and restarts took over 20 s.
	const within = 60 * time.Second
	deadline := time.Now().Add(within)
	for {
		_, applied, _ := dst.Replica().Applied()
		consistent, durable := dst.Replica().Consistent(), src.Replica().DurableSeq()
		if consistent && applied == durable {
			break
		}
		if time.Now().After(deadline) {
			// Where a stalled replication waits (seen once in CI: an
			// initial sync that applied nothing for a minute).
			stacks := make([]byte, 4<<20)
			t.Logf("goroutines:\n%s", stacks[:runtime.Stack(stacks, true)])
			ss := dst.Replica().SyncState()
			t.Fatalf("the replica did not converge in %s: applied %d (consistent %v; initial sync active %v resync %v base %d cursor %x), the source durable at %d",
				within, applied, consistent, ss.Active, ss.Resync, ss.Base, ss.Cursor, durable)
		}
		time.Sleep(10 * time.Millisecond)
	}
	ctx := context.Background()
	s1, sum1, err := src.Replica().Checksum(ctx)
	if err != nil {
		t.Fatal(err)
	}
	s2, sum2, err := dst.Replica().Checksum(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if s1 != s2 || sum1 != sum2 {
		t.Fatalf("replica at %d differs from the source at %d", s2, s1)
	}
}
