package replconf_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"maps"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/regionfs/regionfs/internal/control/replconf"
	"github.com/regionfs/regionfs/internal/engine"
	"github.com/regionfs/regionfs/internal/engine/kv"
	"github.com/regionfs/regionfs/internal/replication"
)

// Placeholders a fuzzed body may hold, replaced with what exists in the
// region the call reaches (its ids are made afresh for every input): the
// adoptable file system's id and lineage (base64, as JSON encodes it),
// and the destination configuration already received from the source
// region.
const (
	fuzzFS       = "@FS@"
	fuzzLineage  = "@LINEAGE@"
	fuzzSeededID = "fsr-0seeded000000001"
	fuzzSource   = "us-west-2"
	fuzzOwnToken = "own-fs"
)

// fuzzPeers are the regions a call may come from: the source of the
// seeded configuration, a peer with no part in it, and the region itself.
var fuzzPeers = []string{fuzzSource, "eu-west-1", "us-east-1"}

// FuzzPeerCalls: whatever an authenticated peer region sends as a unary
// call (every request type Hooks.Call decodes), the region answers it or
// refuses it with an answer the peer understands, never crashes; a body
// it cannot read, or a call it does not know, changes nothing; and what
// an accepted call recorded lets the region start again.
func FuzzPeerCalls(f *testing.F) {
	created := time.Date(2026, 12, 7, 19, 0, 0, 0, time.UTC)
	seed := func(from byte, method string, v any) {
		b, err := json.Marshal(v)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(from, method, b)
	}
	// A new replica, an adoption (of another lineage, and of the same
	// one with an epoch history), a retry of the seeded creation, the
	// question of an existing destination.
	seed(0, replconf.CallCreateDestination, replconf.CreateDestReq{ID: "fsr-0new0000000000001", SourceFS: "fs-0src0000000000002",
		SourceARN: "arn:aws:elasticfilesystem:us-west-2:123456789012:file-system/fs-0src0000000000002", SourceOwner: "123456789012",
		Created: created, Dest: replconf.Destination{Region: "us-east-1"}, SourceDurable: 7})
	seed(0, replconf.CallCreateDestination, replconf.CreateDestReq{ID: "fsr-0adopt00000000001", SourceFS: "fs-0src0000000000003",
		Created: created, Dest: replconf.Destination{Region: "us-east-1", FileSystemID: fuzzFS}, Lineage: []byte("other lineage"),
		Epochs: []engine.EpochStart{{Epoch: 1, StartSeq: 1}}, SourceDurable: 3})
	sameLineage, err := json.Marshal(replconf.CreateDestReq{ID: "fsr-0adopt00000000002", SourceFS: "fs-0src0000000000004",
		Created: created, Dest: replconf.Destination{Region: "us-east-1", FileSystemID: fuzzFS},
		Epochs: []engine.EpochStart{{Epoch: 1, StartSeq: 1}, {Epoch: 3, StartSeq: 2}}, SourceDurable: 1 << 40})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(byte(0), replconf.CallCreateDestination, bytes.Replace(sameLineage, []byte(`"lineage":null`), []byte(`"lineage":"`+fuzzLineage+`"`), 1))
	seed(0, replconf.CallCreateDestination, seededCreation())
	seed(1, replconf.CallCreateDestination, seededCreation())
	seed(0, replconf.CallExistingDestination, seededCreation())
	seed(0, replconf.CallExistingDestination, replconf.CreateDestReq{ID: "fsr-0none000000000001", SourceFS: "fs-0none00000000001"})
	// Another source file system's creation naming an id that exists
	// here (the seeded configuration's; a file system's creation token).
	seed(1, replconf.CallCreateDestination, replconf.CreateDestReq{ID: fuzzSeededID, SourceFS: "fs-0src0000000000009", Dest: replconf.Destination{Region: "us-east-1"}})
	seed(0, replconf.CallCreateDestination, replconf.CreateDestReq{ID: fuzzOwnToken, SourceFS: "fs-0src0000000000009", Dest: replconf.Destination{Region: "us-east-1"}})
	// Deletes of the seeded configuration (its source asking, planned or
	// not; another region), and of none.
	seed(0, replconf.CallDelete, replconf.DeleteReq{ID: fuzzSeededID})
	seed(0, replconf.CallDelete, replconf.DeleteReq{ID: fuzzSeededID, Planned: true})
	seed(1, replconf.CallDelete, replconf.DeleteReq{ID: fuzzSeededID})
	seed(0, replconf.CallDelete, replconf.DeleteReq{ID: "fsr-0none000000000001"})
	// The destination's news that it was deleted (this region is no
	// source of anything here: the call ends nothing).
	seed(0, replconf.CallDeleted, replconf.DeletedReq{ID: fuzzSeededID, Gone: replication.Gone{Promoted: true, Epoch: 2, RecoverySeq: 5, Reason: "failover"}})
	seed(2, replconf.CallDeleted, replconf.DeletedReq{ID: "x"})
	seed(0, replconf.CallPing, struct{}{})
	f.Add(byte(0), "no-such-call", []byte(`{}`))
	f.Add(byte(0), replconf.CallDelete, []byte(`{"id":`))
	f.Add(byte(0), replconf.CallCreateDestination, []byte(`{"id":"","dest":{"FileSystemID":"@FS@"},"epochs":[{"e":18446744073709551615,"s":0},{"e":0,"s":1}]}`))

	f.Fuzz(func(t *testing.T, fromSel byte, method string, body []byte) {
		from := fuzzPeers[int(fromSel)%len(fuzzPeers)]
		r := newRegion(t, "us-east-1")
		// The peers are unreachable (nothing listens there): the calls
		// the region makes back fail fast, as when the peer is down.
		r.peers = map[string]replication.Peer{}
		for _, p := range fuzzPeers {
			r.peers[p] = replication.Peer{URL: "http://127.0.0.1:1", Secret: testSecret}
		}
		r.peers[r.name] = replication.Peer{URL: "http://" + r.addr, Secret: testSecret}
		r.start()
		ctx := t.Context()
		fsID := r.adoptable("adoptable")
		// A file system of this region's own, protected: no peer's call
		// makes it anything else.
		own := r.createFS(fuzzOwnToken)
		fill(t, r.fs(own), "own", 1)
		seeded, err := json.Marshal(seededCreation())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := r.m.Hooks().Call(ctx, fuzzSource, replconf.CallCreateDestination, seeded); err != nil {
			t.Fatalf("seeded creation: %v", err)
		}
		lineage, err := json.Marshal(r.fs(fsID).Lineage())
		if err != nil {
			t.Fatal(err)
		}
		body = bytes.ReplaceAll(body, []byte(fuzzFS), []byte(fsID))
		body = bytes.ReplaceAll(body, []byte(`"`+fuzzLineage+`"`), lineage)

		before := records(t, r.kv)
		ownBefore := r.describe(own)
		out, err := r.m.Hooks().Call(ctx, from, method, body)
		var ce *replication.CallError
		switch {
		case err == nil:
			if !json.Valid(out) {
				t.Fatalf("%s answered %q, not JSON", method, out)
			}
		case errors.As(err, &ce):
			if ce.Code == "" || ce.Status < 400 || ce.Status > 599 || ce.Message == "" {
				t.Fatalf("%s refused with %#v: the peer cannot read it", method, ce)
			}
			if ce.Code == "BadRequest" || ce.Status == http.StatusNotFound && ce.Code == "UnknownOperation" {
				if after := records(t, r.kv); !maps.Equal(before, after) {
					t.Fatalf("%s refused as %s changed the records:\nbefore %q\nafter  %q", method, ce.Code, before, after)
				}
			}
		default:
			t.Logf("%s failed inside: %v", method, err)
		}
		// What another region's configurations hold stays as it was.
		after := records(t, r.kv)
		for k, v := range others(t, before, from) {
			if after[k] != v {
				t.Fatalf("%s from %s changed %q (a configuration of another region) from %s to %s", method, from, k, v, after[k])
			}
		}
		if d := r.describe(own); d.Protection != ownBefore.Protection || d.ReplicationRole != ownBefore.ReplicationRole {
			t.Fatalf("%s from %s made this region's own file system %s %s/%s", method, from, own, d.Protection, d.ReplicationRole)
		}
		if mode, _ := r.fs(own).Mode(); mode != engine.ModePrimary {
			t.Fatalf("%s from %s made this region's own file system %s mode %v", method, from, own, mode)
		}
		// Whatever it recorded, the region starts again and describes it.
		r.stop()
		r.restart()
		if _, err := r.m.Describe(context.Background(), ""); err != nil {
			t.Fatalf("describe after restart: %v", err)
		}
	})
}

