package monitor

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Notifier runs alarm actions: it publishes a message to an SNS topic.
type Notifier interface {
	Notify(ctx context.Context, topicARN, subject, message string) (messageID string, err error)
}

// action is an alarm action waiting to run.
type action struct {
	alarm, alarmType, arn, subject, message string
}

func (s *alarmSet) evaluateLoop() {
	defer s.wg.Done()
	t := time.NewTicker(s.m.o.Tick)
	defer t.Stop()
	trim := time.NewTicker(time.Hour)
	defer trim.Stop()
	s.trimHistory(s.m.o.Clock())
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			s.evaluateDue(s.m.o.Clock())
		case <-trim.C:
			s.trimHistory(s.m.o.Clock())
		}
	}
}

// evaluateDue evaluates every alarm one of whose periods has ended (and
// been ingested) since it was last evaluated.
func (s *alarmSet) evaluateDue(now time.Time) {
	type due struct {
		a   Alarm
		end int64
	}
	ready := now.Add(-s.m.o.IngestDelay).Unix()
	s.mu.Lock()
	if s.paused {
		s.mu.Unlock()
		return
	}
	s.releaseDueLocked(now)
	var list []due
	for name, a := range s.alarms {
		end := ready - mod(ready, a.Period)
		if end > s.lastEval[name] {
			list = append(list, due{*a, end})
		}
	}
	s.mu.Unlock()
	for _, d := range list {
		ev := s.m.evaluate(&d.a, d.end, now)
		s.mu.Lock()
		a := s.alarms[d.a.Name]
		// Unless the alarm changed meanwhile: its configuration, or its
		// state set for this period (SetAlarmState).
		if a != nil && a.ConfigUpdated.Equal(d.a.ConfigUpdated) && !s.closed && s.lastEval[a.Name] < d.end {
			s.lastEval[a.Name] = d.end
			if ev.state != "" && ev.state != a.State {
				if err := s.transitionLocked(a, ev.state, ev.reason, ev.data, now, true); err != nil {
					s.m.log.Error("alarm transition", "alarm", a.Name, "err", err)
				}
			}
		}
		s.mu.Unlock()
	}
}

// evaluation is an alarm's computed state; an empty state keeps the
// current one.
type evaluation struct {
	state, reason, data string
}

type point struct {
	t  int64
	v  float64
	ok bool
}

// evaluate computes the state of a over the EvaluationPeriods periods
// ending at end (Unix seconds), CloudWatch's way: M out of N datapoints
// breaching is ALARM; missing datapoints count as TreatMissingData says.
func (m *Monitor) evaluate(a *Alarm, end int64, now time.Time) evaluation {
	n := a.EvaluationPeriods
	start := end - int64(n)*a.Period
	pts, err := m.alarmPoints(a, start, end)
	if err != nil {
		m.log.Warn("alarm evaluation", "alarm", a.Name, "err", err)
		return evaluation{}
	}
	breach := func(v float64) bool {
		switch a.ComparisonOperator {
		case GreaterOrEqual:
			return v >= a.Threshold
		case Greater:
			return v > a.Threshold
		case Less:
			return v < a.Threshold
		case LessOrEqual:
			return v <= a.Threshold
		}
		return false
	}
	present, breaching, missing := 0, 0, 0
	for _, p := range pts {
		switch {
		case !p.ok:
			missing++
		case breach(p.v):
			present++
			breaching++
		default:
			present++
		}
	}
	mBreaching := breaching
	switch a.TreatMissingData {
	case MissingBreaching:
		mBreaching += missing
	}
	data := m.reasonData(a, pts, start, now)
	var ev evaluation
	switch {
	case mBreaching >= a.DatapointsToAlarm:
		ev.state = StateAlarm
		switch {
		case present == 0:
			ev.reason = fmt.Sprintf("Threshold Crossed: no datapoints were received for %d period%s and %d missing datapoint%s %s treated as [Breaching].",
				n, plural(n), missing, plural(missing), wereWas(missing))
		case breaching == 0:
			ev.reason = fmt.Sprintf("Threshold Crossed: %d of the last %d datapoints %s missing and treated as [Breaching] (minimum %d datapoint%s for OK -> ALARM transition).",
				missing, n, wereWas(missing), a.DatapointsToAlarm, plural(a.DatapointsToAlarm))
		default:
			ev.reason = m.crossedReason(a, pts, true, breaching)
			if missing > 0 && a.TreatMissingData == MissingBreaching {
				ev.reason = strings.TrimSuffix(ev.reason, ".") + fmt.Sprintf(" (%d missing datapoint%s %s treated as [Breaching]).", missing, plural(missing), wereWas(missing))
			}
		}
	case present == 0 && a.TreatMissingData == MissingNotBreaching:
		ev.state = StateOK
		ev.reason = fmt.Sprintf("Threshold Crossed: no datapoints were received for %d period%s and %d missing datapoint%s %s treated as [NonBreaching].",
			n, plural(n), missing, plural(missing), wereWas(missing))
	case present == 0 && a.TreatMissingData == MissingIgnore:
		return evaluation{} // keep the state
	case present == 0:
		ev.state = StateInsufficientData
		ev.reason = fmt.Sprintf("Insufficient Data: %d datapoint%s %s unknown.", n, plural(n), wereWas(n))
	default:
		ev.state = StateOK
		ev.reason = m.crossedReason(a, pts, false, present-breaching)
	}
	ev.data = data
	return ev
}

