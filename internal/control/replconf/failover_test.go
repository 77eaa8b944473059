package replconf_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/regionfs/regionfs/internal/control"
	"github.com/regionfs/regionfs/internal/control/replconf"
	"github.com/regionfs/regionfs/internal/engine"
	"github.com/regionfs/regionfs/internal/replication"
)

// refuseStreams makes r, from its next start, answer every replication
// stream 503 (its calls are answered): a source's stream cannot learn
// what happened to its configuration here, its calls can.
func (r *region) refuseStreams() {
	r.wrap = func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			if strings.HasSuffix(req.URL.Path, "/stream") {
				http.Error(w, "streams held by the test", http.StatusServiceUnavailable)
				return
			}
			h.ServeHTTP(w, req)
		})
	}
}

// TestSourceDeleteAfterUncoordinatedFailover: the destination was promoted
// without the source (a failover in its region while the source region
// was down), and the source's DeleteReplicationConfiguration with
// ALL_CONFIGURATIONS reaches the destination before the source's stream
// learns of the promotion: the source is fenced at the promoted epoch,
// protection DISABLED, with the destination's recovery point in its loss
// report, as when its stream learns it. Before, the destination answered
// the delete with its promotion, the source forgot the configuration and
// stayed writable beside the promoted destination (two writable regions),
// with no record of what it lost.
func TestSourceDeleteAfterUncoordinatedFailover(t *testing.T) {
	ctx := context.Background()
	a, b := newPair(t)
	srcID := a.createFS("src")
	d := replicate(t, a, b, srcID)
	a.n.RemoveOutbound(d.ID) // the link goes
	for i := range 3 {
		if _, err := a.fs(srcID).Mkdir(ctx, engine.RootCred, engine.RootIno, fmt.Sprint("lost", i), engine.SetAttr{}); err != nil {
			t.Fatal(err)
		}
	}
	a.stop()
	p, err := b.m.Delete(ctx, d.DestFileSystemID, replconf.DeleteAll)
	if err != nil {
		t.Fatal(err)
	}
	b.stop()
	b.refuseStreams()
	b.restart()
	a.restart()
	got, err := a.m.Delete(ctx, srcID, replconf.DeleteAll)
	if err != nil {
		t.Fatalf("the source's delete: %v", err)
	}
	if got.Seq != p.Seq || got.NewEpoch != p.NewEpoch {
		t.Fatalf("the source's delete answered %+v, the failover %+v", *got, *p)
	}
	if mode, _ := a.fs(srcID).Mode(); mode != engine.ModeFenced {
		t.Fatalf("the old source is %v after its delete, the destination primary at epoch %d: two writable regions", mode, p.NewEpoch)
	}
	if _, err := a.fs(srcID).Mkdir(ctx, engine.RootCred, engine.RootIno, "x", engine.SetAttr{}); !errors.Is(err, engine.ErrReadOnly) {
		t.Fatalf("the fenced source accepted a write: %v", err)
	}
	if pr := a.protection(srcID); pr != control.ProtectionDisabled {
		t.Fatalf("the fenced source's protection is %s", pr)
	}
	tomb, losses, complete, err := a.m.LossReport(ctx, srcID, 100)
	if err != nil {
		t.Fatal(err)
	}
	if tomb.RecoverySeq != p.Seq || !complete || len(losses) != 3 || losses[2].Paths[0] != "/lost2" {
		t.Fatalf("loss report: %+v complete=%v %+v", tomb, complete, losses)
	}
	if _, err := a.m.Describe(ctx, srcID); !errors.Is(err, control.ErrReplicationNotFound) {
		t.Fatalf("the source still describes the configuration: %v", err)
	}
	if _, err := b.fs(d.DestFileSystemID).Mkdir(ctx, engine.RootCred, engine.RootIno, "after", engine.SetAttr{}); err != nil {
		t.Fatalf("the promoted destination refused a write: %v", err)
	}
}

// TestTombstoneAnswersOnlyItsSource: a destination answers a delete of a
// configuration it deleted already (from its tombstone: the promotion, and
// whether the source took part) to the configuration's source region
// only; another region gets ReplicationNotFound, as for a configuration
// that never was. Before, any peer region asking for the id learned the
// promotion's recovery point and epoch.
func TestTombstoneAnswersOnlyItsSource(t *testing.T) {
	ctx := context.Background()
	a, b := newPair(t)
	srcID := a.createFS("src")
	d := replicate(t, a, b, srcID)
	p, err := b.m.Delete(ctx, d.DestFileSystemID, replconf.DeleteAll)
	if err != nil {
		t.Fatal(err)
	}
	var resp struct{ Seq, NewEpoch uint64 }
	// b is a peer of itself, but not the configuration's source region.
	err = b.n.Call(ctx, b.name, "delete", map[string]string{"id": d.ID}, &resp)
	if ce := (*replication.CallError)(nil); !errors.As(err, &ce) || ce.Code != "ReplicationNotFound" {
		t.Fatalf("a delete from another region answered %+v, %v; want ReplicationNotFound", resp, err)
	}
	if err := a.n.Call(ctx, b.name, "delete", map[string]string{"id": d.ID}, &resp); err != nil || resp.Seq != p.Seq || resp.NewEpoch != p.NewEpoch {
		t.Fatalf("the source region's repeated delete: %+v, %v; want the promotion %+v", resp, err, *p)
	}
}
