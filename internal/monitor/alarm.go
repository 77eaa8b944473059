package monitor

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/regionfs/regionfs/internal/engine/kv"
	"github.com/regionfs/regionfs/internal/refusal"
)

// Alarm states.
const (
	StateOK               = "OK"
	StateAlarm            = "ALARM"
	StateInsufficientData = "INSUFFICIENT_DATA"
)

// Comparison operators.
const (
	GreaterOrEqual = "GreaterThanOrEqualToThreshold"
	Greater        = "GreaterThanThreshold"
	Less           = "LessThanThreshold"
	LessOrEqual    = "LessThanOrEqualToThreshold"
)

var bandOperators = []string{"LessThanLowerOrGreaterThanUpperThreshold", "LessThanLowerThreshold", "GreaterThanUpperThreshold"}

// TreatMissingData values.
const (
	MissingMissing      = "missing"
	MissingIgnore       = "ignore"
	MissingBreaching    = "breaching"
	MissingNotBreaching = "notBreaching"
)

// Limits of alarms.
const (
	MaxAlarms       = 5000
	MaxActions      = 5
	MaxTags         = 50
	historyRetained = 30 * 24 * time.Hour
)

// Tag is a resource tag.
type Tag struct {
	Key   string
	Value string
}

// Alarm is a metric alarm: its configuration and its state.
type Alarm struct {
	Name                    string
	ARN                     string
	Description             string
	ConfigUpdated           time.Time
	ActionsEnabled          bool
	OKActions               []string
	AlarmActions            []string
	InsufficientDataActions []string

	State             string
	StateReason       string
	StateReasonData   string
	StateUpdated      time.Time
	StateTransitioned time.Time

	// One metric …
	Metric            Metric
	Statistic         string
	ExtendedStatistic string
	Period            int64
	Unit              string
	// … or metric math.
	Metrics []MetricQuery

	EvaluationPeriods                int
	DatapointsToAlarm                int
	Threshold                        float64
	ComparisonOperator               string
	TreatMissingData                 string
	EvaluateLowSampleCountPercentile string

	Tags []Tag
}

// AlarmInput is a PutMetricAlarm request.
type AlarmInput struct {
	Name                             string
	Description                      string
	ActionsEnabled                   *bool
	OKActions                        []string
	AlarmActions                     []string
	InsufficientDataActions          []string
	Metric                           Metric
	Statistic                        string
	ExtendedStatistic                string
	Period                           int64
	Unit                             string
	Metrics                          []MetricQuery
	EvaluationPeriods                int
	DatapointsToAlarm                int
	Threshold                        *float64
	ComparisonOperator               string
	TreatMissingData                 string
	EvaluateLowSampleCountPercentile string
	ThresholdMetricID                string
	Tags                             []Tag
	// CreatedBy, when set, makes the call create-only for its maker
	// (CloudFormation's aws:cloudformation:* tags, which the API refuses in
	// Tags): a new alarm gets these tags besides Tags, and an existing
	// alarm of the name is replaced only when it has all of them (the
	// maker's own, from an attempt cut short by a crash); any other fails
	// with ErrAlreadyExists, untouched.
	CreatedBy []Tag
}

// alarmSet holds the alarms of a region, evaluates them and runs their
// actions.
type alarmSet struct {
	m *Monitor

	mu         sync.Mutex // guards the fields below
	alarms     map[string]*Alarm
	composites map[string]*CompositeAlarm
	lastEval   map[string]int64 // alarm → end of the newest period evaluated
	histSeq    uint32
	closed     bool
	paused     bool

	actions chan action
	stop    chan struct{}
	wg      sync.WaitGroup
}

// Keys: 'w' 'a' name → alarm (JSON); 'w' 'h' name 0 time(8) seq(4) → history item.
const (
	tagAlarm   = 'a'
	tagHistory = 'h'
)

func alarmKey(name string) []byte { return append([]byte{pfxWatch, tagAlarm}, name...) }

func openAlarms(m *Monitor) (*alarmSet, error) {
	s := &alarmSet{m: m, alarms: map[string]*Alarm{}, composites: map[string]*CompositeAlarm{}, lastEval: map[string]int64{}, actions: make(chan action, 1024), stop: make(chan struct{})}
	err := kv.Scan(m.o.KV, []byte{pfxWatch, tagAlarm}, []byte{pfxWatch, tagAlarm + 1}, func(k, v []byte) error {
		var a Alarm
		if err := json.Unmarshal(v, &a); err != nil {
			return fmt.Errorf("monitor: alarm %q: %w", k[2:], err)
		}
		if err := a.checkStored(string(k[2:])); err != nil {
			return fmt.Errorf("monitor: alarm %q: damaged record: %w", k[2:], err)
		}
		s.alarms[a.Name] = &a
		return nil
	})
	if err != nil {
		return nil, err
	}
	return s, s.loadComposites()
}

