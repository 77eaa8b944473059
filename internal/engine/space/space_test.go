package space

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/regionfs/regionfs/internal/engine/disk"
	"github.com/regionfs/regionfs/internal/testkit"
)

const mib = 1 << 20

func usage(free uint64) disk.Usage {
	return disk.Usage{TotalBytes: 1024 * mib, FreeBytes: free, TotalFiles: 1 << 20, FreeFiles: 1 << 19}
}

func TestAdmitFloor(t *testing.T) {
	d := disk.NewMem()
	d.SetUsage(usage(400 * mib))
	reg := prometheus.NewRegistry()
	g, err := Open(Options{Disk: d, MinFreeBytes: 100 * mib, ReserveBytes: -1, RefreshInterval: time.Hour, RefreshBytes: 1 << 40, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	// Admitted bytes count until the next statfs.
	if err := g.Admit(200 * mib); err != nil {
		t.Fatal(err)
	}
	if err := g.Check(50 * mib); err != nil {
		t.Fatalf("check within the floor: %v", err)
	}
	// 400 - 200 - 150 < 100: a fresh statfs (still 400 free: nothing was
	// written) admits it.
	if err := g.Admit(150 * mib); err != nil {
		t.Fatalf("admit after a re-read: %v", err)
	}
	d.SetUsage(usage(120 * mib))
	g.Refresh()
	err = g.Admit(30 * mib)
	if !errors.Is(err, ErrLow) {
		t.Fatalf("admit below the floor: %v, want ErrLow", err)
	}
	t.Logf("refusal: %v", err)
	if st := g.Status(); st.Full || st.Refused != 1 {
		t.Fatalf("status %+v: want not full (120 MiB > floor), 1 refused", st)
	}
	d.SetUsage(usage(90 * mib))
	g.Refresh()
	if err := g.Check(0); !errors.Is(err, ErrLow) {
		t.Fatalf("check below the floor: %v", err)
	}
	st := g.Status()
	if !st.Full || st.Since.IsZero() {
		t.Fatalf("status %+v, want full", st)
	}
	if v := gauge(t, reg, "regionfs_disk_full"); v != 1 {
		t.Fatalf("regionfs_disk_full = %v", v)
	}
	d.SetUsage(usage(500 * mib))
	g.Refresh()
	if err := g.Admit(mib); err != nil || g.Status().Full {
		t.Fatalf("space back: %v %+v", err, g.Status())
	}
}

func gauge(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("metric %s not found", name)
	return 0
}

// TestReserve: the reserve file is allocated when there is room, given
// back at start-up below the floor (the metadata store needs room to
// replay its log) and at run time when half the floor is gone, and
// allocated again when space is back.
func TestReserve(t *testing.T) {
	dir := t.TempDir()
	d, err := disk.NewOS(dir)
	if err != nil {
		t.Fatal(err)
	}
	free := uint64(1024 * mib)
	fake := &usageDisk{FS: d, free: &free}
	o := Options{Disk: fake, MinFreeBytes: 100 * mib, ReserveBytes: 4 * mib, Interval: time.Hour}
	g, err := Open(o)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, ReserveFile)
	if st, err := os.Stat(path); err != nil || st.Size() != 4*mib || !g.Status().Reserved {
		t.Fatalf("reserve not allocated: %v %v", st, err)
	}
	// Restart with less than the floor free: given back before anything
	// else opens.
	free = 80 * mib
	g, err = Open(o)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) || g.Status().Reserved {
		t.Fatalf("reserve kept at start-up below the floor: %v", err)
	}
	// Space back: allocated again (floor + reserve + a quarter of the floor).
	free = 200 * mib
	g.settle(false)
	if !g.Status().Reserved {
		t.Fatal("reserve not allocated again")
	}
	// At run time it stays until half the floor is gone.
	free = 80 * mib
	g.settle(false)
	if !g.Status().Reserved {
		t.Fatal("reserve given back with most of the floor left")
	}
	free = 40 * mib
	g.settle(false)
	if g.Status().Reserved {
		t.Fatal("reserve kept with half the floor gone")
	}
	// A reserve file cut short by a crash is removed at open.
	if err := os.WriteFile(path, make([]byte, 10), 0o600); err != nil {
		t.Fatal(err)
	}
	free = 80 * mib
	if _, err := Open(o); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("short reserve file kept: %v", err)
	}
}

