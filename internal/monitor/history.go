package monitor

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"sort"
	"strings"
	"time"

	"github.com/regionfs/regionfs/internal/engine/kv"
)

// History item types.
const (
	HistoryConfigurationUpdate = "ConfigurationUpdate"
	HistoryStateUpdate         = "StateUpdate"
	HistoryAction              = "Action"
)

// HistoryItem is one entry of an alarm's history.
type HistoryItem struct {
	AlarmName string `json:"name"`
	// AlarmType is TypeComposite for a composite alarm's item; empty (a
	// metric alarm's) in items of older versions too.
	AlarmType string    `json:"alarmType,omitempty"`
	Timestamp time.Time `json:"time"`
	Type      string    `json:"type"`
	Summary   string    `json:"summary"`
	Data      string    `json:"data,omitempty"`
}

func historyKey(name string, t time.Time, seq uint32) []byte {
	k := append([]byte{pfxWatch, tagHistory}, name...)
	k = append(k, 0)
	k = binary.BigEndian.AppendUint64(k, uint64(t.UnixNano()))
	return binary.BigEndian.AppendUint32(k, seq)
}

// historyLocked adds an item to b.
func (s *alarmSet) historyLocked(b kv.Batch, it HistoryItem) {
	s.histSeq++
	v, _ := json.Marshal(it)
	b.Set(historyKey(it.AlarmName, it.Timestamp, s.histSeq), v)
}

// HistoryQuery is a DescribeAlarmHistory request.
type HistoryQuery struct {
	AlarmName  string
	AlarmTypes []string
	Type       string
	Start, End time.Time
	MaxRecords int
	NextToken  string
	ScanBy     string // TimestampDescending (default) or TimestampAscending
}

// DescribeAlarmHistory returns the history of one alarm, or of all
// alarms, newest first unless ScanBy says otherwise; history is kept 30
// days.
func (m *Monitor) DescribeAlarmHistory(ctx context.Context, q HistoryQuery) ([]HistoryItem, string, error) {
	if err := ctx.Err(); err != nil {
		return nil, "", err
	}
	if q.AlarmName != "" {
		if err := checkAlarmName("AlarmName", q.AlarmName); err != nil {
			return nil, "", err
		}
	}
	switch q.Type {
	case "", HistoryConfigurationUpdate, HistoryStateUpdate, HistoryAction:
	default:
		return nil, "", invalid("The value %s for parameter HistoryItemType is not valid: it must be ConfigurationUpdate, StateUpdate or Action.", clip(q.Type))
	}
	switch q.ScanBy {
	case "", "TimestampDescending", "TimestampAscending":
	default:
		return nil, "", invalid("The value %s for parameter ScanBy is not valid: it must be TimestampDescending or TimestampAscending.", clip(q.ScanBy))
	}
	wantMetric, wantComposite, err := alarmTypes(q.AlarmTypes)
	if err != nil {
		return nil, "", err
	}
	if q.AlarmName != "" && len(q.AlarmTypes) == 0 {
		wantComposite = true // the name says which alarm
	}
	if !q.Start.IsZero() && !q.End.IsZero() && q.End.Before(q.Start) {
		return nil, "", invalid("The parameter StartDate must not be after the parameter EndDate.")
	}
	if q.MaxRecords == 0 {
		q.MaxRecords = 100
	}
	if q.MaxRecords < 1 || q.MaxRecords > 100 {
		return nil, "", invalid("The value %d for parameter MaxRecords must be between 1 and 100.", q.MaxRecords)
	}
	after, err := decodeToken(tokenHistory, q.NextToken)
	if err != nil {
		return nil, "", err
	}
	lo := []byte{pfxWatch, tagHistory}
	hi := []byte{pfxWatch, tagHistory + 1}
	if q.AlarmName != "" {
		lo = append(append([]byte{pfxWatch, tagHistory}, q.AlarmName...), 0)
		hi = append(append([]byte{pfxWatch, tagHistory}, q.AlarmName...), 1)
	}
	it, err := m.o.KV.NewIter(lo, hi)
	if err != nil {
		return nil, "", err
	}
	defer it.Close()
	type keyed struct {
		key  string
		item HistoryItem
	}
	var all []keyed
	for ok := it.First(); ok; ok = it.Next() {
		v, err := it.Value()
		if err != nil {
			return nil, "", err
		}
		var h HistoryItem
		if json.Unmarshal(v, &h) != nil {
			continue
		}
		if composite := h.AlarmType == TypeComposite; composite && !wantComposite || !composite && !wantMetric {
			continue
		}
		if (q.Type != "" && h.Type != q.Type) || (!q.Start.IsZero() && h.Timestamp.Before(q.Start)) || (!q.End.IsZero() && h.Timestamp.After(q.End)) {
			continue
		}
		// Order by time across alarms: the key is time, then name and seq.
		k := string(it.Key()[2:])
		i := strings.IndexByte(k, 0)
		all = append(all, keyed{key: k[i+1:] + "\x00" + k[:i], item: h})
	}
	if err := it.Error(); err != nil {
		return nil, "", err
	}
	asc := q.ScanBy == "TimestampAscending"
	sort.Slice(all, func(i, j int) bool {
		if asc {
			return all[i].key < all[j].key
		}
		return all[i].key > all[j].key
	})
	out := []HistoryItem{}
	next, last := "", ""
	for _, k := range all {
		if after != "" && (asc && k.key <= after || !asc && k.key >= after) {
			continue
		}
		if len(out) == q.MaxRecords {
			next = encodeToken(tokenHistory, last)
			break
		}
		out = append(out, k.item)
		last = k.key
	}
	return out, next, nil
}

// trimHistory deletes history older than it is kept.
func (s *alarmSet) trimHistory(now time.Time) {
	cut := uint64(now.Add(-historyRetained).UnixNano())
	it, err := s.m.o.KV.NewIter([]byte{pfxWatch, tagHistory}, []byte{pfxWatch, tagHistory + 1})
	if err != nil {
		return
	}
	b := s.m.o.KV.NewBatch()
	defer b.Close()
	for ok := it.First(); ok; ok = it.Next() {
		k := it.Key()
		if len(k) < 2+1+12 {
			continue
		}
		if binary.BigEndian.Uint64(k[len(k)-12:]) < cut {
			b.Delete(append([]byte(nil), k...))
		}
	}
	it.Close()
	if !b.Empty() {
		if err := b.Commit(false); err != nil {
			s.m.log.Warn("alarm history trim", "err", err)
		}
	}
}
