package replconf_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"testing"

	"github.com/regionfs/regionfs/internal/control"
	"github.com/regionfs/regionfs/internal/control/replconf"
	"github.com/regionfs/regionfs/internal/replication"
)

// TestCreateDestinationRefusesUsedID: a peer's create-destination that
// names the id of a configuration the destination region has (with
// another source file system) is refused with a 409 ConflictException,
// and nothing changes there. Before, the configuration's record was
// overwritten with the new one and, when the replica could not be
// created, removed: the existing replication was lost in that region.
func TestCreateDestinationRefusesUsedID(t *testing.T) {
	ctx := context.Background()
	a, b := newPair(t)
	srcID := a.createFS("src")
	fill(t, a.fs(srcID), "f", 5)
	d, err := a.m.Create(ctx, srcID, []replconf.Destination{{Region: b.name}})
	if err != nil {
		t.Fatal(err)
	}
	dst := d.DestFileSystemID
	other := a.createFS("other")
	count := func() int {
		t.Helper()
		fss, _, err := b.r.DescribeFileSystems(ctx, control.FileSystemQuery{})
		if err != nil {
			t.Fatal(err)
		}
		return len(fss)
	}
	check := func(t *testing.T, when string) {
		t.Helper()
		bd := status(t, b.m, dst)
		if bd.ID != d.ID || bd.SourceFileSystemID != srcID || bd.SourceRegion != a.name || bd.Role != replication.RoleDestination {
			t.Fatalf("%s: the destination region's configuration %s changed: %+v", when, d.ID, bd.Config)
		}
	}
	fsBefore := count()
	for _, tc := range []struct {
		name string
		dest replconf.Destination
	}{
		{"replica made", replconf.Destination{Region: b.name}},
		// CreateReplica fails (no such zone): before, m.remove deleted
		// the configuration the id named.
		{"replica refused", replconf.Destination{Region: b.name, AvailabilityZoneName: "nowhere-9z"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body, err := json.Marshal(map[string]any{"id": d.ID, "sourceFs": other, "sourceArn": a.describe(other).ARN,
				"sourceOwner": "123456789012", "dest": tc.dest})
			if err != nil {
				t.Fatal(err)
			}
			_, err = b.m.Hooks().Call(ctx, a.name, "create-destination", body)
			var ce *replication.CallError
			if !errors.As(err, &ce) || ce.Status != http.StatusConflict || ce.Code != "ConflictException" {
				t.Errorf("create-destination with the used id %s: %#v, want a 409 ConflictException", d.ID, err)
			}
			check(t, "after the call")
			if n := count(); n != fsBefore {
				t.Errorf("%d file systems in the destination region after the call, %d before", n, fsBefore)
			}
		})
	}
	b.stop()
	b.restart()
	check(t, "after a restart")
	converged(t, a.fs(srcID), b.fs(dst))
}
