package replconf

import (
	"testing"

	"github.com/regionfs/regionfs/internal/engine"
)

// TestRecordedPromotionSplitPoint: a failover completed from the engine's
// record (the process ended before the configuration's) of a promotion
// that abandoned a resync reports the split point where the source's loss
// report starts, as the node's Promote does: the engine's when it knew
// it, else the replica's own last seq, never after a failback's fork.
func TestRecordedPromotionSplitPoint(t *testing.T) {
	for _, tc := range []struct {
		name       string
		rp         engine.RecoveryPoint
		fork, want uint64
	}{
		{"engine's split point", engine.RecoveryPoint{Seq: 115, Abandoned: true, Shared: 88}, 0, 88},
		{"not known: own last seq", engine.RecoveryPoint{Seq: 115, Abandoned: true}, 0, 115},
		{"not after the fork", engine.RecoveryPoint{Seq: 115, Abandoned: true}, 90, 90},
		{"engine's before the fork", engine.RecoveryPoint{Seq: 115, Abandoned: true, Shared: 80}, 90, 80},
		{"ordinary promotion", engine.RecoveryPoint{Seq: 115}, 90, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := recordedPromotion(tc.rp, tc.fork)
			if p.Seq != tc.rp.Seq || p.Abandoned != tc.rp.Abandoned || p.Shared != tc.want {
				t.Fatalf("%+v (fork %d) → %+v, want shared %d", tc.rp, tc.fork, p.RecoveryPoint, tc.want)
			}
		})
	}
}
