package control_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/regionfs/regionfs/internal/control"
	"github.com/regionfs/regionfs/internal/engine/disk"
	"github.com/regionfs/regionfs/internal/engine/space"
)

// TestFullDiskRefusesCreations (issue 9 §2): with the data disk below its
// floor, operations that add to what the region stores are refused with
// ErrInsufficientCapacity and a message that says why, while describing
// and deleting keep working; everything works again once space is back.
func TestFullDiskRefusesCreations(t *testing.T) {
	v := newEnv(t)
	g, err := space.Open(space.Options{Disk: v.disk, MinFreeBytes: 100 << 20, ReserveBytes: -1, RefreshInterval: time.Nanosecond})
	if err != nil {
		t.Fatal(err)
	}
	v.space = g
	v.reopen(func(o *control.Options) { o.Storage = g.Status })
	ctx := context.Background()
	fs := v.availableFS("keep")
	doomed := v.availableFS("doomed")
	v.disk.SetUsage(disk.Usage{TotalBytes: 1 << 30, FreeBytes: 50 << 20})

	_, err = v.r.CreateFileSystem(ctx, control.CreateFileSystemInput{CreationToken: "new"})
	if !errors.Is(err, control.ErrInsufficientCapacity) {
		t.Fatalf("CreateFileSystem on a full disk: %v, want ErrInsufficientCapacity", err)
	}
	if !strings.Contains(err.Error(), "only deletions are accepted") || !strings.Contains(err.Error(), "50.0 MiB free") {
		t.Fatalf("message %q does not say what is wrong", err)
	}
	if _, err := v.r.CreateMountTarget(ctx, control.CreateMountTargetInput{FileSystemID: fs.ID, SubnetID: subA}); !errors.Is(err, control.ErrInsufficientCapacity) {
		t.Fatalf("CreateMountTarget on a full disk: %v", err)
	}
	if _, err := v.r.CreateAccessPoint(ctx, control.CreateAccessPointInput{ClientToken: "t", FileSystemID: fs.ID}); !errors.Is(err, control.ErrInsufficientCapacity) {
		t.Fatalf("CreateAccessPoint on a full disk: %v", err)
	}
	if err := v.r.TagResource(ctx, fs.ID, []control.Tag{{Key: "k", Value: "v"}}); !errors.Is(err, control.ErrInsufficientCapacity) {
		t.Fatalf("TagResource on a full disk: %v", err)
	}
	if _, _, err := v.r.DescribeFileSystems(ctx, control.FileSystemQuery{}); err != nil {
		t.Fatalf("DescribeFileSystems on a full disk: %v", err)
	}
	if err := v.r.DeleteFileSystem(ctx, doomed.ID); err != nil {
		t.Fatalf("DeleteFileSystem on a full disk: %v", err)
	}
	v.waitFSGone(doomed.ID)
	st, ok := v.r.StorageStatus()
	if !ok || !st.Full || st.AvailableBytes != 50<<20 {
		t.Fatalf("storage status %+v %v", st, ok)
	}
	v.disk.SetUsage(disk.Usage{TotalBytes: 1 << 30, FreeBytes: 500 << 20})
	if _, err := v.r.CreateFileSystem(ctx, control.CreateFileSystemInput{CreationToken: "new"}); err != nil {
		t.Fatalf("CreateFileSystem once space is back: %v", err)
	}
}