// usageDisk reports a chosen free space.
type usageDisk struct {
	disk.FS
	free *uint64
}

func (u *usageDisk) Usage(string) (disk.Usage, error) { return usage(*u.free), nil }

func TestLoop(t *testing.T) {
	d := disk.NewMem()
	d.SetUsage(usage(50 * mib))
	g, err := Open(Options{Disk: d, MinFreeBytes: 100 * mib, ReserveBytes: -1, Interval: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	g.Start()
	defer g.Close()
	if !g.Status().Full {
		t.Fatal("not full at 50 MiB free with a 100 MiB floor")
	}
	d.SetUsage(usage(500 * mib))
	testkit.WaitFor(t, "the loop to notice space coming back", 5*time.Second, func() bool { return !g.Status().Full })
}

// TestCheckReplayRoom: the metadata store is not opened on a disk without
// room to replay its log (Pebble would retry the failing flush forever).
func TestCheckReplayRoom(t *testing.T) {
	dir := t.TempDir()
	kvDir := filepath.Join(dir, "kv")
	if err := os.MkdirAll(kvDir, 0o755); err != nil {
		t.Fatal(err)
	}
	// 10 MiB of records, then the zeros of a zero-filled log
	// (pebblekv.Options.OverwriteWAL) that do not count.
	log := bytes.Repeat([]byte{0x5a}, 10*mib)
	log = append(log, make([]byte, 30*mib)...)
	if err := os.WriteFile(filepath.Join(kvDir, "000012.log"), log, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(kvDir, "000013.log"), make([]byte, 20*mib), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(kvDir, "000011.sst"), make([]byte, 50*mib), 0o600); err != nil {
		t.Fatal(err)
	}
	d, err := disk.NewOS(dir)
	if err != nil {
		t.Fatal(err)
	}
	free := uint64(5 * mib)
	g, err := Open(Options{Disk: &usageDisk{FS: d, free: &free}, MinFreeBytes: 100 * mib, ReserveBytes: -1})
	if err != nil {
		t.Fatal(err)
	}
	err = g.CheckReplayRoom(kvDir, mib)
	if !errors.Is(err, ErrNoRoomToReplay) {
		t.Fatalf("5 MiB free for a 10 MiB log: %v", err)
	}
	t.Log(err)
	free = 12 * mib
	if err := g.CheckReplayRoom(kvDir, mib); err != nil {
		t.Fatalf("12 MiB free for a 10 MiB log: %v", err)
	}
	if err := g.CheckReplayRoom(filepath.Join(dir, "none"), mib); err != nil {
		t.Fatalf("no store yet: %v", err)
	}
}

// TestCheckInternal: the server's own bookkeeping is admitted below the
// floor, down to half of it; user writes are not.
func TestCheckInternal(t *testing.T) {
	d := disk.NewMem()
	d.SetUsage(usage(80 * mib))
	g, err := Open(Options{Disk: d, MinFreeBytes: 100 * mib, ReserveBytes: -1, RefreshInterval: time.Hour, RefreshBytes: 1 << 40})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Check(mib); !errors.Is(err, ErrLow) {
		t.Fatalf("user check at 80 MiB free, floor 100 MiB: %v, want ErrLow", err)
	}
	if err := g.CheckInternal(mib); err != nil {
		t.Fatalf("internal check at 80 MiB free, floor 100 MiB: %v, want admitted", err)
	}
	if err := g.CheckInternal(31 * mib); !errors.Is(err, ErrLow) {
		t.Fatalf("internal check of 31 MiB at 80 MiB free: %v, want ErrLow (below half the floor)", err)
	}
	d.SetUsage(usage(49 * mib))
	g.Refresh()
	err = g.CheckInternal(0)
	if !errors.Is(err, ErrLow) {
		t.Fatalf("internal check at 49 MiB free: %v, want ErrLow", err)
	}
	t.Logf("refusal: %v", err)
	if st := g.Status(); !st.Full || st.Refused != 0 {
		t.Fatalf("status %+v: want full, no refused admission counted for checks", st)
	}
}
