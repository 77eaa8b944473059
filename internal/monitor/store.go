package monitor

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sort"
	"sync"
	"time"

	"github.com/regionfs/regionfs/internal/engine/kv"
	"github.com/regionfs/regionfs/internal/engine/space"
)

// Keys of the metric store (prefix 'w', "watch"):
//
//	'w' 's' id(8)                      → series record (JSON)
//	'w' 'p' level(1) id(8) start(8)    → Agg of the series in [start, start+size)
//
// ids and starts (Unix seconds) are big-endian, so a series' buckets of a
// level are contiguous and in time order.
const (
	pfxWatch  = 'w'
	tagSeries = 's'
	tagPoint  = 'p'
)

// level is a resolution the store keeps, with how long it keeps it: the
// CloudWatch roll-ups (1-second data for 3 hours, 1-minute for 15 days,
// 5-minute for 63 days, 1-hour for 455 days). Every datum is added to
// each level at or above its storage resolution.
type level struct {
	size      int64 // seconds
	retention time.Duration
}

var levels = [...]level{
	{1, 3 * time.Hour},
	{60, 15 * 24 * time.Hour},
	{300, 63 * 24 * time.Hour},
	{3600, 455 * 24 * time.Hour},
}

// listWindow is how long a metric without new data stays listed
// (ListMetrics), as on CloudWatch.
const listWindow = 14 * 24 * time.Hour

// series is one metric with one unit.
type series struct {
	id     uint64
	metric Metric
	unit   string
	last   int64 // Unix seconds of the newest datum
	saved  int64 // last as persisted
}

type seriesRecord struct {
	Namespace  string      `json:"ns"`
	Name       string      `json:"name"`
	Dimensions []Dimension `json:"dims,omitempty"`
	Unit       string      `json:"unit,omitempty"`
	Last       int64       `json:"last"`
}

type cacheKey struct {
	id    uint64
	level int
}

type cached struct {
	start int64
	agg   *Agg
}

// StoreOptions configure a Store.
type StoreOptions struct {
	KV     kv.Store
	Clock  func() time.Time
	Logger *slog.Logger
	// SyncEvery is how often unsynced metric writes are made durable
	// (default 2 s); alarm and topic changes are synced at once.
	SyncEvery time.Duration
	// Space admits metric writes (nil: always); see Options.Space.
	Space SpaceGuard
}

// datumBytes is what one datum is assumed to add to the store (a bucket
// of each level, the write-ahead log), for the space check.
const datumBytes = 512

// Store is a region's durable metric store.
type Store struct {
	o StoreOptions

	mu       sync.Mutex         // guards the fields below
	byKey    map[string]*series // metric key + "\x00" + unit
	byMetric map[string][]*series
	byID     map[uint64]*series
	nextID   uint64
	cache    map[cacheKey]*cached
	dirty    bool
	closed   bool

	stop chan struct{}
	wg   sync.WaitGroup
}

