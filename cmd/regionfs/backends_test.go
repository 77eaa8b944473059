package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/regionfs/regionfs/internal/engine/disk"
	"github.com/regionfs/regionfs/internal/engine/kv/pebblekv"
	"github.com/regionfs/regionfs/internal/engine/space"
)

// TestOpenPebbleReplayRoom (issue 9 §2): a Pebble store of the data
// directory — the monitoring store as well as the metadata store — is
// not opened when the disk lacks the room to replay its log (Pebble would
// retry its failing flush forever and the region never start); it opens
// once there is room.
func TestOpenPebbleReplayRoom(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "monitor")
	if err := os.MkdirAll(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	// A log left by a crash, larger than the free space.
	wal := filepath.Join(dir, "000002.log")
	if err := os.WriteFile(wal, bytes.Repeat([]byte{1}, 4<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	d := disk.NewMem()
	d.SetUsage(disk.Usage{TotalBytes: 1 << 30, FreeBytes: 2 << 20, TotalFiles: 1 << 20, FreeFiles: 1 << 19})
	g, err := space.Open(space.Options{Disk: d, MinFreeBytes: 64 << 20, ReserveBytes: -1})
	if err != nil {
		t.Fatal(err)
	}
	_, err = openPebble(dir, pebblekv.Options{CacheSizeBytes: 1 << 20}, g)
	if !errors.Is(err, space.ErrNoRoomToReplay) {
		t.Fatalf("4 MiB log, 2 MiB free: %v, want ErrNoRoomToReplay", err)
	}
	t.Log(err)
	// Space back (and, here, no crash log to replay): it opens.
	if err := os.Remove(wal); err != nil {
		t.Fatal(err)
	}
	d.SetUsage(disk.Usage{TotalBytes: 1 << 30, FreeBytes: 512 << 20, TotalFiles: 1 << 20, FreeFiles: 1 << 19})
	s, err := openPebble(dir, pebblekv.Options{CacheSizeBytes: 1 << 20}, g)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}
