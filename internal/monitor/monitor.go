package monitor

import (
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/regionfs/regionfs/internal/engine/kv"
	"github.com/regionfs/regionfs/internal/engine/space"
)

// Options configure a Monitor.
type Options struct {
	// KV holds metrics, alarms and their history (a store of the
	// monitor's own: its writes are frequent and unsynced).
	KV kv.Store
	// Region and AccountID name the alarms' ARNs.
	Region    string
	AccountID string
	// Notifier receives alarm actions (SNS topic ARNs); nil fails them
	// (the failure is in the alarm's history).
	Notifier Notifier
	Clock    func() time.Time
	Logger   *slog.Logger
	// Tick is how often alarms are looked at (default 1 s); each is
	// evaluated when one of its periods has ended.
	Tick time.Duration
	// IngestDelay is how long after a period's end its datapoints are
	// taken as complete (default 2 s).
	IngestDelay time.Duration
	// Space admits metric writes by the data disk's free space (nil:
	// always).
	Space SpaceGuard
}

// SpaceGuard admits writes by the free space of the data disk
// (space.Guard). Metric data is refused below its floor: the floor is the
// room the file systems' deletions and the metadata store run in, and a
// Pebble WAL that hits ENOSPC stops the process.
type SpaceGuard interface {
	// Check reports whether need more bytes would be admitted.
	Check(need int64) error
	// CheckInternal is Check for the server's own bookkeeping (the
	// evaluator's state changes and action history), admitted below the
	// floor down to half of it: an alarm that watches a full disk still
	// changes state and notifies.
	CheckInternal(need int64) error
}

// Monitor is a region's CloudWatch: its metric store, alarms and their
// evaluation.
type Monitor struct {
	o      Options
	log    *slog.Logger
	store  *Store
	alarms *alarmSet

	dashMu sync.Mutex // serialises dashboard changes
}

// Open opens the monitor over o.KV and starts evaluating its alarms.
func Open(o Options) (*Monitor, error) {
	if o.KV == nil || o.Region == "" || o.AccountID == "" {
		return nil, errors.New("monitor: KV, Region and AccountID are required")
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Tick <= 0 {
		o.Tick = time.Second
	}
	if o.IngestDelay <= 0 {
		o.IngestDelay = 2 * time.Second
	}
	m := &Monitor{o: o, log: o.Logger.With("region", o.Region)}
	var err error
	if m.store, err = OpenStore(StoreOptions{KV: o.KV, Clock: o.Clock, Logger: m.log, Space: o.Space}); err != nil {
		return nil, err
	}
	if m.alarms, err = openAlarms(m); err != nil {
		m.store.Close()
		return nil, err
	}
	m.alarms.start()
	return m, nil
}

// Close stops alarm evaluation and the store; pending actions are given
// up to a few seconds.
func (m *Monitor) Close() error {
	return errors.Join(m.alarms.close(), m.store.Close())
}

// Pause stops (true) or resumes (false) alarm evaluation, as a region
// down on demand does; on resume every alarm is evaluated again.
func (m *Monitor) Pause(paused bool) {
	m.alarms.mu.Lock()
	m.alarms.paused = paused
	if !paused {
		m.alarms.lastEval = map[string]int64{}
	}
	m.alarms.mu.Unlock()
}

// Record stores datapoints that regionfs publishes itself (any
// namespace, AWS/EFS included); they are not validated as PutMetricData
// is.
func (m *Monitor) Record(data []Datum) error { return m.store.write(data) }

// Now is the monitor's clock.
func (m *Monitor) Now() time.Time { return m.o.Clock() }

// alarmBytes is what an alarm change (the alarm, history items, the
// write-ahead log) is assumed to add to the store, for the space check.
const alarmBytes = 8 << 10

// room admits need more bytes in the store by the data disk's free space
// (Options.Space): below its floor ErrNoSpace, since the store's Pebble WAL
// stops the process when it meets ENOSPC. internal: the evaluator's own
// writes, admitted down to the guard's lower floor (CheckInternal).
func (m *Monitor) room(need int64, internal bool) error {
	if internal {
		return space.RoomInternal(m.o.Space, need, ErrNoSpace)
	}
	return space.Room(m.o.Space, need, ErrNoSpace)
}