// OpenStore loads the series of an existing store (or starts an empty
// one) and starts its maintenance loop (retention, syncs).
func OpenStore(o StoreOptions) (*Store, error) {
	if o.KV == nil {
		return nil, errors.New("monitor: StoreOptions.KV is required")
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.SyncEvery <= 0 {
		o.SyncEvery = 2 * time.Second
	}
	s := &Store{o: o, byKey: map[string]*series{}, byMetric: map[string][]*series{}, byID: map[uint64]*series{},
		cache: map[cacheKey]*cached{}, nextID: 1, stop: make(chan struct{})}
	err := kv.Scan(o.KV, []byte{pfxWatch, tagSeries}, []byte{pfxWatch, tagSeries + 1}, func(k, v []byte) error {
		if len(k) != 10 {
			return nil
		}
		var r seriesRecord
		if err := json.Unmarshal(v, &r); err != nil {
			return fmt.Errorf("monitor: series %x: %w", k, err)
		}
		id := binary.BigEndian.Uint64(k[2:])
		sr := &series{id: id, metric: Metric{Namespace: r.Namespace, Name: r.Name, Dimensions: r.Dimensions}.canonical(), unit: r.Unit, last: r.Last, saved: r.Last}
		s.index(sr)
		s.nextID = max(s.nextID, id+1)
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.wg.Add(1)
	go s.loop()
	return s, nil
}

func (s *Store) index(sr *series) {
	mk := sr.metric.key()
	s.byKey[mk+"\x00"+sr.unit] = sr
	s.byMetric[mk] = append(s.byMetric[mk], sr)
	s.byID[sr.id] = sr
}

// Close stops the maintenance loop and makes every write durable.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	close(s.stop)
	s.wg.Wait()
	return s.sync()
}

func (s *Store) loop() {
	defer s.wg.Done()
	syncT := time.NewTicker(s.o.SyncEvery)
	defer syncT.Stop()
	retain := time.NewTicker(5 * time.Minute)
	defer retain.Stop()
	s.retain()
	for {
		select {
		case <-s.stop:
			return
		case <-syncT.C:
			if err := s.sync(); err != nil {
				s.o.Logger.Error("metric store sync", "err", err)
			}
		case <-retain.C:
			s.retain()
		}
	}
}

// sync makes unsynced writes durable.
func (s *Store) sync() error {
	s.mu.Lock()
	dirty := s.dirty
	s.dirty = false
	s.mu.Unlock()
	if !dirty {
		return nil
	}
	b := s.o.KV.NewBatch()
	defer b.Close()
	b.Set([]byte{pfxWatch, 0}, nil) // an empty marker: the commit syncs the WAL
	return b.Commit(true)
}

// retain deletes buckets past their level's retention and forgets series
// without data in the longest retention. Which series are gone is decided
// under the lock, where writes move a series' last point: a series is
// forgotten there before its record is deleted, so a write that comes
// meanwhile starts a new series instead of adding to a deleted one.
func (s *Store) retain() {
	now := s.o.Clock().Unix()
	oldest := now - int64(levels[len(levels)-1].retention/time.Second)
	s.mu.Lock()
	all := make([]*series, 0, len(s.byID))
	var gone []*series
	for _, sr := range s.byID {
		all = append(all, sr)
		if sr.last < oldest {
			gone = append(gone, sr)
			s.forgetLocked(sr)
		}
	}
	s.mu.Unlock()
	b := s.o.KV.NewBatch()
	defer b.Close()
	for _, sr := range all {
		for l, lv := range levels {
			cut := now - int64(lv.retention/time.Second)
			b.DeleteRange(pointKey(l, sr.id, 0), pointKey(l, sr.id, cut))
		}
	}
	for _, sr := range gone {
		b.Delete(seriesKey(sr.id))
	}
	if err := b.Commit(false); err != nil {
		s.o.Logger.Error("metric retention", "err", err)
		return
	}
	s.mu.Lock()
	s.dirty = true
	s.mu.Unlock()
}

// forgetLocked drops sr from the store's maps and caches.
func (s *Store) forgetLocked(sr *series) {
	mk := sr.metric.key()
	delete(s.byKey, mk+"\x00"+sr.unit)
	delete(s.byID, sr.id)
	for l := range levels {
		delete(s.cache, cacheKey{sr.id, l})
	}
	list := s.byMetric[mk]
	for i, x := range list {
		if x == sr {
			list = append(list[:i], list[i+1:]...)
			break
		}
	}
	if len(list) == 0 {
		delete(s.byMetric, mk)
	} else {
		s.byMetric[mk] = list
	}
}

func seriesKey(id uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte{pfxWatch, tagSeries}, id)
}

func pointKey(level int, id uint64, start int64) []byte {
	k := binary.BigEndian.AppendUint64([]byte{pfxWatch, tagPoint, byte(level)}, id)
	if start < 0 {
		start = 0
	}
	return binary.BigEndian.AppendUint64(k, uint64(start))
}

// Datum is one datapoint to store: a single value, a statistic set, or
// values with counts.
type Datum struct {
	Metric    Metric
	Timestamp time.Time
	Unit      string // "" is None
	// Resolution is 1 (high resolution) or 60 (standard).
	Resolution int
	Value      *float64
	Stats      *StatisticSet
	Values     []float64
	Counts     []float64
}

// StatisticSet is a pre-aggregated datum.
type StatisticSet struct {
	SampleCount, Sum, Minimum, Maximum float64
}

func (d *Datum) agg() *Agg {
	a := &Agg{}
	switch {
	case d.Value != nil:
		a.addValue(*d.Value, 1)
	case d.Stats != nil:
		st := d.Stats
		a.addStats(st.SampleCount, st.Sum, st.Minimum, st.Maximum)
		if st.SampleCount == 1 || st.Minimum == st.Maximum {
			a.addDist(st.Minimum, st.SampleCount)
		} else {
			a.noDist += st.SampleCount
		}
	default:
		for i, v := range d.Values {
			c := 1.0
			if i < len(d.Counts) {
				c = d.Counts[i]
			}
			a.addValue(v, c)
		}
	}
	return a
}

// write stores data (already validated). Writes are visible at once and
// durable within SyncEvery.
func (s *Store) write(data []Datum) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if err := space.Room(s.o.Space, int64(len(data))*datumBytes, ErrNoSpace); err != nil {
		return err
	}
	now := s.o.Clock().Unix()
	b := s.o.KV.NewBatch()
	defer b.Close()
	touched := map[cacheKey]*cached{}
	for i := range data {
		d := &data[i]
		sr := s.seriesLocked(b, d.Metric.canonical(), d.Unit)
		a := d.agg()
		if a.Count == 0 {
			continue
		}
		ts := d.Timestamp.Unix()
		first := 1
		if d.Resolution == 1 {
			first = 0
		}
		for l := first; l < len(levels); l++ {
			lv := levels[l]
			if ts < now-int64(lv.retention/time.Second) {
				continue
			}
			start := ts - mod(ts, lv.size)
			ck := cacheKey{sr.id, l}
			c := touched[ck]
			if c == nil || c.start != start {
				c = s.cache[ck]
				if c == nil || c.start != start {
					got, err := s.load(b, l, sr.id, start)
					if err != nil {
						return err
					}
					c = &cached{start: start, agg: got}
				}
				touched[ck] = c
			}
			c.agg.merge(a)
			b.Set(pointKey(l, sr.id, start), c.agg.encode())
			// Keep the newest bucket of each series and level.
			if old := s.cache[ck]; old == nil || old.start <= start {
				s.cache[ck] = c
			}
		}
		if ts > sr.last {
			sr.last = ts
		}
		if sr.last-sr.saved >= 600 || sr.saved == 0 {
			sr.saved = sr.last
			b.Set(seriesKey(sr.id), s.record(sr))
		}
	}
	if b.Empty() {
		return nil
	}
	if err := b.Commit(false); err != nil {
		// The cache may now be ahead of the store: drop it.
		s.cache = map[cacheKey]*cached{}
		return fmt.Errorf("monitor: write metrics: %w", err)
	}
	s.dirty = true
	return nil
}