func (s *alarmSet) start() {
	// A state change saved before a crash that came before its parents'
	// evaluation: evaluate every composite alarm once.
	s.mu.Lock()
	now := s.m.o.Clock()
	for _, name := range slices.Sorted(maps.Keys(s.composites)) {
		s.reevaluateLocked(name, "", now, true)
	}
	s.mu.Unlock()
	s.wg.Add(2)
	go s.evaluateLoop()
	go s.actionLoop()
}

func (s *alarmSet) close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	close(s.stop)
	s.wg.Wait()
	return nil
}

// AlarmARN is the ARN of the alarm named name.
func (m *Monitor) AlarmARN(name string) string {
	return "arn:aws:cloudwatch:" + m.o.Region + ":" + m.o.AccountID + ":alarm:" + name
}

// save persists a (synced: alarms are configuration).
func (s *alarmSet) saveLocked(a *Alarm, b kv.Batch) {
	v, _ := json.Marshal(a) // plain data
	b.Set(alarmKey(a.Name), v)
}

// commit saves b (alarm changes and their history) durably; below the
// data disk's floor nothing is saved (ErrNoSpace): the API answers 503.
// The evaluator's changes (internal) are saved down to the guard's lower
// floor (below it, it logs and tries again at the next period).
func (s *alarmSet) commit(b kv.Batch, internal bool) error {
	if err := s.m.room(alarmBytes, internal); err != nil {
		return err
	}
	if err := b.Commit(true); err != nil {
		return fmt.Errorf("monitor: save alarms: %w", err)
	}
	return nil
}

func checkAlarmName(param, name string) error {
	if name == "" {
		return missing(param)
	}
	if len([]rune(name)) > 255 {
		return invalid("The value of %s must be at most 255 characters long.", param)
	}
	for _, r := range name {
		if unicode.IsControl(r) {
			return invalid("The value of %s must not contain control characters.", param)
		}
	}
	return nil
}

// checkActions validates a list of alarm actions: SNS topic ARNs of this
// region and account.
func (m *Monitor) checkActions(param string, arns []string) error {
	if len(arns) > MaxActions {
		return invalid("The collection %s must not have more than %d members.", param, MaxActions)
	}
	for i, a := range arns {
		p := param + ".member." + strconv.Itoa(i+1)
		parts := strings.SplitN(a, ":", 6)
		switch {
		case a == "" || len(a) > 1024:
			return invalid("The value of %s must be 1 to 1024 characters long.", p)
		case len(parts) != 6 || parts[0] != "arn" || !strings.HasPrefix(parts[1], "aws"):
			return invalid("The value %s for parameter %s is not an ARN.", clip(a), p)
		case parts[2] != "sns":
			return invalid("The action %s is not supported: regionfs alarms notify SNS topics (arn:aws:sns:%s:%s:TOPIC).", clip(a), m.o.Region, m.o.AccountID)
		case parts[3] != m.o.Region:
			return invalid("Invalid region %s specified. Only %s is supported.", clip(parts[3]), m.o.Region)
		case parts[4] != m.o.AccountID || parts[5] == "":
			return invalid("The value %s for parameter %s is not an SNS topic ARN of account %s.", clip(a), p, m.o.AccountID)
		}
	}
	return nil
}

func checkTags(param string, tags []Tag) error {
	if len(tags) > MaxTags {
		return invalid("The collection %s must not have more than %d members.", param, MaxTags)
	}
	for i, t := range tags {
		p := param + ".member." + strconv.Itoa(i+1)
		switch {
		case t.Key == "":
			return missing(p + ".Key")
		case len([]rune(t.Key)) > 128:
			return invalid("The value of %s.Key must be at most 128 characters long.", p)
		case len([]rune(t.Value)) > 256:
			return invalid("The value of %s.Value must be at most 256 characters long.", p)
		case strings.HasPrefix(strings.ToLower(t.Key), "aws:"):
			return invalid("The tag key %s is reserved: keys starting with aws: are AWS's.", clip(t.Key))
		}
	}
	return nil
}

