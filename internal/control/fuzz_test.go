package control_test

import (
	"bytes"
	"testing"

	"github.com/regionfs/regionfs/internal/control"
	"github.com/regionfs/regionfs/internal/control/controltest"
	"github.com/regionfs/regionfs/internal/engine/kv"
)

// FuzzStoredRecords: a region opens over its stored records (file
// systems, mount targets, access points, preferences: JSON under 'c'
// kind id) read back from disk. A damaged one is refused by Open or
// loaded; what loads is described without a panic.
func FuzzStoredRecords(f *testing.F) {
	v := newEnv(f)
	fs := v.availableFS("seed", func(in *control.CreateFileSystemInput) { in.Tags = []control.Tag{{Key: "Name", Value: "n"}} })
	if _, err := v.r.CreateMountTarget(ctx, control.CreateMountTargetInput{FileSystemID: fs.ID, SubnetID: subA}); err != nil {
		f.Fatal(err)
	}
	if _, err := v.r.CreateAccessPoint(ctx, control.CreateAccessPointInput{ClientToken: "t", FileSystemID: fs.ID,
		PosixUser: &control.PosixUser{UID: 1, GID: 2, SecondaryGIDs: []uint32{3}}, RootDirectory: control.RootDirectory{Path: "/a"}}); err != nil {
		f.Fatal(err)
	}
	if _, err := v.r.PutAccountPreferences(ctx, "LONG_ID"); err != nil {
		f.Fatal(err)
	}
	// The seeds are the records the region stored (each: kind, id, value).
	if err := kv.Scan(v.kv, []byte{'c'}, []byte{'d'}, func(k, val []byte) error {
		if len(k) >= 2 {
			f.Add(k[1], string(k[2:]), bytes.Clone(val))
		}
		return nil
	}); err != nil {
		f.Fatal(err)
	}
	f.Add(byte('f'), "fs-0123456789abcdef0", []byte(`{"ID":"fs-0123456789abcdef0"}`))
	f.Add(byte('m'), "fsmt-0123456789abcdef0", []byte(`{"ID":"fsmt-0123456789abcdef0","FileSystemID":"fs-1"}`))
	f.Add(byte('a'), "fsap-0123456789abcdef0", []byte(`{"PosixUser":{}}`))
	f.Add(byte('v'), "", []byte(`{"Version":99}`))
	f.Fuzz(func(t *testing.T, kind byte, id string, val []byte) {
		store := kv.NewMemory()
		b := store.NewBatch()
		b.Set(append([]byte{'c', kind}, id...), val)
		if err := b.Commit(true); err != nil {
			t.Fatal(err)
		}
		b.Close()
		o := v.opts
		o.KV, o.Engine, o.MountTargets, o.Clock = store, v.e, controltest.NewMountTargets(), v.clock.Now
		r, err := control.Open(ctx, o)
		if err != nil {
			return // refused
		}
		defer r.Close()
		fss, _, _ := r.DescribeFileSystems(ctx, control.FileSystemQuery{})
		for _, fs := range fss {
			_, _ = r.DescribeFileSystem(ctx, fs.ID)
			_, _ = r.DescribeLifecycleConfiguration(ctx, fs.ID)
			_, _ = r.DescribeBackupPolicy(ctx, fs.ID)
			_, _ = r.DescribeFileSystemPolicy(ctx, fs.ID)
			_, _, _ = r.ListTagsForResource(ctx, fs.ID, control.Page{})
		}
		mts, _, _ := r.DescribeMountTargets(ctx, control.MountTargetQuery{})
		for _, m := range mts {
			_, _ = r.DescribeMountTargetSecurityGroups(ctx, m.ID)
		}
		aps, _, _ := r.DescribeAccessPoints(ctx, control.AccessPointQuery{})
		for _, a := range aps {
			_, _, _ = r.ListTagsForResource(ctx, a.ID, control.Page{})
		}
		_ = r.DescribeAccountPreferences(ctx)
	})
}