// alarmPoints reads the alarm's datapoints of each period in [start, end).
func (m *Monitor) alarmPoints(a *Alarm, start, end int64) ([]point, error) {
	st, en := time.Unix(start, 0), time.Unix(end, 0)
	var s *tseries
	if a.Metrics != nil {
		all, err := m.evalQueries("Metrics", a.Metrics, st, en)
		if err != nil {
			return nil, err
		}
		for _, q := range a.Metrics {
			if list := all[q.ID]; q.returns() && len(list) == 1 {
				s = list[0]
			}
		}
	} else {
		stat := a.Statistic
		if stat == "" {
			stat = a.ExtendedStatistic
		}
		var err error
		s, err = m.statSeries("Alarm", &MetricQuery{ID: "m1", Stat: &MetricStat{Metric: a.Metric, Period: a.Period, Stat: stat, Unit: a.Unit}}, st, en)
		if err != nil {
			return nil, err
		}
	}
	pts := make([]point, a.EvaluationPeriods)
	for i := range pts {
		pts[i].t = start + int64(i)*a.Period
	}
	if s != nil {
		for i, t := range s.ts {
			if k := (t - start) / a.Period; t >= start && k < int64(len(pts)) {
				pts[k].v, pts[k].ok = s.vals[i], true
			}
		}
	}
	return pts, nil
}

var opWords = map[string]string{GreaterOrEqual: "greater than or equal to", Greater: "greater than", Less: "less than", LessOrEqual: "less than or equal to"}

