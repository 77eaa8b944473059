package space

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/regionfs/regionfs/internal/config"
	"github.com/regionfs/regionfs/internal/engine/disk"
)

// Defaults of Options.
const (
	DefaultMinFreeBytes    = 256 << 20
	DefaultReserveBytes    = 128 << 20
	DefaultInterval        = time.Second
	DefaultRefreshInterval = 50 * time.Millisecond
	DefaultRefreshBytes    = 8 << 20
)

// ReserveFile is the name of the reserve file in the data directory.
const ReserveFile = "reserved-space"

// ErrLow: admitting the write would take the disk's free space below the
// floor.
var ErrLow = errors.New("free space below the floor")

// Options configure a Guard.
type Options struct {
	// Disk is the data directory (statfs of "." and the reserve file).
	// Required.
	Disk disk.FS
	// MinFreeBytes is the floor (DefaultMinFreeBytes when 0; negative:
	// no floor). ReserveBytes is the reserve file's size
	// (DefaultReserveBytes when 0; negative: no reserve file).
	MinFreeBytes, ReserveBytes int64
	// Interval is how often the background loop checks the disk and the
	// reserve (Start).
	Interval time.Duration
	// RefreshInterval and RefreshBytes: Admit re-reads statfs when its
	// figure is older or when more has been admitted since.
	RefreshInterval time.Duration
	RefreshBytes    int64
	Logger          *slog.Logger
	// Registerer, when set, receives the regionfs_disk_* metrics.
	Registerer prometheus.Registerer
}

// Status is what the guard knows about the disk.
type Status struct {
	// AvailableBytes and TotalBytes are what statfs last said.
	AvailableBytes, TotalBytes uint64
	// MinFreeBytes is the floor; ReserveBytes the reserve file's size,
	// Reserved whether it is held.
	MinFreeBytes, ReserveBytes int64
	Reserved                   bool
	// Full: writes that grow what the server stores are refused (only
	// deletions and truncations are accepted).
	Full bool
	// Refused counts the writes refused since start; Since is when the
	// disk last became full (zero when it is not).
	Refused uint64
	Since   time.Time
	// Err is the last statfs failure, if any.
	Err string
}

// Guard admits or refuses writes by the disk's free space and keeps the
// reserve file (see the package documentation).
type Guard struct {
	o   Options
	log *slog.Logger

	mu       sync.Mutex // guards the fields below
	avail    uint64
	total    uint64
	statAt   time.Time
	pending  int64 // admitted since the last statfs
	reserved bool
	full     bool
	since    time.Time
	refused  uint64
	statErr  error

	runMu   sync.Mutex // guards stop, done
	stop    chan struct{}
	done    chan struct{}
	metrics *metrics
}