// PutMetricAlarm creates an alarm, or replaces the whole configuration of
// an existing one (its state stays). A new alarm starts in
// INSUFFICIENT_DATA and is evaluated at once.
func (m *Monitor) PutMetricAlarm(ctx context.Context, in AlarmInput) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	a, err := m.checkAlarm(in)
	if err != nil {
		return err
	}
	s := m.alarms
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if s.composites[a.Name] != nil {
		return refusal.Errorf(ErrValidation, "The alarm %s is a composite alarm; a metric alarm cannot have its name.", clip(a.Name))
	}
	now := m.o.Clock()
	old := s.alarms[a.Name]
	if old != nil && len(in.CreatedBy) > 0 && !hasTags(old.Tags, in.CreatedBy) {
		return refusal.Errorf(ErrAlreadyExists, "An alarm named %s already exists.", clip(a.Name))
	}
	if old == nil && len(s.alarms)+len(s.composites) >= MaxAlarms {
		return refusal.Errorf(ErrLimitExceeded, "The maximum number of alarms (%d) in %s is reached.", MaxAlarms, m.o.Region)
	}
	a.ConfigUpdated = now
	summary := fmt.Sprintf("Alarm %q created", a.Name)
	typ := "Create"
	if old != nil {
		a.State, a.StateReason, a.StateReasonData = old.State, old.StateReason, old.StateReasonData
		a.StateUpdated, a.StateTransitioned = old.StateUpdated, old.StateTransitioned
		a.Tags = old.Tags
		summary = fmt.Sprintf("Alarm %q updated", a.Name)
		typ = "Update"
	} else {
		a.State, a.StateReason = StateInsufficientData, "Unchecked: Initial alarm creation"
		a.StateUpdated, a.StateTransitioned = now, now
		a.Tags = append(slices.Clip(in.Tags), in.CreatedBy...)
	}
	b := m.o.KV.NewBatch()
	defer b.Close()
	s.saveLocked(a, b)
	cfg, _ := json.Marshal(alarmJSON(a, m))
	data, _ := json.Marshal(map[string]any{"version": "1.0", "type": typ, "createdAlarm": json.RawMessage(cfg)})
	s.historyLocked(b, HistoryItem{AlarmName: a.Name, Timestamp: now, Type: HistoryConfigurationUpdate, Summary: summary, Data: string(data)})
	if err := s.commit(b, false); err != nil {
		return err
	}
	s.alarms[a.Name] = a
	delete(s.lastEval, a.Name) // evaluate the new configuration at once
	return nil
}

// checkAlarmCommon validates what metric and composite alarms both have:
// the name, the description, the three action lists and the tags.
func (m *Monitor) checkAlarmCommon(name, description string, ok, alarm, insufficient []string, tags []Tag) error {
	if err := checkAlarmName("AlarmName", name); err != nil {
		return err
	}
	if len([]rune(description)) > 1024 {
		return invalid("The value of AlarmDescription must be at most 1024 characters long.")
	}
	for _, l := range []struct {
		name string
		arns []string
	}{{"OKActions", ok}, {"AlarmActions", alarm}, {"InsufficientDataActions", insufficient}} {
		if err := m.checkActions(l.name, l.arns); err != nil {
			return err
		}
	}
	return checkTags("Tags", tags)
}

