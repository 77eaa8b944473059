package drill

import (
	"encoding/json"
	"log/slog"
	"testing"
	"time"

	"github.com/regionfs/regionfs/internal/engine/kv"
)

// FuzzDrillRecord: any stored drill record either fails the history's
// load with an error or loads; a loaded drill is listed and read (Get,
// List, its copy) without a panic, its copy is what is stored, and saved
// again it loads the same.
func FuzzDrillRecord(f *testing.F) {
	at := Time{time.Date(2026, 12, 7, 17, 0, 0, 500_000_000, time.UTC)}
	rpo := 0.25
	for _, d := range []Drill{
		{DrillID: "drill-1", FileSystemID: "fs-1", SourceFileSystemID: "fs-0", State: StateSucceeded, StartTime: at, EndTime: at,
			RPOSeconds: &rpo, Canary: &Canary{Token: "t", Seq: 3, Requested: at}, Clone: &Clone{FileSystemID: "fs-2", Deleted: true},
			Check: &CheckResult{Passed: true, By: "client"}, Replication: &During{Samples: 2},
			Timeline: []Event{{Time: at, Step: "canary", Message: "m"}}, CleanedUp: true},
		{DrillID: "drill-2", FileSystemID: "fs-1", State: StateFailed, StartTime: at, Failure: "x"},
	} {
		b, err := json.Marshal(d)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"DrillId":"d","State":"FAILED","StartTime":1e300,"EndTime":-1e300}`))
	f.Add([]byte(`{"DrillId":"d","State":"SUCCEEDED","Timeline":[null],"Canary":null}`))
	f.Fuzz(func(t *testing.T, v []byte) {
		store := kv.NewMemory()
		b := store.NewBatch()
		b.Set(drillKey("drill-fuzz"), v)
		if err := b.Commit(false); err != nil {
			t.Fatal(err)
		}
		b.Close()
		s := fuzzService(t, store)
		var d Drill
		jerr := json.Unmarshal(v, &d)
		if err := s.load(); (err != nil) != (jerr != nil) {
			t.Fatalf("load: %v, while the record decodes with %v", err, jerr)
		} else if err != nil {
			return
		}
		got, err := s.Get(t.Context(), d.DrillID)
		if err != nil {
			t.Fatalf("the loaded drill %q is not found: %v", d.DrillID, err)
		}
		s.List(t.Context(), "", 0)
		s.List(t.Context(), d.FileSystemID, 1)
		want, werr := json.Marshal(&d)
		have, herr := json.Marshal(&got)
		if werr != nil || herr != nil || string(want) != string(have) {
			t.Fatalf("the drill read back differs from the one stored:\n%s (%v)\n%s (%v)", want, werr, have, herr)
		}
		if err := s.save(&d); err != nil {
			t.Fatalf("a loaded drill does not save: %v", err)
		}
		again := fuzzService(t, store)
		if err := again.load(); err != nil {
			t.Fatalf("a saved drill does not load: %v", err)
		}
		reread, err := again.Get(t.Context(), d.DrillID)
		if err != nil {
			t.Fatal(err)
		}
		if b, _ := json.Marshal(&reread); string(b) != string(want) {
			t.Fatalf("saved and loaded again, the drill changed:\n%s\n%s", want, b)
		}
	})
}

// fuzzService is a Service over store with nothing running.
func fuzzService(t *testing.T, store kv.Store) *Service {
	t.Helper()
	m, err := newMetrics(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &Service{o: Options{Region: "us-east-1", KV: store, History: 200, Clock: time.Now}, log: slog.New(slog.DiscardHandler),
		metrics: m, drills: map[string]*Drill{}, running: map[string]string{}, checks: map[string]chan CheckResult{}}
}