// Open measures the disk and settles the reserve file: it is given back
// when the free space is below the floor (before the metadata store
// opens, so that it has room to replay its log), and allocated when there
// is room for it. It starts nothing; Start runs the background checks.
func Open(o Options) (*Guard, error) {
	if o.Disk == nil {
		return nil, errors.New("space: Options.Disk is required")
	}
	if o.MinFreeBytes == 0 {
		o.MinFreeBytes = DefaultMinFreeBytes
	}
	o.MinFreeBytes = max(o.MinFreeBytes, 0)
	if o.ReserveBytes == 0 {
		o.ReserveBytes = DefaultReserveBytes
	}
	o.ReserveBytes = max(o.ReserveBytes, 0)
	if o.Interval <= 0 {
		o.Interval = DefaultInterval
	}
	if o.RefreshInterval <= 0 {
		o.RefreshInterval = DefaultRefreshInterval
	}
	if o.RefreshBytes <= 0 {
		o.RefreshBytes = DefaultRefreshBytes
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	g := &Guard{o: o, log: o.Logger}
	if st, err := o.Disk.Stat(ReserveFile); err == nil {
		g.reserved = st.Size() >= o.ReserveBytes && o.ReserveBytes > 0
		if !g.reserved {
			// Cut short by a crash while allocating, or no reserve wanted.
			if err := o.Disk.Remove(ReserveFile); err != nil {
				return nil, fmt.Errorf("space: remove %s: %w", ReserveFile, err)
			}
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("space: %s: %w", ReserveFile, err)
	}
	g.mu.Lock()
	err := g.statLocked()
	g.mu.Unlock()
	if err != nil {
		return nil, err
	}
	g.settle(true)
	g.metrics = newMetrics(o.Registerer, g)
	st := g.Status()
	g.log.Info("data disk", "available_bytes", st.AvailableBytes, "total_bytes", st.TotalBytes,
		"min_free_bytes", st.MinFreeBytes, "reserve_bytes", st.ReserveBytes, "reserved", st.Reserved, "full", st.Full)
	return g, nil
}

// statLocked re-reads statfs.
func (g *Guard) statLocked() error {
	u, err := g.o.Disk.Usage(".")
	if err != nil {
		g.statErr = err
		return fmt.Errorf("space: statfs: %w", err)
	}
	g.statErr = nil
	g.avail, g.total, g.statAt, g.pending = u.FreeBytes, u.TotalBytes, time.Now(), 0
	g.setFullLocked(int64(g.avail) < g.o.MinFreeBytes)
	return nil
}

func (g *Guard) setFullLocked(full bool) {
	switch {
	case full && !g.full:
		g.full, g.since = true, time.Now()
		g.log.Warn("data disk full: only deletions and truncations are accepted until space is freed or added",
			"available_bytes", g.avail, "min_free_bytes", g.o.MinFreeBytes, "total_bytes", g.total)
	case !full && g.full:
		g.full, g.since = false, time.Time{}
		g.log.Info("data disk has room again: writes are accepted", "available_bytes", g.avail, "min_free_bytes", g.o.MinFreeBytes)
	}
}

// Admit reserves need bytes for a write that grows what the server
// stores, or refuses it with an error wrapping ErrLow.
func (g *Guard) Admit(need int64) error { return g.check(need, g.o.MinFreeBytes, true) }

// Check reports whether need more bytes would be admitted, reserving
// nothing.
func (g *Guard) Check(need int64) error { return g.check(need, g.o.MinFreeBytes, false) }

// CheckInternal is Check for the server's own small bookkeeping that must
// go on when the disk is full: an alarm's state change and history, the
// notification it publishes and its delivery state. Such writes may
// use the upper half of the floor, which user writes (Admit, Check) never
// reach: an alarm meant to say that the disk is full can still change
// state and notify. The lower half stays for the metadata stores' own
// work (their logs, compactions, deletions), as does the reserve file,
// which is given back when the free space falls below it.
func (g *Guard) CheckInternal(need int64) error { return g.check(need, g.internalFloor(), false) }

// internalFloor is the free space CheckInternal keeps: half the floor.
func (g *Guard) internalFloor() int64 { return g.o.MinFreeBytes / 2 }

// Checker is what Room asks: a Guard, or a test's stand-in. The packages
// that write to the data disk declare it in their Options.Space.
type Checker interface {
	// Check reports whether need more bytes would be admitted, reserving
	// nothing.
	Check(need int64) error
}

// InternalChecker is what RoomInternal asks: a Guard, or a test's
// stand-in.
type InternalChecker interface {
	// CheckInternal is Check for the server's own bookkeeping (see
	// Guard.CheckInternal).
	CheckInternal(need int64) error
}

// Room asks c whether need more bytes may be written (a nil c: always).
// A refusal wraps both noSpace, the caller's own sentinel (its edge maps
// it to NFS3ERR_NOSPC or an AWS error), and c's reason.
func Room(c Checker, need int64, noSpace error) error {
	if c == nil {
		return nil
	}
	return refused(c.Check(need), noSpace)
}

// RoomInternal is Room for the server's own bookkeeping, asked with
// CheckInternal (down to half the floor).
func RoomInternal(c InternalChecker, need int64, noSpace error) error {
	if c == nil {
		return nil
	}
	return refused(c.CheckInternal(need), noSpace)
}

func refused(err, noSpace error) error {
	if err != nil {
		return fmt.Errorf("%w: %w", noSpace, err)
	}
	return nil
}

func (g *Guard) check(need, floor int64, reserve bool) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if time.Since(g.statAt) > g.o.RefreshInterval || g.pending > g.o.RefreshBytes {
		_ = g.statLocked() // a failure keeps the last figure
	}
	left := int64(g.avail) - g.pending - max(need, 0)
	if left < floor && g.pending > 0 {
		// What was admitted may have been written (or failed) since.
		_ = g.statLocked()
		left = int64(g.avail) - max(need, 0)
	}
	if left < floor {
		if reserve {
			g.refused++
			g.metrics.refused()
		}
		if int64(g.avail) < g.o.MinFreeBytes {
			g.setFullLocked(true)
		}
		if floor < g.o.MinFreeBytes {
			return fmt.Errorf("%w: %s free of %s, %s needed above the server's own floor of %s (half the floor of %s)",
				ErrLow, config.FormatBytes(g.avail), config.FormatBytes(g.total), config.FormatBytes(uint64(max(need, 0))), config.FormatBytes(uint64(floor)), config.FormatBytes(uint64(g.o.MinFreeBytes)))
		}
		return fmt.Errorf("%w: %s free of %s, %s needed above the floor of %s: only deletions and truncations are accepted",
			ErrLow, config.FormatBytes(g.avail), config.FormatBytes(g.total), config.FormatBytes(uint64(max(need, 0))), config.FormatBytes(uint64(floor)))
	}
	if reserve {
		g.pending += max(need, 0)
	}
	return nil
}

// Refresh re-reads statfs now (after a write failed for lack of space).
func (g *Guard) Refresh() {
	g.mu.Lock()
	defer g.mu.Unlock()
	_ = g.statLocked()
}

// Status returns what the guard knows.
func (g *Guard) Status() Status {
	g.mu.Lock()
	defer g.mu.Unlock()
	s := Status{
		AvailableBytes: g.avail, TotalBytes: g.total, MinFreeBytes: g.o.MinFreeBytes,
		ReserveBytes: g.o.ReserveBytes, Reserved: g.reserved, Full: g.full, Since: g.since, Refused: g.refused,
	}
	if g.statErr != nil {
		s.Err = g.statErr.Error()
	}
	return s
}

// Start runs the background checks until Close.
func (g *Guard) Start() {
	g.runMu.Lock()
	defer g.runMu.Unlock()
	if g.stop != nil {
		return
	}
	g.stop, g.done = make(chan struct{}), make(chan struct{})
	go g.loop(g.stop, g.done)
}

// Close stops the background checks.
func (g *Guard) Close() {
	g.runMu.Lock()
	stop, done := g.stop, g.done
	g.stop, g.done = nil, nil
	g.runMu.Unlock()
	if stop != nil {
		close(stop)
		<-done
	}
}

func (g *Guard) loop(stop, done chan struct{}) {
	defer close(done)
	t := time.NewTicker(g.o.Interval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		g.settle(false)
	}
}

// settle gives the reserve back when the floor is gone — at start-up as
// soon as the disk is below it, later when half of it is gone (the
// server's own growth stops at the floor: something else is filling the
// disk) — and allocates it when the disk has room for the floor and the
// reserve.
func (g *Guard) settle(startup bool) {
	g.mu.Lock()
	_ = g.statLocked()
	avail, reserved := int64(g.avail), g.reserved
	g.mu.Unlock()
	if g.o.ReserveBytes <= 0 {
		return
	}
	switch {
	case reserved && (avail < g.o.MinFreeBytes/2 || startup && avail < g.o.MinFreeBytes):
		if err := g.release(); err != nil {
			g.log.Error("give back the reserved space", "err", err)
			return
		}
		g.log.Warn("data disk nearly full: reserved space given back so that the metadata store and deletions can work",
			"reserve_bytes", g.o.ReserveBytes, "available_bytes", avail)
	case !reserved && avail >= g.o.MinFreeBytes+g.o.ReserveBytes+g.o.MinFreeBytes/4:
		if err := g.allocate(); err != nil {
			g.log.Warn("allocate the reserved space", "reserve_bytes", g.o.ReserveBytes, "err", err)
			return
		}
		g.log.Info("reserved space allocated", "reserve_bytes", g.o.ReserveBytes)
	default:
		return
	}
	g.mu.Lock()
	_ = g.statLocked()
	g.mu.Unlock()
}

func (g *Guard) release() error {
	if err := g.o.Disk.Remove(ReserveFile); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if err := g.o.Disk.SyncDir("."); err != nil {
		return err
	}
	g.mu.Lock()
	g.reserved = false
	g.mu.Unlock()
	return nil
}

// allocate writes the reserve file: a temporary file, allocated (or
// written) whole and synced, renamed into place.
func (g *Guard) allocate() error {
	tmp := ReserveFile + ".tmp"
	_ = g.o.Disk.Remove(tmp)
	f, err := g.o.Disk.Create(tmp)
	if err != nil {
		return err
	}
	err = fill(f, g.o.ReserveBytes)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = g.o.Disk.Rename(tmp, ReserveFile)
	}
	if err == nil {
		err = g.o.Disk.SyncDir(".")
	}
	if err != nil {
		_ = g.o.Disk.Remove(tmp)
		return err
	}
	g.mu.Lock()
	g.reserved = true
	g.mu.Unlock()
	return nil
}