// checkAlarm validates a PutMetricAlarm request and builds the alarm's
// configuration.
func (m *Monitor) checkAlarm(in AlarmInput) (*Alarm, error) {
	if err := m.checkAlarmCommon(in.Name, in.Description, in.OKActions, in.AlarmActions, in.InsufficientDataActions, in.Tags); err != nil {
		return nil, err
	}
	a := &Alarm{
		Name: in.Name, ARN: m.AlarmARN(in.Name), Description: in.Description, ActionsEnabled: in.ActionsEnabled == nil || *in.ActionsEnabled,
		OKActions: in.OKActions, AlarmActions: in.AlarmActions, InsufficientDataActions: in.InsufficientDataActions,
		EvaluationPeriods: in.EvaluationPeriods, DatapointsToAlarm: in.DatapointsToAlarm, ComparisonOperator: in.ComparisonOperator,
		TreatMissingData: in.TreatMissingData, EvaluateLowSampleCountPercentile: in.EvaluateLowSampleCountPercentile,
	}
	single := in.Metric.Name != "" || in.Metric.Namespace != "" || in.Statistic != "" || in.ExtendedStatistic != "" || in.Period != 0 || len(in.Metric.Dimensions) > 0 || in.Unit != ""
	switch {
	case single && len(in.Metrics) > 0:
		return nil, combination("The parameter Metrics cannot be used with MetricName, Namespace, Statistic, ExtendedStatistic, Dimensions, Period or Unit.")
	case len(in.Metrics) > 0:
		if err := checkQueries("Metrics", in.Metrics); err != nil {
			return nil, err
		}
		returning := 0
		for _, q := range in.Metrics {
			if q.returns() {
				returning++
				a.Period = q.Period
				if q.Stat != nil {
					a.Period = q.Stat.Period
				}
			}
		}
		if returning != 1 {
			return nil, invalid("Exactly one query in Metrics must return data (ReturnData true); %d do.", returning)
		}
		if a.Period == 0 {
			for _, q := range in.Metrics {
				if q.Stat != nil {
					a.Period = max(a.Period, q.Stat.Period)
				}
			}
		}
		if a.Period == 0 {
			return nil, missing("Metrics.member.N.Period (of the expression that returns data)")
		}
		a.Metrics = in.Metrics
	default:
		if in.Metric.Name == "" {
			return nil, missing("MetricName")
		}
		if in.Metric.Namespace == "" {
			return nil, missing("Namespace")
		}
		if err := checkMetric("", in.Metric); err != nil {
			return nil, err
		}
		switch {
		case in.Statistic != "" && in.ExtendedStatistic != "":
			return nil, combination("The parameters Statistic and ExtendedStatistic are mutually exclusive and you have specified both.")
		case in.Statistic == "" && in.ExtendedStatistic == "":
			return nil, missing("Statistic or ExtendedStatistic")
		case in.Statistic != "" && !isStandard(in.Statistic):
			return nil, invalid("The value %s for parameter Statistic is not valid: it must be one of %s.", clip(in.Statistic), strings.Join(Statistics, ", "))
		case in.ExtendedStatistic != "":
			if _, ok := parsePercentile(in.ExtendedStatistic); !ok {
				return nil, invalid("The value %s for parameter ExtendedStatistic is not a percentile (p0.0 to p100).", clip(in.ExtendedStatistic))
			}
		}
		if in.Period == 0 {
			return nil, missing("Period")
		}
		if err := checkUnit("Unit", in.Unit); err != nil {
			return nil, err
		}
		a.Metric, a.Statistic, a.ExtendedStatistic, a.Period, a.Unit = in.Metric.canonical(), in.Statistic, in.ExtendedStatistic, in.Period, in.Unit
	}
	if a.Period != 10 && a.Period != 30 && (a.Period < 60 || a.Period%60 != 0) {
		return nil, invalid("The value %d for parameter Period is not valid: it must be 10, 30 or a multiple of 60.", a.Period)
	}
	switch {
	case in.EvaluationPeriods == 0:
		return nil, missing("EvaluationPeriods")
	case in.EvaluationPeriods < 1:
		return nil, invalid("The value %d for parameter EvaluationPeriods must be at least 1.", in.EvaluationPeriods)
	}
	limit := int64(24 * 3600)
	if a.Period >= 3600 {
		limit = 7 * 24 * 3600
	}
	if a.Period*int64(in.EvaluationPeriods) > limit {
		return nil, invalid("The evaluation range (Period × EvaluationPeriods = %d seconds) must not exceed %d seconds.", a.Period*int64(in.EvaluationPeriods), limit)
	}
	if a.DatapointsToAlarm == 0 {
		a.DatapointsToAlarm = a.EvaluationPeriods
	}
	if a.DatapointsToAlarm < 1 || a.DatapointsToAlarm > a.EvaluationPeriods {
		return nil, invalid("The value %d for parameter DatapointsToAlarm must be between 1 and EvaluationPeriods (%d).", in.DatapointsToAlarm, a.EvaluationPeriods)
	}
	switch a.ComparisonOperator {
	case "":
		return nil, missing("ComparisonOperator")
	case GreaterOrEqual, Greater, Less, LessOrEqual:
	default:
		for _, b := range bandOperators {
			if a.ComparisonOperator == b {
				return nil, invalid("The comparison operator %s needs an anomaly detection band (ThresholdMetricId), which regionfs does not support.", b)
			}
		}
		return nil, invalid("The value %s for parameter ComparisonOperator is not valid: it must be one of %s, %s, %s, %s.", clip(a.ComparisonOperator), GreaterOrEqual, Greater, Less, LessOrEqual)
	}
	if in.ThresholdMetricID != "" {
		return nil, invalid("ThresholdMetricId (anomaly detection bands) is not supported by regionfs.")
	}
	if in.Threshold == nil {
		return nil, missing("Threshold")
	}
	if err := checkValue("Threshold", *in.Threshold); err != nil {
		return nil, err
	}
	a.Threshold = *in.Threshold
	switch a.TreatMissingData {
	case "":
		a.TreatMissingData = MissingMissing
	case MissingMissing, MissingIgnore, MissingBreaching, MissingNotBreaching:
	default:
		return nil, invalid("The value %s for parameter TreatMissingData is not valid: it must be missing, ignore, breaching or notBreaching.", clip(a.TreatMissingData))
	}
	switch a.EvaluateLowSampleCountPercentile {
	case "":
	case "evaluate", "ignore":
		if a.ExtendedStatistic == "" {
			return nil, combination("EvaluateLowSampleCountPercentile applies only to alarms on a percentile (ExtendedStatistic).")
		}
	default:
		return nil, invalid("The value %s for parameter EvaluateLowSampleCountPercentile is not valid: it must be evaluate or ignore.", clip(a.EvaluateLowSampleCountPercentile))
	}
	return a, nil
}

