package replication

import (
	"context"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"

	"github.com/regionfs/regionfs/internal/engine/disk"
	"github.com/regionfs/regionfs/internal/engine/kv"
)

// imageDisk takes a crash image of its region (the metadata store's,
// then the disk's: the disk's is the later, so it holds at least what
// was durable when the metadata's was taken) before and after each
// change the replica makes to a pack.
type imageDisk struct {
	disk.FS
	take func()
}

func (d *imageDisk) Create(name string) (disk.File, error) {
	if !strings.Contains(name, "/packs/") {
		return d.FS.Create(name)
	}
	d.take()
	f, err := d.FS.Create(name)
	if err != nil {
		return nil, err
	}
	return &imageFile{File: f, d: d}, nil
}

func (d *imageDisk) SyncDir(name string) error {
	if !strings.HasSuffix(name, "/packs") {
		return d.FS.SyncDir(name)
	}
	d.take()
	err := d.FS.SyncDir(name)
	d.take()
	return err
}

type imageFile struct {
	disk.File
	d *imageDisk
}

func (f *imageFile) Write(p []byte) (int, error) {
	f.d.take()
	return f.File.Write(p)
}

func (f *imageFile) Sync() error {
	f.d.take()
	err := f.File.Sync()
	f.d.take()
	return err
}

// TestPackedReplicaCrashImages is the crash test of the replica's pack
// path: crash images of the destination taken throughout a stream of
// multi-block frames (every one stored as a pack) each open as a replica
// whose every referenced block is present and verifies: a pack is durable
// before the records naming its blocks commit. It fails when the records
// of a frame may commit before its pack is synced.
func TestPackedReplicaCrashImages(t *testing.T) {
	ctx := context.Background()
	a := newRegion(t, "us-east-1")
	b := newRegion(t, "us-west-2")
	type image struct {
		k *kv.Memory
		d *disk.Mem
	}
	var (
		mu     sync.Mutex
		images []image
		calls  int
		on     bool
	)
	b.wrapDisk = func(d disk.FS) disk.FS {
		return &imageDisk{FS: d, take: func() {
			mu.Lock()
			defer mu.Unlock()
			if !on {
				return
			}
			if calls++; calls%3 != 0 || len(images) >= 60 {
				return
			}
			images = append(images, image{k: b.kv.CrashClone(), d: b.disk.CrashClone()})
		}}
	}
	b.stop()
	b.openEngine()
	startPair(a, b)
	src := a.mkfs("fs-src")
	link(t, a, b, "r1", "fs-src", "fs-dst")
	converged(t, src, b.fs("fs-dst"))
	mu.Lock()
	on = true
	mu.Unlock()
	writeRandomFiles(t, ctx, src, rand.New(rand.NewPCG(18, 18)), 12, 6)
	converged(t, src, b.fs("fs-dst"))
	mu.Lock()
	on = false
	imgs := images
	mu.Unlock()
	if len(imgs) < 10 {
		t.Fatalf("%d crash images taken at pack writes, want at least 10", len(imgs))
	}
	maxApplied := uint64(0)
	for i, img := range imgs {
		c := &region{t: t, name: "image", kv: img.k, disk: img.d, ring: b.ring, log: b.log}
		c.openEngine()
		rep := c.rep("fs-dst")
		_, applied, _ := rep.Applied()
		maxApplied = max(maxApplied, applied)
		if err := rep.Verify(ctx, true); err != nil {
			t.Fatalf("crash image %d (applied %d): %v", i, applied, err)
		}
		c.e.Close()
	}
	if maxApplied == 0 {
		t.Fatal("no crash image holds an applied record")
	}
}