// allocator is a file that can allocate its blocks without writing them.
type allocator interface {
	Allocate(size int64) error
}

// fill makes f size bytes long with allocated blocks.
func fill(f disk.File, size int64) error {
	if a, ok := f.(allocator); ok {
		if err := a.Allocate(size); err == nil {
			return nil
		}
	}
	zero := make([]byte, 1<<20)
	for done := int64(0); done < size; {
		n := min(int64(len(zero)), size-done)
		if _, err := f.Write(zero[:n]); err != nil {
			return err
		}
		done += n
	}
	return nil
}

type metrics struct {
	refusedTotal prometheus.Counter
}

func (m *metrics) refused() {
	if m != nil {
		m.refusedTotal.Inc()
	}
}

func newMetrics(reg prometheus.Registerer, g *Guard) *metrics {
	m := &metrics{refusedTotal: prometheus.NewCounter(prometheus.CounterOpts{
		Name: "regionfs_disk_refused_writes_total",
		Help: "Writes refused because the data disk's free space is below the floor.",
	})}
	if reg == nil {
		return m
	}
	gauge := func(name, help string, f func(Status) float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, func() float64 { return f(g.Status()) })
	}
	b := func(v bool) float64 {
		if v {
			return 1
		}
		return 0
	}
	reg.MustRegister(m.refusedTotal,
		gauge("regionfs_disk_available_bytes", "Free space of the data disk (statfs, available to the server).",
			func(s Status) float64 { return float64(s.AvailableBytes) }),
		gauge("regionfs_disk_size_bytes", "Size of the data disk.",
			func(s Status) float64 { return float64(s.TotalBytes) }),
		gauge("regionfs_disk_min_free_bytes", "Free-space floor: below it only deletions and truncations are accepted.",
			func(s Status) float64 { return float64(s.MinFreeBytes) }),
		gauge("regionfs_disk_reserved_bytes", "Space held by the reserve file (given back when the disk fills up).",
			func(s Status) float64 {
				if s.Reserved {
					return float64(s.ReserveBytes)
				}
				return 0
			}),
		gauge("regionfs_disk_full", "1 while the data disk is below its free-space floor and writes are refused.",
			func(s Status) float64 { return b(s.Full) }),
	)
	return m
}