// AlarmFilter is a DescribeAlarms request.
type AlarmFilter struct {
	Names               []string
	NamePrefix          string
	Types               []string
	ChildrenOfAlarmName string
	ParentsOfAlarmName  string
	State               string
	ActionPrefix        string
	MaxRecords          int
	NextToken           string
}

// AlarmList is a page of DescribeAlarms: metric and composite alarms,
// each list sorted by name, and the token of the next page.
type AlarmList struct {
	Metric    []Alarm
	Composite []CompositeAlarm
	NextToken string
}

// DescribeAlarms lists alarms, MaxRecords (default 50) at a time, in name
// order across both types. Without AlarmTypes only metric alarms are
// listed, as on CloudWatch; ChildrenOfAlarmName and ParentsOfAlarmName
// list both types (only names, ARNs and states).
func (m *Monitor) DescribeAlarms(ctx context.Context, f AlarmFilter) (AlarmList, error) {
	var none AlarmList
	if err := ctx.Err(); err != nil {
		return none, err
	}
	switch {
	case len(f.Names) > 100:
		return none, invalid("The collection AlarmNames must not have more than 100 members.")
	case len(f.Names) > 0 && f.NamePrefix != "":
		return none, combination("The parameters AlarmNames and AlarmNamePrefix are mutually exclusive and you have specified both.")
	case f.ChildrenOfAlarmName != "" && f.ParentsOfAlarmName != "":
		return none, combination("The parameters ChildrenOfAlarmName and ParentsOfAlarmName are mutually exclusive and you have specified both.")
	case (f.ChildrenOfAlarmName != "" || f.ParentsOfAlarmName != "") && (len(f.Names) > 0 || f.NamePrefix != "" || f.State != "" || f.ActionPrefix != ""):
		return none, combination("ChildrenOfAlarmName and ParentsOfAlarmName cannot be combined with other filters.")
	case len(f.NamePrefix) > 255:
		return none, invalid("The value of AlarmNamePrefix must be at most 255 characters long.")
	case len(f.ActionPrefix) > 1024:
		return none, invalid("The value of ActionPrefix must be at most 1024 characters long.")
	case len(f.ChildrenOfAlarmName) > 255 || len(f.ParentsOfAlarmName) > 255:
		return none, invalid("The value of ChildrenOfAlarmName and ParentsOfAlarmName must be at most 255 characters long.")
	}
	switch f.State {
	case "", StateOK, StateAlarm, StateInsufficientData:
	default:
		return none, invalid("The value %s for parameter StateValue is not valid: it must be OK, ALARM or INSUFFICIENT_DATA.", clip(f.State))
	}
	wantMetric, wantComposite, err := alarmTypes(f.Types)
	if err != nil {
		return none, err
	}
	related := f.ChildrenOfAlarmName != "" || f.ParentsOfAlarmName != ""
	if related && len(f.Types) == 0 {
		wantMetric, wantComposite = true, true
	}
	if f.MaxRecords == 0 {
		f.MaxRecords = 50
	}
	if f.MaxRecords < 1 || f.MaxRecords > 100 {
		return none, invalid("The value %d for parameter MaxRecords must be between 1 and 100.", f.MaxRecords)
	}
	after, err := decodeToken(tokenAlarms, f.NextToken)
	if err != nil {
		return none, err
	}
	names := map[string]bool{}
	for _, n := range f.Names {
		names[n] = true
	}
	s := m.alarms
	s.mu.Lock()
	if related {
		// Only these alarms are candidates.
		names = map[string]bool{}
		if c := s.composites[f.ChildrenOfAlarmName]; c != nil {
			for _, n := range s.childrenLocked(c) {
				names[n] = true
			}
		}
		if f.ParentsOfAlarmName != "" {
			for _, p := range s.parentsLocked(f.ParentsOfAlarmName) {
				names[p.Name] = true
			}
		}
	}
	keep := func(name, state string, actions ...[]string) bool {
		return (!related && len(names) == 0 || names[name]) && strings.HasPrefix(name, f.NamePrefix) && (f.State == "" || state == f.State) &&
			(f.ActionPrefix == "" || anyPrefix(f.ActionPrefix, actions...)) && (after == "" || name > after)
	}
	type entry struct {
		name string
		a    *Alarm
		c    *CompositeAlarm
	}
	var all []entry
	if wantMetric {
		for _, a := range s.alarms {
			if keep(a.Name, a.State, a.OKActions, a.AlarmActions, a.InsufficientDataActions) {
				all = append(all, entry{name: a.Name, a: a})
			}
		}
	}
	if wantComposite {
		for _, c := range s.composites {
			if keep(c.Name, c.State, c.OKActions, c.AlarmActions, c.InsufficientDataActions) {
				all = append(all, entry{name: c.Name, c: c})
			}
		}
	}
	sort.Slice(all, func(i, j int) bool { return all[i].name < all[j].name })
	out := AlarmList{Metric: []Alarm{}, Composite: []CompositeAlarm{}}
	if len(all) > f.MaxRecords {
		all = all[:f.MaxRecords]
		out.NextToken = encodeToken(tokenAlarms, all[len(all)-1].name)
	}
	for _, e := range all {
		switch {
		case e.a != nil && related:
			out.Metric = append(out.Metric, Alarm{Name: e.a.Name, ARN: e.a.ARN, State: e.a.State, StateUpdated: e.a.StateUpdated})
		case e.a != nil:
			out.Metric = append(out.Metric, *e.a)
		case related:
			out.Composite = append(out.Composite, CompositeAlarm{Name: e.c.Name, ARN: e.c.ARN, State: e.c.State, StateUpdated: e.c.StateUpdated})
		default:
			out.Composite = append(out.Composite, *e.c)
		}
	}
	s.mu.Unlock()
	return out, nil
}