func mod(a, b int64) int64 {
	m := a % b
	if m < 0 {
		m += b
	}
	return m
}

func (s *Store) load(r kv.Reader, l int, id uint64, start int64) (*Agg, error) {
	v, err := r.Get(pointKey(l, id, start))
	if errors.Is(err, kv.ErrNotFound) {
		return &Agg{}, nil
	}
	if err != nil {
		return nil, err
	}
	a, err := decodeAgg(v)
	if err != nil {
		s.o.Logger.Error("damaged metric bucket replaced", "series", id, "level", l, "start", start, "err", err)
		return &Agg{}, nil
	}
	return a, nil
}

func (s *Store) record(sr *series) []byte {
	b, _ := json.Marshal(seriesRecord{Namespace: sr.metric.Namespace, Name: sr.metric.Name, Dimensions: sr.metric.Dimensions, Unit: sr.unit, Last: sr.last})
	return b
}

// seriesLocked returns (creating) the series of m (canonical) and unit.
func (s *Store) seriesLocked(b kv.Batch, m Metric, unit string) *series {
	k := m.key() + "\x00" + unit
	if sr := s.byKey[k]; sr != nil {
		return sr
	}
	sr := &series{id: s.nextID, metric: m, unit: unit}
	s.nextID++
	s.index(sr)
	b.Set(seriesKey(sr.id), s.record(sr))
	return sr
}

// find returns the series of metric m with unit ("" = every unit).
func (s *Store) find(m Metric, unit string) []*series {
	s.mu.Lock()
	defer s.mu.Unlock()
	m = m.canonical()
	if unit != "" {
		if sr := s.byKey[m.key()+"\x00"+unit]; sr != nil {
			return []*series{sr}
		}
		return nil
	}
	return append([]*series(nil), s.byMetric[m.key()]...)
}

// windows aggregates series sr over n windows of period seconds from
// start (Unix seconds): the coarsest level that divides both the period
// and the start is read, so that each window is exactly a set of buckets.
func (s *Store) windows(sr *series, start, period int64, n int) ([]*Agg, error) {
	l := 0
	for i := len(levels) - 1; i >= 0; i-- {
		if period%levels[i].size == 0 && mod(start, levels[i].size) == 0 {
			l = i
			break
		}
	}
	out := make([]*Agg, n)
	end := start + period*int64(n)
	it, err := s.o.KV.NewIter(pointKey(l, sr.id, start), pointKey(l, sr.id, end))
	if err != nil {
		return nil, err
	}
	defer it.Close()
	for ok := it.First(); ok; ok = it.Next() {
		k := it.Key()
		if len(k) != 19 {
			continue
		}
		bs := int64(binary.BigEndian.Uint64(k[11:]))
		w := (bs - start) / period
		if w < 0 || w >= int64(n) {
			continue
		}
		v, err := it.Value()
		if err != nil {
			return nil, err
		}
		a, err := decodeAgg(v)
		if err != nil {
			continue
		}
		if out[w] == nil {
			out[w] = &Agg{}
		}
		out[w].merge(a)
	}
	return out, it.Error()
}

// MetricSummary is a metric as ListMetrics shows it.
type MetricSummary struct {
	Metric Metric
	Last   time.Time
}

// metrics lists the metrics with data in the last since, sorted by key.
func (s *Store) metrics(since time.Time) []MetricSummary {
	s.mu.Lock()
	defer s.mu.Unlock()
	cut := since.Unix()
	out := make([]MetricSummary, 0, len(s.byMetric))
	for _, list := range s.byMetric {
		last := int64(math.MinInt64)
		for _, sr := range list {
			last = max(last, sr.last)
		}
		if last >= cut {
			out = append(out, MetricSummary{Metric: list[0].metric, Last: time.Unix(last, 0)})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Metric.key() < out[j].Metric.key() })
	return out
}
