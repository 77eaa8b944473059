// Package enginetest holds checks over engine file systems that the tests
// of the packages above the engine (replication, replication
// configurations) share.
package enginetest

import (
	"context"
	"testing"
	"time"

	"github.com/regionfs/regionfs/internal/engine"
	"github.com/regionfs/regionfs/internal/testkit"
)

// Converged waits until the replica dst has applied everything the source
// src has durable and is consistent, then fails t unless both hold the same
// state (checksum).
func Converged(t testing.TB, src, dst *engine.FS) {
	t.Helper()
	testkit.WaitFor(t, "the replica to converge", 20*time.Second, func() bool {
		_, applied, _ := dst.Replica().Applied()
		return dst.Replica().Consistent() && applied == src.Replica().DurableSeq()
	})
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