func anyPrefix(prefix string, lists ...[]string) bool {
	for _, l := range lists {
		for _, a := range l {
			if strings.HasPrefix(a, prefix) {
				return true
			}
		}
	}
	return false
}

// MetricAlarmFilter is a DescribeAlarmsForMetric request.
type MetricAlarmFilter struct {
	Metric            Metric
	Statistic         string
	ExtendedStatistic string
	Period            int64
	Unit              string
}

// DescribeAlarmsForMetric lists the alarms on one metric.
func (m *Monitor) DescribeAlarmsForMetric(ctx context.Context, f MetricAlarmFilter) ([]Alarm, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := checkMetric("", f.Metric); err != nil {
		return nil, err
	}
	if f.Statistic != "" && !isStandard(f.Statistic) {
		return nil, invalid("The value %s for parameter Statistic is not valid: it must be one of %s.", clip(f.Statistic), strings.Join(Statistics, ", "))
	}
	if f.ExtendedStatistic != "" {
		if _, ok := parsePercentile(f.ExtendedStatistic); !ok {
			return nil, invalid("The value %s for parameter ExtendedStatistic is not a percentile.", clip(f.ExtendedStatistic))
		}
	}
	if f.Period != 0 {
		if err := checkPeriod("Period", f.Period); err != nil {
			return nil, err
		}
	}
	if err := checkUnit("Unit", f.Unit); err != nil {
		return nil, err
	}
	key := f.Metric.canonical().key()
	s := m.alarms
	s.mu.Lock()
	var out []Alarm
	for _, a := range s.alarms {
		if a.Metrics != nil || a.Metric.key() != key || (f.Statistic != "" && a.Statistic != f.Statistic) ||
			(f.ExtendedStatistic != "" && a.ExtendedStatistic != f.ExtendedStatistic) || (f.Period != 0 && a.Period != f.Period) || (f.Unit != "" && a.Unit != f.Unit) {
			continue
		}
		out = append(out, *a)
	}
	s.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	if out == nil {
		out = []Alarm{}
	}
	return out, nil
}

// DeleteAlarms deletes alarms, at most one of them a composite alarm;
// when one does not exist, or one is the child of a composite alarm that
// stays, none is deleted.
func (m *Monitor) DeleteAlarms(ctx context.Context, names []string) error {
	if err := checkAlarmNames(ctx, names); err != nil {
		return err
	}
	s := m.alarms
	s.mu.Lock()
	defer s.mu.Unlock()
	var absent []string
	composites := 0
	deleting := map[string]bool{}
	for _, n := range names {
		deleting[n] = true
		switch {
		case s.composites[n] != nil:
			composites++
		case s.alarms[n] == nil:
			absent = append(absent, n)
		}
	}
	if len(absent) > 0 {
		return refusal.Errorf(ErrResourceNotFound, "%d alarm(s) not found: [%s]", len(absent), clip(strings.Join(absent, ", ")))
	}
	if composites > 1 {
		return refusal.Errorf(ErrValidation, "A DeleteAlarms request can delete at most one composite alarm; it names %d.", composites)
	}
	for _, n := range names {
		for _, p := range s.parentsLocked(n) {
			if !deleting[p.Name] || p.Name == n {
				return refusal.Errorf(ErrValidation, "Cannot delete %s as there are composite alarm(s) depending on it.", clip(n))
			}
		}
	}
	b := m.o.KV.NewBatch()
	defer b.Close()
	now := m.o.Clock()
	for _, n := range names {
		typ := ""
		if s.composites[n] != nil {
			b.Delete(compositeKey(n))
			typ = TypeComposite
		} else {
			b.Delete(alarmKey(n))
		}
		s.historyLocked(b, HistoryItem{AlarmName: n, AlarmType: typ, Timestamp: now, Type: HistoryConfigurationUpdate, Summary: fmt.Sprintf("Alarm %q deleted", n),
			Data: `{"version":"1.0","type":"Delete"}`})
	}
	if err := s.commit(b, false); err != nil {
		return err
	}
	for _, n := range names {
		delete(s.alarms, n)
		delete(s.composites, n)
		delete(s.lastEval, n)
	}
	return nil
}