// seededCreation is the source region's creation of a new replica that
// every fuzzed call finds received.
func seededCreation() replconf.CreateDestReq {
	return replconf.CreateDestReq{ID: fuzzSeededID, SourceFS: "fs-0src0000000000001",
		SourceARN: "arn:aws:elasticfilesystem:us-west-2:123456789012:file-system/fs-0src0000000000001", SourceOwner: "123456789012",
		Created: time.Date(2026, 12, 7, 18, 0, 0, 0, time.UTC), Dest: replconf.Destination{Region: "us-east-1"}}
}

// records are the control plane's and the configurations' records in s
// ('c' and 'r'; the engine's are its own).
func records(t *testing.T, s kv.Store) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, r := range [][2]string{{"c", "d"}, {"r", "s"}} {
		it, err := s.NewIter([]byte(r[0]), []byte(r[1]))
		if err != nil {
			t.Fatal(err)
		}
		for it.First(); it.Valid(); it.Next() {
			v, err := it.Value()
			if err != nil {
				t.Fatal(err)
			}
			out[string(it.Key())] = string(v)
		}
		if err := it.Error(); err != nil {
			t.Fatal(err)
		}
		if err := it.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// others are the records of destination configurations (and their
// tombstones) in recs whose source is not region from.
func others(t *testing.T, recs map[string]string, from string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for k, v := range recs {
		if !strings.HasPrefix(k, "rcd") && !strings.HasPrefix(k, "rtd") {
			continue
		}
		var c struct {
			SourceRegion string `json:"sourceRegion"`
		}
		if err := json.Unmarshal([]byte(v), &c); err != nil {
			t.Fatalf("%q: %v", k, err)
		}
		if c.SourceRegion != from {
			out[k] = v
		}
	}
	return out
}
