package cluster

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/netip"
	"reflect"
	"testing"

	"github.com/regionfs/regionfs/internal/control"
	"github.com/regionfs/regionfs/internal/control/controltest"
	"github.com/regionfs/regionfs/internal/engine"
	"github.com/regionfs/regionfs/internal/engine/disk"
	"github.com/regionfs/regionfs/internal/engine/kv"
)

// FuzzTargetRecord: any stored mount target record either is skipped by
// Follow (unreadable: logged, the others still followed) or is served
// exactly as recorded when this node serves its file system, and not
// served when it does not; a record that is read saves and reads back
// the same. Nothing panics.
func FuzzTargetRecord(f *testing.F) {
	ctx := context.Background()
	e, err := engine.Open(ctx, engine.Options{KV: kv.NewMemory(), Disk: disk.NewMem(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { e.Close() })
	fs, err := e.CreateFS(ctx, "fs-0123456789abcdef0", engine.FSOptions{BlockSize: engine.MinBlockSize})
	if err != nil {
		f.Fatal(err)
	}
	for _, rec := range []targetRecord{
		{ID: "fsmt-0123456789abcdef0", FileSystemID: fs.Name(), Addr: netip.MustParseAddrPort("127.1.1.5:2049"),
			Ingress: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/16")}, RequireTLS: true,
			AccessPoints: []control.AccessPointSpec{{ID: "fsap-1", Path: "/a", PosixUser: &engine.Cred{UID: 1, GID: 2, Groups: []uint32{3}},
				CreationInfo: &control.DirCreation{UID: 1, GID: 2, Mode: 0o755}}}},
		{ID: "fsmt-1", FileSystemID: "fs-elsewhere", Addr: netip.MustParseAddrPort("[::1]:2049"), ReadOnly: true},
		{},
	} {
		b, err := json.Marshal(rec)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"id":"fsmt-2","fs":"fs-0123456789abcdef0","addr":"300.1.1.1:1"}`))
	f.Add([]byte(`{"id":"fsmt-3","fs":"fs-0123456789abcdef0","access_points":[null,{"PosixUser":null}]}`))
	f.Fuzz(func(t *testing.T, v []byte) {
		store := kv.NewMemory()
		b := store.NewBatch()
		b.Set(targetKey("fsmt-other"), v)
		good := targetRecord{ID: "fsmt-good", FileSystemID: fs.Name(), Addr: netip.MustParseAddrPort("127.1.1.6:2049")}
		gb, _ := json.Marshal(good)
		b.Set(targetKey("fsmt-good"), gb)
		if err := b.Commit(false); err != nil {
			t.Fatal(err)
		}
		b.Close()
		mts := controltest.NewMountTargets()
		tg := NewTargets(store, mts, func() *engine.Engine { return e }, nil)
		err := tg.Follow(ctx)
		var rec targetRecord
		if json.Unmarshal(v, &rec) != nil {
			if err != nil {
				t.Fatalf("an unreadable record failed Follow: %v", err)
			}
			if _, ok := mts.Spec(good.ID); !ok || mts.Serving() != 1 {
				t.Fatalf("an unreadable record changed what is served: %d served", mts.Serving())
			}
			return
		}
		if rec.ID == good.ID {
			return // the fuzzed record replaces the good one
		}
		spec, served := mts.Spec(rec.ID)
		if want := rec.FileSystemID == fs.Name(); served != want || err != nil {
			t.Fatalf("record of %q served %v (want %v), Follow: %v", rec.FileSystemID, served, want, err)
		}
		if served && !reflect.DeepEqual(spec, rec.spec(fs)) {
			t.Fatalf("served %+v, recorded %+v", spec, rec.spec(fs))
		}
		again, err := json.Marshal(rec)
		if err != nil {
			t.Fatalf("a read record does not save: %v", err)
		}
		// An empty list reads back as none (omitempty): compared as saved.
		var back targetRecord
		if err := json.Unmarshal(again, &back); err != nil {
			t.Fatalf("saved record %s does not read back: %v", again, err)
		}
		if b, _ := json.Marshal(back); string(b) != string(again) {
			t.Fatalf("record saved as %s, then as %s", again, b)
		}
	})
}