// SetAlarmActions enables or disables the actions of alarms (names that
// do not exist are ignored, as on CloudWatch).
func (m *Monitor) SetAlarmActions(ctx context.Context, names []string, enabled bool) error {
	if err := checkAlarmNames(ctx, names); err != nil {
		return err
	}
	s := m.alarms
	s.mu.Lock()
	defer s.mu.Unlock()
	b := m.o.KV.NewBatch()
	defer b.Close()
	var changed []*Alarm
	var changedComposites []*CompositeAlarm
	for _, n := range names {
		if a := s.alarms[n]; a != nil && a.ActionsEnabled != enabled {
			c := *a
			c.ActionsEnabled = enabled
			s.saveLocked(&c, b)
			changed = append(changed, &c)
		}
		if a := s.composites[n]; a != nil && a.ActionsEnabled != enabled {
			c := *a
			c.ActionsEnabled = enabled
			s.saveCompositeLocked(&c, b)
			changedComposites = append(changedComposites, &c)
		}
	}
	if b.Empty() {
		return nil
	}
	if err := s.commit(b, false); err != nil {
		return err
	}
	for _, a := range changed {
		s.alarms[a.Name] = a
	}
	for _, c := range changedComposites {
		s.composites[c.Name] = c
	}
	return nil
}

// SetAlarmState sets an alarm's state until its next evaluation, once the
// period running now has ended (as CloudWatch evaluates each period once):
// a set state is not undone a moment later by the evaluation of a period
// that ended before it, such as a new alarm's first. A change runs the new
// state's actions.
func (m *Monitor) SetAlarmState(ctx context.Context, name, state, reason, reasonData string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := checkAlarmName("AlarmName", name); err != nil {
		return err
	}
	switch state {
	case "":
		return missing("StateValue")
	case StateOK, StateAlarm, StateInsufficientData:
	default:
		return invalid("The value %s for parameter StateValue is not valid: it must be OK, ALARM or INSUFFICIENT_DATA.", clip(state))
	}
	switch {
	case reason == "":
		return missing("StateReason")
	case len([]rune(reason)) > 1023:
		return invalid("The value of StateReason must be at most 1023 characters long.")
	case len(reasonData) > 4000:
		return invalid("The value of StateReasonData must be at most 4000 characters long.")
	case reasonData != "" && !json.Valid([]byte(reasonData)):
		return refusal.Errorf(ErrInvalidFormat, "The StateReasonData is not valid JSON.")
	}
	s := m.alarms
	s.mu.Lock()
	defer s.mu.Unlock()
	now := m.o.Clock()
	if c := s.composites[name]; c != nil {
		// It stays in the state set until a child changes state or its
		// configuration is updated (CloudWatch's rule).
		if state == c.State {
			return nil
		}
		if err := s.transitionCompositeLocked(c, state, reason, reasonData, now, false); err != nil {
			return err
		}
		s.reevaluateLocked(name, name, now, false)
		return nil
	}
	a := s.alarms[name]
	if a == nil {
		return refusal.Errorf(ErrResourceNotFound, "Alarm %s not found", clip(name))
	}
	if err := s.transitionLocked(a, state, reason, reasonData, now, false); err != nil {
		return err
	}
	ready := now.Add(-m.o.IngestDelay).Unix()
	s.lastEval[name] = max(s.lastEval[name], ready-mod(ready, a.Period))
	return nil
}

// findAlarmARNLocked returns the name of the alarm (metric or composite)
// an ARN names (tag operations).
func (m *Monitor) findAlarmARNLocked(arn string) (string, error) {
	if arn == "" {
		return "", missing("ResourceARN")
	}
	prefix := "arn:aws:cloudwatch:" + m.o.Region + ":" + m.o.AccountID + ":alarm:"
	name, ok := strings.CutPrefix(arn, prefix)
	if !ok || name == "" {
		if strings.HasPrefix(arn, "arn:aws:cloudwatch:") {
			return "", refusal.Errorf(ErrTagResourceNotFound, "The resource %s does not exist in %s.", clip(arn), m.o.Region)
		}
		return "", invalid("The value %s for parameter ResourceARN is not a CloudWatch alarm ARN.", clip(arn))
	}
	if !m.alarms.existsLocked(name) {
		return "", refusal.Errorf(ErrTagResourceNotFound, "The resource %s does not exist.", clip(arn))
	}
	return name, nil
}