// ErrNoRoomToReplay: the disk lacks the space a store (the metadata
// store, the monitoring store) needs to replay its write-ahead log at
// start-up.
var ErrNoRoomToReplay = errors.New("no room to replay the store's log")

// CheckReplayRoom reports, before the metadata store opens, whether the
// disk has room for it to replay its write-ahead log (the *.log files of
// dir, written out again as tables) with margin bytes to spare. Without
// that room Pebble retries the failing flush forever and never opens: a
// clear error is better. The guard has given its reserve back by then.
func (g *Guard) CheckReplayRoom(dir string, margin int64) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("space: %w", err)
	}
	var wal int64
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".log") {
			n, err := logContent(filepath.Join(dir, e.Name()))
			if err != nil {
				return fmt.Errorf("space: %w", err)
			}
			wal += n
		}
	}
	g.mu.Lock()
	_ = g.statLocked()
	avail := int64(g.avail)
	g.mu.Unlock()
	if need := wal + margin; avail < need {
		return fmt.Errorf("%w (%s): %s free, about %s needed (log %s): free some space in the data directory's file system (the data itself is intact) and start again",
			ErrNoRoomToReplay, dir, config.FormatBytes(uint64(avail)), config.FormatBytes(uint64(need)), config.FormatBytes(uint64(wal)))
	}
	return nil
}

// logContent returns how much of a log file holds records: its size less
// the zeros at its end. A metadata store's new log is written full of
// zeros before use (pebblekv.Options.OverwriteWAL), so its size says
// nothing of what a replay writes out.
func logContent(path string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return 0, nil // gone since the listing
		}
		return 0, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return 0, err
	}
	buf := make([]byte, 1<<20)
	for end := info.Size(); end > 0; {
		n := min(end, int64(len(buf)))
		if _, err := f.ReadAt(buf[:n], end-n); err != nil {
			return 0, err
		}
		for i := n - 1; i >= 0; i-- {
			if buf[i] != 0 {
				return end - n + i + 1, nil
			}
		}
		end -= n
	}
	return 0, nil
}