// crossedReason is CloudWatch's "Threshold Crossed" reason: the recent
// datapoints, newest first.
func (m *Monitor) crossedReason(a *Alarm, pts []point, alarm bool, count int) string {
	var shown []string
	total := 0
	for i := len(pts) - 1; i >= 0; i-- {
		if pts[i].ok {
			total++
			shown = append(shown, formatDouble(pts[i].v)+" ("+time.Unix(pts[i].t, 0).UTC().Format("02/01/06 15:04:05")+")")
		}
	}
	word := opWords[a.ComparisonOperator]
	if !alarm {
		word = "not " + word
	}
	transition, need := "OK -> ALARM", a.DatapointsToAlarm
	if !alarm {
		transition, need = "ALARM -> OK", a.EvaluationPeriods-a.DatapointsToAlarm+1
	}
	return fmt.Sprintf("Threshold Crossed: %d out of the last %d datapoint%s [%s] %s %s the threshold (%s) (minimum %d datapoint%s for %s transition).",
		count, total, plural(total), strings.Join(shown, ", "), wereWas(count), word, formatDouble(a.Threshold), need, plural(need), transition)
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

func wereWas(n int) string {
	if n == 1 {
		return "was"
	}
	return "were"
}

// formatDouble writes a double as CloudWatch's messages do (25.0, 0.5).
func formatDouble(v float64) string {
	s := strconv.FormatFloat(v, 'f', -1, 64)
	if math.Abs(v) >= 1e15 || (v != 0 && math.Abs(v) < 1e-4) {
		s = strconv.FormatFloat(v, 'E', -1, 64)
	}
	if !strings.ContainsAny(s, ".E") {
		s += ".0"
	}
	return s
}

// timeFormatAlarm is how alarm messages write times.
const timeFormatAlarm = "2006-01-02T15:04:05.000-0700"

func (m *Monitor) reasonData(a *Alarm, pts []point, start int64, now time.Time) string {
	type evaluated struct {
		Timestamp string  `json:"timestamp"`
		Value     float64 `json:"value"`
	}
	d := struct {
		Version             string      `json:"version"`
		QueryDate           string      `json:"queryDate"`
		StartDate           string      `json:"startDate"`
		Statistic           string      `json:"statistic,omitempty"`
		Period              int64       `json:"period"`
		RecentDatapoints    []float64   `json:"recentDatapoints"`
		Threshold           float64     `json:"threshold"`
		EvaluatedDatapoints []evaluated `json:"evaluatedDatapoints,omitempty"`
	}{Version: "1.0", QueryDate: now.UTC().Format(timeFormatAlarm), StartDate: time.Unix(start, 0).UTC().Format(timeFormatAlarm),
		Statistic: firstNonEmpty(a.Statistic, a.ExtendedStatistic), Period: a.Period, RecentDatapoints: []float64{}, Threshold: a.Threshold}
	for i := len(pts) - 1; i >= 0; i-- {
		if pts[i].ok {
			d.RecentDatapoints = append(d.RecentDatapoints, pts[i].v)
			d.EvaluatedDatapoints = append(d.EvaluatedDatapoints, evaluated{time.Unix(pts[i].t, 0).UTC().Format(timeFormatAlarm), pts[i].v})
		}
	}
	b, _ := json.Marshal(d)
	return string(b)
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// transitionLocked moves a to state: the change is saved with its history
// item, then the new state's actions are queued (when enabled). internal:
// the evaluator's change, saved below the data disk's floor too (commit).
func (s *alarmSet) transitionLocked(a *Alarm, state, reason, data string, now time.Time, internal bool) error {
	if state == a.State {
		return nil
	}
	c := *a
	old := a.State
	oldReason := a.StateReason
	c.State, c.StateReason, c.StateReasonData, c.StateUpdated, c.StateTransitioned = state, reason, data, now, now
	b := s.m.o.KV.NewBatch()
	defer b.Close()
	s.saveLocked(&c, b)
	hd := map[string]any{
		"version":  "1.0",
		"oldState": map[string]any{"stateValue": old, "stateReason": oldReason},
		"newState": map[string]any{"stateValue": state, "stateReason": reason},
	}
	if data != "" && json.Valid([]byte(data)) {
		hd["newState"].(map[string]any)["stateReasonData"] = json.RawMessage(data)
	}
	hdata, _ := json.Marshal(hd)
	s.historyLocked(b, HistoryItem{AlarmName: c.Name, Timestamp: now, Type: HistoryStateUpdate,
		Summary: fmt.Sprintf("Alarm updated from %s to %s", old, state), Data: string(hdata)})
	if err := s.commit(b, internal); err != nil {
		return err
	}
	s.alarms[c.Name] = &c
	s.m.log.Info("alarm state changed", "alarm", c.Name, "from", old, "to", state, "reason", reason)
	if c.ActionsEnabled {
		s.queueActionsLocked(c.Name, TypeMetric, state, c.OKActions, c.AlarmActions, c.InsufficientDataActions, s.m.notification(&c, old))
	}
	s.suppressorChangedLocked(c.Name, state, now, internal)
	s.reevaluateLocked(c.Name, c.Name, now, internal)
	return nil
}

// queueActionsLocked queues the actions of an alarm's new state.
func (s *alarmSet) queueActionsLocked(name, typ, state string, ok, alarm, insufficient []string, msg string) {
	var arns []string
	switch state {
	case StateAlarm:
		arns = alarm
	case StateOK:
		arns = ok
	case StateInsufficientData:
		arns = insufficient
	}
	if len(arns) == 0 {
		return
	}
	subject := fmt.Sprintf("%s: %q in %s", state, name, regionLongName(s.m.o.Region))
	if len(subject) > 100 {
		subject = subject[:97] + "..."
	}
	for _, arn := range arns {
		select {
		case s.actions <- action{alarm: name, alarmType: typ, arn: arn, subject: subject, message: msg}:
		default:
			s.m.log.Error("alarm action dropped: queue full", "alarm", name, "action", arn)
		}
	}
}

func (s *alarmSet) actionLoop() {
	defer s.wg.Done()
	for {
		select {
		case <-s.stop:
			// Run what is queued, then stop.
			for {
				select {
				case act := <-s.actions:
					s.run(act)
				default:
					return
				}
			}
		case act := <-s.actions:
			s.run(act)
		}
	}
}

// run executes one action and records the outcome in the history.
func (s *alarmSet) run(act action) {
	var err error
	if s.m.o.Notifier == nil {
		err = fmt.Errorf("no notifier configured")
	} else {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err = s.m.o.Notifier.Notify(ctx, act.arn, act.subject, act.message)
		cancel()
	}
	now := s.m.o.Clock()
	item := HistoryItem{AlarmName: act.alarm, Timestamp: now, Type: HistoryAction}
	if act.alarmType == TypeComposite {
		item.AlarmType = TypeComposite
	}
	if err != nil {
		s.m.log.Warn("alarm action failed", "alarm", act.alarm, "action", act.arn, "err", err)
		item.Summary = "Failed to execute action " + act.arn
		d, _ := json.Marshal(map[string]any{"actionState": "Failed", "stateUpdateTimestamp": now.UnixMilli(), "error": publicText(err)})
		item.Data = string(d)
	} else {
		item.Summary = "Successfully executed action " + act.arn
		d, _ := json.Marshal(map[string]any{"actionState": "Succeeded", "stateUpdateTimestamp": now.UnixMilli(),
			"notificationResource": act.arn, "publishedMessage": json.RawMessage(`{}`)})
		item.Data = string(d)
	}
	if err := s.m.room(alarmBytes, true); err != nil {
		s.m.log.Warn("alarm history not saved", "alarm", act.alarm, "err", err)
		return
	}
	s.mu.Lock()
	b := s.m.o.KV.NewBatch()
	s.historyLocked(b, item)
	s.mu.Unlock()
	if err := b.Commit(false); err != nil {
		s.m.log.Warn("alarm history", "err", err)
	}
	b.Close()
}

// publicText is an error's message when it is meant for users.
func publicText(err error) string {
	if p, ok := err.(interface{ PublicMessage() string }); ok {
		return p.PublicMessage()
	}
	var pe interface{ PublicMessage() string }
	if asPublic(err, &pe) {
		return pe.PublicMessage()
	}
	return "the notification could not be published"
}

func asPublic(err error, target *interface{ PublicMessage() string }) bool {
	for err != nil {
		if p, ok := err.(interface{ PublicMessage() string }); ok {
			*target = p
			return true
		}
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return false
		}
		err = u.Unwrap()
	}
	return false
}

// notification is the JSON message an alarm transition publishes to its
// SNS topics (what CloudWatch sends).
func (m *Monitor) notification(a *Alarm, old string) string {
	type dim struct {
		Value string `json:"value"`
		Name  string `json:"name"`
	}
	var desc any
	if a.Description != "" {
		desc = a.Description
	}
	trigger := map[string]any{
		"Period":                           a.Period,
		"EvaluationPeriods":                a.EvaluationPeriods,
		"DatapointsToAlarm":                a.DatapointsToAlarm,
		"ComparisonOperator":               a.ComparisonOperator,
		"Threshold":                        a.Threshold,
		"TreatMissingData":                 a.TreatMissingData,
		"EvaluateLowSampleCountPercentile": a.EvaluateLowSampleCountPercentile,
	}
	if a.Metrics != nil {
		trigger["Metrics"] = queriesJSON(a.Metrics)
	} else {
		dims := []dim{}
		for _, d := range a.Metric.Dimensions {
			dims = append(dims, dim{d.Value, d.Name})
		}
		trigger["MetricName"] = a.Metric.Name
		trigger["Namespace"] = a.Metric.Namespace
		trigger["Dimensions"] = dims
		if a.Statistic != "" {
			trigger["StatisticType"] = "Statistic"
			trigger["Statistic"] = strings.ToUpper(camelToSnake(a.Statistic))
		} else {
			trigger["StatisticType"] = "ExtendedStatistic"
			trigger["ExtendedStatistic"] = a.ExtendedStatistic
		}
		var unit any
		if a.Unit != "" {
			unit = a.Unit
		}
		trigger["Unit"] = unit
	}
	msg := map[string]any{
		"AlarmName":                          a.Name,
		"AlarmDescription":                   desc,
		"AWSAccountId":                       m.o.AccountID,
		"AlarmConfigurationUpdatedTimestamp": a.ConfigUpdated.UTC().Format(timeFormatAlarm),
		"NewStateValue":                      a.State,
		"NewStateReason":                     a.StateReason,
		"StateChangeTime":                    a.StateTransitioned.UTC().Format(timeFormatAlarm),
		"Region":                             regionLongName(m.o.Region),
		"AlarmArn":                           a.ARN,
		"OldStateValue":                      old,
		"OKActions":                          nonNil(a.OKActions),
		"AlarmActions":                       nonNil(a.AlarmActions),
		"InsufficientDataActions":            nonNil(a.InsufficientDataActions),
		"Trigger":                            trigger,
	}
	b, _ := json.Marshal(msg)
	return string(b)
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// camelToSnake: SampleCount → Sample_Count (CloudWatch writes SAMPLE_COUNT).
func camelToSnake(s string) string {
	var b strings.Builder
	for i, r := range s {
		if i > 0 && r >= 'A' && r <= 'Z' {
			b.WriteByte('_')
		}
		b.WriteRune(r)
	}
	return b.String()
}

func queriesJSON(qs []MetricQuery) []map[string]any {
	var out []map[string]any
	for _, q := range qs {
		e := map[string]any{"Id": q.ID, "ReturnData": q.returns()}
		if q.Label != "" {
			e["Label"] = q.Label
		}
		if q.Expression != "" {
			e["Expression"] = q.Expression
		}
		if q.Period != 0 {
			e["Period"] = q.Period
		}
		if st := q.Stat; st != nil {
			dims := []map[string]string{}
			for _, d := range st.Metric.Dimensions {
				dims = append(dims, map[string]string{"value": d.Value, "name": d.Name})
			}
			ms := map[string]any{"Metric": map[string]any{"Namespace": st.Metric.Namespace, "MetricName": st.Metric.Name, "Dimensions": dims},
				"Period": st.Period, "Stat": st.Stat}
			if st.Unit != "" {
				ms["Unit"] = st.Unit
			}
			e["MetricStat"] = ms
		}
		out = append(out, e)
	}
	return out
}

// alarmJSON is an alarm's configuration as history records it.
func alarmJSON(a *Alarm, m *Monitor) map[string]any {
	out := map[string]any{
		"alarmName": a.Name, "alarmArn": a.ARN, "type": "MetricAlarm", "actionsEnabled": a.ActionsEnabled,
		"okActions": nonNil(a.OKActions), "alarmActions": nonNil(a.AlarmActions), "insufficientDataActions": nonNil(a.InsufficientDataActions),
		"period": a.Period, "evaluationPeriods": a.EvaluationPeriods, "datapointsToAlarm": a.DatapointsToAlarm,
		"threshold": a.Threshold, "comparisonOperator": a.ComparisonOperator, "treatMissingData": a.TreatMissingData,
	}
	if a.Description != "" {
		out["alarmDescription"] = a.Description
	}
	if a.Metrics != nil {
		out["metrics"] = queriesJSON(a.Metrics)
	} else {
		dims := []map[string]string{}
		for _, d := range a.Metric.Dimensions {
			dims = append(dims, map[string]string{"name": d.Name, "value": d.Value})
		}
		out["namespace"], out["metricName"], out["dimensions"] = a.Metric.Namespace, a.Metric.Name, dims
		if a.Statistic != "" {
			out["statistic"] = strings.ToUpper(camelToSnake(a.Statistic))
		} else {
			out["extendedStatistic"] = a.ExtendedStatistic
		}
	}
	return out
}

// regionLongName is the name CloudWatch messages give a region.
func regionLongName(r string) string {
	names := map[string]string{
		"us-east-1": "US East (N. Virginia)", "us-east-2": "US East (Ohio)", "us-west-1": "US West (N. California)",
		"us-west-2": "US West (Oregon)", "eu-west-1": "EU (Ireland)", "eu-west-2": "EU (London)", "eu-west-3": "EU (Paris)",
		"eu-central-1": "EU (Frankfurt)", "eu-north-1": "EU (Stockholm)", "ap-southeast-1": "Asia Pacific (Singapore)",
		"ap-southeast-2": "Asia Pacific (Sydney)", "ap-northeast-1": "Asia Pacific (Tokyo)", "ap-south-1": "Asia Pacific (Mumbai)",
		"ca-central-1": "Canada (Central)", "sa-east-1": "South America (Sao Paulo)",
	}
	if n, ok := names[r]; ok {
		return n
	}
	return r
}