// TagResource adds or replaces tags of an alarm.
func (m *Monitor) TagResource(ctx context.Context, arn string, tags []Tag) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(tags) == 0 {
		return missing("Tags")
	}
	if err := checkTags("Tags", tags); err != nil {
		return err
	}
	return m.updateTags(arn, func(cur []Tag) ([]Tag, error) {
		out := append([]Tag(nil), cur...)
		for _, t := range tags {
			replaced := false
			for i := range out {
				if out[i].Key == t.Key {
					out[i].Value, replaced = t.Value, true
				}
			}
			if !replaced {
				out = append(out, t)
			}
		}
		if len(out) > MaxTags {
			return nil, invalid("An alarm has at most %d tags.", MaxTags)
		}
		return out, nil
	})
}

// UntagResource removes tags of an alarm (absent keys are ignored).
func (m *Monitor) UntagResource(ctx context.Context, arn string, keys []string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(keys) == 0 {
		return missing("TagKeys")
	}
	for i, k := range keys {
		if k == "" || len([]rune(k)) > 128 {
			return invalid("The value of TagKeys.member.%d must be 1 to 128 characters long.", i+1)
		}
		if strings.HasPrefix(strings.ToLower(k), "aws:") {
			return invalid("The tag key %s is reserved: keys starting with aws: are AWS's.", clip(k))
		}
	}
	return m.updateTags(arn, func(cur []Tag) ([]Tag, error) {
		var out []Tag
		for _, t := range cur {
			keep := true
			for _, k := range keys {
				if t.Key == k {
					keep = false
				}
			}
			if keep {
				out = append(out, t)
			}
		}
		return out, nil
	})
}

func (m *Monitor) updateTags(arn string, f func([]Tag) ([]Tag, error)) error {
	s := m.alarms
	s.mu.Lock()
	defer s.mu.Unlock()
	name, err := m.findAlarmARNLocked(arn)
	if err != nil {
		return err
	}
	b := m.o.KV.NewBatch()
	defer b.Close()
	if a := s.alarms[name]; a != nil {
		tags, err := f(a.Tags)
		if err != nil {
			return err
		}
		c := *a
		c.Tags = tags
		s.saveLocked(&c, b)
		if err := s.commit(b, false); err != nil {
			return err
		}
		s.alarms[c.Name] = &c
		return nil
	}
	a := s.composites[name]
	tags, err := f(a.Tags)
	if err != nil {
		return err
	}
	c := *a
	c.Tags = tags
	s.saveCompositeLocked(&c, b)
	if err := s.commit(b, false); err != nil {
		return err
	}
	s.composites[c.Name] = &c
	return nil
}

// hasTags tells whether have holds every tag of want.
func hasTags(have, want []Tag) bool {
	for _, w := range want {
		if !slices.Contains(have, w) {
			return false
		}
	}
	return true
}

// ListTagsForResource returns an alarm's tags.
func (m *Monitor) ListTagsForResource(ctx context.Context, arn string) ([]Tag, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s := m.alarms
	s.mu.Lock()
	defer s.mu.Unlock()
	name, err := m.findAlarmARNLocked(arn)
	if err != nil {
		return nil, err
	}
	if a := s.alarms[name]; a != nil {
		return append([]Tag{}, a.Tags...), nil
	}
	return append([]Tag{}, s.composites[name].Tags...), nil
}

// checkAlarmNames checks the AlarmNames of an operation on named alarms
// (1 to 100 of them).
func checkAlarmNames(ctx context.Context, names []string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(names) == 0 {
		return missing("AlarmNames")
	}
	if len(names) > 100 {
		return invalid("The collection AlarmNames must not have more than 100 members.")
	}
	for i, n := range names {
		if len(n) < 1 || len(n) > 255 {
			return invalid("The value of AlarmNames.member.%d must be 1 to 255 characters long.", i+1)
		}
	}
	return nil
}

// alarmTypes checks AlarmTypes and reports which types they take in (no
// types: metric alarms only, as on CloudWatch).
func alarmTypes(types []string) (metric, composite bool, err error) {
	metric = len(types) == 0
	for _, t := range types {
		switch t {
		case TypeMetric:
			metric = true
		case TypeComposite:
			composite = true
		default:
			return false, false, invalid("The value %s for parameter AlarmTypes is not valid: it must be MetricAlarm or CompositeAlarm.", clip(t))
		}
	}
	return metric, composite, nil
}
