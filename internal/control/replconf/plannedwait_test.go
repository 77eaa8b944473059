package replconf_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/regionfs/regionfs/internal/control"
	"github.com/regionfs/regionfs/internal/control/replconf"
	"github.com/regionfs/regionfs/internal/engine"
	"github.com/regionfs/regionfs/internal/replication"
)

// TestPlannedFailoverWaitingError: a planned failover whose destination
// does not answer whether it promoted itself (its region down, or failing:
// 5xx) is answered with an AWS error that says so (409
// ConflictException): the source stays read-only, the failover completes
// by itself once the destination answers, and what else can be done. A
// retry and a delete at the source get the same answer while it waits;
// a delete with LOCAL_CONFIGURATION_ONLY at the source (the way out when
// the destination will not come back) ends the replication and makes the
// source writable again. Before, a failing destination's answer reached
// the API as an internal error (the message only in the log), an
// unreachable one as "Region … does not answer." alone, and the local
// delete left the source read-only for good with nothing saying why.
func TestPlannedFailoverWaitingError(t *testing.T) {
	for _, dest := range []string{"down", "failing"} {
		t.Run(dest, func(t *testing.T) {
			ctx := context.Background()
			a, b := newPair(t)
			srcID := a.createFS("src")
			fill(t, a.fs(srcID), "before", 3)
			d := replicate(t, a, b, srcID)
			var failing atomic.Bool
			if dest == "failing" {
				b.stop()
				b.wrap = func(h http.Handler) http.Handler {
					return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
						if failing.Load() && strings.HasSuffix(req.URL.Path, "/call/delete") {
							http.Error(w, "failing", http.StatusInternalServerError)
							return
						}
						h.ServeHTTP(w, req)
					})
				}
				b.restart() // nothing to ship: the drain needs no stream
			}
			a.m.SetHook(func(step, _ string) {
				if step != "planned-sent" {
					return
				}
				if dest == "down" {
					b.stop()
				} else {
					failing.Store(true)
				}
			})
			check := func(what string, err error) {
				t.Helper()
				// control.ErrConflict is the API's 409 ConflictException
				// (internal/api/awserr's table; replconf is below the API
				// layer and does not import it).
				if !errors.Is(err, control.ErrConflict) {
					t.Fatalf("%s: %v, want control.ErrConflict (409 ConflictException)", what, err)
				}
				var pub interface{ PublicMessage() string }
				if !errors.As(err, &pub) {
					t.Fatalf("%s: %v carries no public message", what, err)
				}
				msg := pub.PublicMessage()
				t.Logf("%s: %s", what, msg)
				for _, want := range []string{srcID + " stays read-only", "completes by itself", d.DestFileSystemID, b.name, replconf.DeleteLocalOnly} {
					if !strings.Contains(msg, want) {
						t.Fatalf("%s: the message %q does not say %q", what, msg, want)
					}
				}
			}
			_, err := a.m.PlannedFailover(ctx, srcID)
			check("planned failover", err)
			if got := status(t, a.m, srcID); got.Status != replication.StateDeleting || !strings.Contains(got.StatusMessage, "planned failover: waiting for "+b.name) {
				t.Fatalf("the configuration while its planned failover waits: %s %q", got.Status, got.StatusMessage)
			}
			a.m.SetHook(nil)
			_, err = a.m.PlannedFailover(ctx, srcID)
			check("planned failover again", err)
			_, err = a.m.Delete(ctx, srcID, replconf.DeleteAll)
			check("delete at the source", err)
			if _, err := a.fs(srcID).Mkdir(ctx, engine.RootCred, engine.RootIno, "waiting", engine.SetAttr{}); !errors.Is(err, engine.ErrReadOnly) {
				t.Fatalf("a write while the planned failover waits: %v, want read-only", err)
			}
			if _, err := a.m.Delete(ctx, srcID, replconf.DeleteLocalOnly); err != nil {
				t.Fatalf("local delete at the source: %v", err)
			}
			if _, err := a.m.Describe(ctx, srcID); !errors.Is(err, control.ErrReplicationNotFound) {
				t.Fatalf("describe after the local delete: %v", err)
			}
			if _, err := a.fs(srcID).Mkdir(ctx, engine.RootCred, engine.RootIno, "after", engine.SetAttr{}); err != nil {
				t.Fatalf("a write after the local delete: %v", err)
			}
		})
	}
}
