package replication

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/regionfs/regionfs/internal/engine"
	"github.com/regionfs/regionfs/internal/testkit"
)

// TestReleasedPinApplyingAgain: the retention limits release the pin of
// a destination behind a slow link while its stream ships (ERROR); the
// link then comes back to speed and the destination catches up on that
// same stream. The source says ENABLED again (status, the state gauge),
// and pins the journal for it again once it is within the limits.
// Before, it stayed ERROR with no pin for as long as the stream lived
// (until a new stream resynced it).
func TestReleasedPinApplyingAgain(t *testing.T) {
	ctx := context.Background()
	reg := prometheus.NewRegistry()
	a, b, px := proxiedPair(t, func(o *Options) {
		o.MaxLagBytes = 32 << 10
		// The journal itself stays (only the pin goes): the stream that
		// ships when the limits release the pin goes on.
		o.RetainAge = time.Hour
	}, func(o *Options) {
		if o.Region == "us-east-1" {
			o.Registerer = reg
		}
	})
	src := a.mkfs("fs-src")
	w := newWorkload(t, 17, func() *engine.FS { return src })
	w.run(ctx, 40)
	link(t, a, b, "r1", "fs-src", "fs-dst")
	converged(t, src, b.fs("fs-dst"))
	stateGauge := func() string {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() != "regionfs_replication_state" {
				continue
			}
			for _, m := range mf.GetMetric() {
				if m.GetGauge().GetValue() == 1 {
					for _, l := range m.GetLabel() {
						if l.GetName() == "state" {
							return l.GetValue()
						}
					}
				}
			}
		}
		return ""
	}

	px.SetBandwidth(8 << 10)
	px.SetPieceBytes(1 << 10)
	// Only new directories: no block is released, so nothing the
	// stream still has to send is collected once the pin is gone (a
	// removed file's blocks are, and the stream then ends: the next one
	// resyncs, as it should).
	made := 0
	mkdirs := func(n int) {
		t.Helper()
		for range n {
			made++
			if _, err := src.Mkdir(ctx, engine.RootCred, engine.RootIno, fmt.Sprintf("d%05d", made), engine.SetAttr{}); err != nil {
				t.Fatal(err)
			}
		}
	}
	released := false
	for end := time.Now().Add(30 * time.Second); time.Now().Before(end) && !released; {
		mkdirs(20)
		// Once released, the state is ERROR until the destination's
		// next acknowledgement past its applied point then.
		_, pinned := src.Replica().Pins()[pinName("r1")]
		released = !pinned
	}
	st, _ := a.n.OutboundStatus("r1")
	if !released {
		t.Fatalf("the limits did not release the slow destination's pin: %s %q", st.State, st.Message)
	}
	t.Logf("released: %s %q; applied %d of %d", st.State, st.Message, st.Applied, st.SourceDurable)
	contact := st.LinkDownSince

	px.SetBandwidth(0)
	converged(t, src, b.fs("fs-dst"))
	testkit.WaitFor(t, "the source ENABLED and pinned again once the destination caught up", 20*time.Second, func() bool {
		st, _ = a.n.OutboundStatus("r1")
		_, pinned := src.Replica().Pins()[pinName("r1")]
		return st.State == StateEnabled && pinned
	})
	if st.Message != "" || st.Sync.Active {
		t.Errorf("caught up: message %q, sync %+v", st.Message, st.Sync)
	}
	if g := stateGauge(); g != string(StateEnabled) {
		t.Errorf("regionfs_replication_state says %q, the status ENABLED", g)
	}
	if !st.LinkDownSince.Equal(contact) {
		t.Errorf("the stream was replaced meanwhile (link down since %v, was %v; %q)", st.LinkDownSince, contact, st.LastError)
	}
	if err := b.rep("fs-dst").Verify(ctx, true); err != nil {
		t.Fatal(err)
	}
}
