package monitor

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/regionfs/regionfs/internal/engine/kv"
	"github.com/regionfs/regionfs/internal/refusal"
)

// Alarm types (DescribeAlarms AlarmTypes, history items).
const (
	TypeMetric    = "MetricAlarm"
	TypeComposite = "CompositeAlarm"
)

// CompositeAlarm is an alarm whose state is a rule over the states of
// other alarms (metric or composite): ALARM when the rule is true, OK
// when it is false. It is evaluated when it is created or updated and
// whenever one of its children changes state; a composite alarm in a
// cycle (a child of itself, through other composites) is not evaluated,
// as on CloudWatch.
type CompositeAlarm struct {
	Name                    string
	ARN                     string
	Description             string
	ConfigUpdated           time.Time
	ActionsEnabled          bool
	OKActions               []string
	AlarmActions            []string
	InsufficientDataActions []string
	Rule                    string

	// ActionsSuppressor names an alarm whose ALARM state holds back
	// this alarm's actions: while it is in ALARM (ActionsSuppressedBy
	// Alarm), for up to SuppressorWaitPeriod seconds after this alarm's
	// change while waiting for it to go to ALARM (WaitPeriod), and for
	// SuppressorExtensionPeriod seconds after it left ALARM
	// (ExtensionPeriod). Held actions run when a period ends, with the
	// message of the transition they belong to.
	ActionsSuppressor         string
	SuppressorWaitPeriod      int
	SuppressorExtensionPeriod int
	ActionsSuppressedBy       string
	ActionsSuppressedReason   string
	SuppressedUntil           time.Time `json:",omitzero"`  // end of a WaitPeriod or ExtensionPeriod
	SuppressedFrom            string    `json:",omitempty"` // the state before the held transition

	State             string
	StateReason       string
	StateReasonData   string
	StateUpdated      time.Time
	StateTransitioned time.Time

	Tags []Tag

	rule *rule // Rule, parsed
}

// CompositeInput is a PutCompositeAlarm request.
type CompositeInput struct {
	Name                      string
	Description               string
	ActionsEnabled            *bool
	OKActions                 []string
	AlarmActions              []string
	InsufficientDataActions   []string
	Rule                      string
	ActionsSuppressor         string
	SuppressorWaitPeriod      *int
	SuppressorExtensionPeriod *int
	Tags                      []Tag
	// CreatedBy makes the call create-only for its maker, as
	// AlarmInput.CreatedBy does (CloudFormation's stack tags).
	CreatedBy []Tag
}

// Key: 'w' 'c' name → composite alarm (JSON).
const tagComposite = 'c'

func compositeKey(name string) []byte { return append([]byte{pfxWatch, tagComposite}, name...) }

func (s *alarmSet) loadComposites() error {
	return kv.Scan(s.m.o.KV, []byte{pfxWatch, tagComposite}, []byte{pfxWatch, tagComposite + 1}, func(k, v []byte) error {
		var c CompositeAlarm
		if err := json.Unmarshal(v, &c); err != nil {
			return fmt.Errorf("monitor: composite alarm %q: %w", k[2:], err)
		}
		r, err := parseRule(c.Rule)
		if err != nil {
			return fmt.Errorf("monitor: composite alarm %q: rule: %w", c.Name, err)
		}
		c.rule = r
		s.composites[c.Name] = &c
		return nil
	})
}

func (s *alarmSet) saveCompositeLocked(c *CompositeAlarm, b kv.Batch) {
	v, _ := json.Marshal(c) // plain data
	b.Set(compositeKey(c.Name), v)
}

// refName is the alarm a rule reference names: a name, or the ARN of an
// alarm of this region and account (any other ARN names no alarm here).
func (m *Monitor) refName(ref string) string {
	if n, ok := strings.CutPrefix(ref, "arn:aws:cloudwatch:"+m.o.Region+":"+m.o.AccountID+":alarm:"); ok {
		return n
	}
	return ref
}

// stateLocked is the state of the alarm named name ("" when none is).
func (s *alarmSet) stateLocked(name string) (state string, updated time.Time, ok bool) {
	if a := s.alarms[name]; a != nil {
		return a.State, a.StateTransitioned, true
	}
	if c := s.composites[name]; c != nil {
		return c.State, c.StateTransitioned, true
	}
	return "", time.Time{}, false
}

func (s *alarmSet) existsLocked(name string) bool {
	_, _, ok := s.stateLocked(name)
	return ok
}

// childrenLocked are the names of the alarms c's rule names, sorted,
// without repeats.
func (s *alarmSet) childrenLocked(c *CompositeAlarm) []string {
	seen := map[string]bool{}
	var out []string
	for _, ref := range c.rule.refs(nil) {
		if n := s.m.refName(ref); !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}

// parentsLocked are the composite alarms whose rules name name, sorted.
func (s *alarmSet) parentsLocked(name string) []*CompositeAlarm {
	var out []*CompositeAlarm
	for _, c := range s.composites {
		for _, ch := range s.childrenLocked(c) {
			if ch == name {
				out = append(out, c)
				break
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// inCycleLocked reports whether the composite alarm name is its own
// descendant.
func (s *alarmSet) inCycleLocked(name string) bool {
	seen := map[string]bool{}
	var walk func(n string) bool
	walk = func(n string) bool {
		c := s.composites[n]
		if c == nil || seen[n] {
			return false
		}
		seen[n] = true
		for _, ch := range s.childrenLocked(c) {
			if ch == name || walk(ch) {
				return true
			}
		}
		return false
	}
	return walk(name)
}

// PutCompositeAlarm creates a composite alarm, or replaces the whole
// configuration of an existing one (its state stays). Every alarm its
// rule names must exist. It is evaluated at once.
func (m *Monitor) PutCompositeAlarm(ctx context.Context, in CompositeInput) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c, err := m.checkComposite(in)
	if err != nil {
		return err
	}
	s := m.alarms
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	old := s.composites[c.Name]
	if len(in.CreatedBy) > 0 && (s.alarms[c.Name] != nil || old != nil && !hasTags(old.Tags, in.CreatedBy)) {
		return refusal.Errorf(ErrAlreadyExists, "An alarm named %s already exists.", clip(c.Name))
	}
	if s.alarms[c.Name] != nil {
		return refusal.Errorf(ErrValidation, "The alarm %s is a metric alarm; a composite alarm cannot have its name.", clip(c.Name))
	}
	if old == nil && len(s.alarms)+len(s.composites) >= MaxAlarms {
		return refusal.Errorf(ErrLimitExceeded, "The maximum number of alarms (%d) in %s is reached.", MaxAlarms, m.o.Region)
	}
	// A new alarm's rule cannot name itself (it does not exist yet); an
	// update can make a cycle, which CloudWatch allows and then does not
	// evaluate.
	var absent []string
	for _, n := range s.childrenLocked(c) {
		if !s.existsLocked(n) {
			absent = append(absent, n)
		}
	}
	if len(absent) > 0 {
		return refusal.Errorf(ErrValidation, "Could not save the composite alarm as alarms [%s] in the alarm rule do not exist", clip(strings.Join(absent, ", ")))
	}
	if c.ActionsSuppressor != "" && !s.existsLocked(m.refName(c.ActionsSuppressor)) {
		return refusal.Errorf(ErrValidation, "The ActionsSuppressor alarm %s does not exist.", clip(c.ActionsSuppressor))
	}
	now := m.o.Clock()
	c.ConfigUpdated = now
	summary, typ := fmt.Sprintf("Alarm %q created", c.Name), "Create"
	if old != nil {
		c.State, c.StateReason, c.StateReasonData = old.State, old.StateReason, old.StateReasonData
		c.StateUpdated, c.StateTransitioned = old.StateUpdated, old.StateTransitioned
		c.ActionsSuppressedBy, c.ActionsSuppressedReason = old.ActionsSuppressedBy, old.ActionsSuppressedReason
		c.Tags = old.Tags
		summary, typ = fmt.Sprintf("Alarm %q updated", c.Name), "Update"
	} else {
		c.State, c.StateReason = StateInsufficientData, "Unchecked: Initial alarm creation"
		c.StateUpdated, c.StateTransitioned = now, now
		c.Tags = append(slices.Clip(in.Tags), in.CreatedBy...)
	}
	b := m.o.KV.NewBatch()
	defer b.Close()
	s.saveCompositeLocked(c, b)
	cfg, _ := json.Marshal(compositeJSON(c))
	data, _ := json.Marshal(map[string]any{"version": "1.0", "type": typ, "createdAlarm": json.RawMessage(cfg)})
	s.historyLocked(b, HistoryItem{AlarmName: c.Name, AlarmType: TypeComposite, Timestamp: now, Type: HistoryConfigurationUpdate, Summary: summary, Data: string(data)})
	if err := s.commit(b, false); err != nil {
		return err
	}
	s.composites[c.Name] = c
	// Evaluate the new rule: its state, and its parents' in turn. The
	// configuration is saved; a failure to save the state change is
	// logged and made good at the next child change or restart.
	s.reevaluateLocked(c.Name, "", now, false)
	return nil
}

// checkComposite validates a PutCompositeAlarm request and builds the
// alarm's configuration.
func (m *Monitor) checkComposite(in CompositeInput) (*CompositeAlarm, error) {
	if err := m.checkAlarmCommon(in.Name, in.Description, in.OKActions, in.AlarmActions, in.InsufficientDataActions, in.Tags); err != nil {
		return nil, err
	}
	r, err := parseRule(in.Rule)
	if err != nil {
		return nil, err
	}
	c := &CompositeAlarm{
		Name: in.Name, ARN: m.AlarmARN(in.Name), Description: in.Description, ActionsEnabled: in.ActionsEnabled == nil || *in.ActionsEnabled,
		OKActions: in.OKActions, AlarmActions: in.AlarmActions, InsufficientDataActions: in.InsufficientDataActions,
		Rule: in.Rule, rule: r, ActionsSuppressor: in.ActionsSuppressor,
	}
	switch {
	case len(in.ActionsSuppressor) > 1600:
		return nil, invalid("The value of ActionsSuppressor must be at most 1600 characters long.")
	case in.ActionsSuppressor == "" && (in.SuppressorWaitPeriod != nil || in.SuppressorExtensionPeriod != nil):
		return nil, refusal.Errorf(ErrValidation, "ActionsSuppressorWaitPeriod and ActionsSuppressorExtensionPeriod need an ActionsSuppressor.")
	case in.ActionsSuppressor != "" && (in.SuppressorWaitPeriod == nil || in.SuppressorExtensionPeriod == nil):
		return nil, refusal.Errorf(ErrValidation, "An ActionsSuppressor needs ActionsSuppressorWaitPeriod and ActionsSuppressorExtensionPeriod.")
	case in.ActionsSuppressor != "":
		if *in.SuppressorWaitPeriod < 0 || *in.SuppressorExtensionPeriod < 0 {
			return nil, invalid("ActionsSuppressorWaitPeriod and ActionsSuppressorExtensionPeriod must not be negative.")
		}
		c.SuppressorWaitPeriod, c.SuppressorExtensionPeriod = *in.SuppressorWaitPeriod, *in.SuppressorExtensionPeriod
	}
	return c, nil
}

// reevaluateLocked evaluates composite alarms after a change: with no
// trigger, the composite alarm name itself (its configuration changed);
// with one, the composites whose rules name name (its state changed).
// A composite that changes state has its parents evaluated in turn; each
// is evaluated at most once.
func (s *alarmSet) reevaluateLocked(name, trigger string, now time.Time, internal bool) {
	seen := map[string]bool{}
	type step struct{ name, trigger string }
	queue := []step{}
	if trigger == "" {
		queue = append(queue, step{name, ""})
	} else {
		for _, p := range s.parentsLocked(name) {
			queue = append(queue, step{p.Name, name})
		}
	}
	for len(queue) > 0 {
		st := queue[0]
		queue = queue[1:]
		c := s.composites[st.name]
		if c == nil || seen[st.name] {
			continue
		}
		seen[st.name] = true
		if s.inCycleLocked(c.Name) {
			s.m.log.Warn("composite alarm not evaluated: its rule forms a cycle", "alarm", c.Name)
			continue
		}
		state, reason, data := s.evaluateCompositeLocked(c, st.trigger, now)
		if state == c.State {
			continue
		}
		if err := s.transitionCompositeLocked(c, state, reason, data, now, internal); err != nil {
			s.m.log.Error("alarm transition", "alarm", c.Name, "err", err)
			continue
		}
		for _, p := range s.parentsLocked(c.Name) {
			queue = append(queue, step{p.Name, c.Name})
		}
	}
}

// evaluateCompositeLocked computes c's state from its children's.
func (s *alarmSet) evaluateCompositeLocked(c *CompositeAlarm, trigger string, now time.Time) (state, reason, data string) {
	state = StateOK
	if c.rule.eval(func(ref string) string { st, _, _ := s.stateLocked(s.m.refName(ref)); return st }) {
		state = StateAlarm
	}
	type childState struct {
		Value     string `json:"value"`
		Timestamp string `json:"timestamp"`
	}
	type triggering struct {
		ARN   string     `json:"arn"`
		State childState `json:"state"`
	}
	d := struct {
		TriggeringAlarms []triggering `json:"triggeringAlarms"`
	}{TriggeringAlarms: []triggering{}}
	names := s.childrenLocked(c)
	if trigger != "" {
		names = []string{trigger}
	}
	for _, n := range names {
		if st, at, ok := s.stateLocked(n); ok {
			d.TriggeringAlarms = append(d.TriggeringAlarms, triggering{s.m.AlarmARN(n), childState{st, at.UTC().Format(timeFormatAlarm)}})
		}
	}
	b, _ := json.Marshal(d)
	if st, at, ok := s.stateLocked(trigger); trigger != "" && ok {
		reason = fmt.Sprintf("%s transitioned to %s at %s", s.m.AlarmARN(trigger), st, at.UTC().Format("Monday 02 January, 2006 15:04:05 MST"))
	} else {
		word := "FALSE"
		if state == StateAlarm {
			word = "TRUE"
		}
		reason = fmt.Sprintf("The alarm rule evaluated to %s at %s after a configuration change", word, now.UTC().Format("Monday 02 January, 2006 15:04:05 MST"))
	}
	return state, reason, string(b)
}

// transitionCompositeLocked moves c to state: the change is saved with its
// history item, then the new state's actions are queued (when enabled
// and not suppressed).
func (s *alarmSet) transitionCompositeLocked(c *CompositeAlarm, state, reason, data string, now time.Time, internal bool) error {
	n := *c
	old := c.State
	n.State, n.StateReason, n.StateReasonData, n.StateUpdated, n.StateTransitioned = state, reason, data, now, now
	n.ActionsSuppressedBy, n.ActionsSuppressedReason, n.SuppressedUntil, n.SuppressedFrom = "", "", time.Time{}, ""
	if n.ActionsSuppressor != "" {
		st, _, _ := s.stateLocked(s.m.refName(n.ActionsSuppressor))
		switch {
		case st == StateAlarm:
			n.suppress("Alarm", time.Time{})
		case state == StateAlarm && n.SuppressorWaitPeriod > 0:
			n.suppress("WaitPeriod", now.Add(time.Duration(n.SuppressorWaitPeriod)*time.Second))
		}
		if n.ActionsSuppressedBy != "" {
			n.SuppressedFrom = old
		}
	}
	b := s.m.o.KV.NewBatch()
	defer b.Close()
	s.saveCompositeLocked(&n, b)
	hd := map[string]any{
		"version":  "1.0",
		"oldState": map[string]any{"stateValue": old, "stateReason": c.StateReason},
		"newState": map[string]any{"stateValue": state, "stateReason": reason},
	}
	if data != "" && json.Valid([]byte(data)) {
		hd["newState"].(map[string]any)["stateReasonData"] = json.RawMessage(data)
	}
	hdata, _ := json.Marshal(hd)
	s.historyLocked(b, HistoryItem{AlarmName: n.Name, AlarmType: TypeComposite, Timestamp: now, Type: HistoryStateUpdate,
		Summary: fmt.Sprintf("Alarm updated from %s to %s", old, state), Data: string(hdata)})
	if err := s.commit(b, internal); err != nil {
		return err
	}
	s.composites[n.Name] = &n
	s.m.log.Info("alarm state changed", "alarm", n.Name, "type", TypeComposite, "from", old, "to", state, "reason", reason)
	if n.ActionsEnabled && n.ActionsSuppressedBy == "" {
		s.queueActionsLocked(n.Name, TypeComposite, state, n.OKActions, n.AlarmActions, n.InsufficientDataActions, s.m.compositeNotification(&n, old))
	}
	s.suppressorChangedLocked(n.Name, state, now, internal)
	return nil
}

// suppress holds c's actions back: by the suppressor's ALARM state, or
// until the end of a wait or extension period.
func (c *CompositeAlarm) suppress(by string, until time.Time) {
	c.ActionsSuppressedBy, c.SuppressedUntil = by, until
	switch by {
	case "Alarm":
		c.ActionsSuppressedReason = "Alarm " + c.ActionsSuppressor + " is in ALARM state"
	default:
		c.ActionsSuppressedReason = "Actions suppressed by " + by
	}
}

// suppressorChangedLocked updates the composite alarms that name as
// ActionsSuppressor the alarm that moved to state: its ALARM suppresses
// their held actions; leaving ALARM starts their extension period (or
// releases them when it is 0).
func (s *alarmSet) suppressorChangedLocked(name, state string, now time.Time, internal bool) {
	for _, cname := range slices.Sorted(maps.Keys(s.composites)) {
		c := s.composites[cname]
		if c.ActionsSuppressor == "" || s.m.refName(c.ActionsSuppressor) != name || c.ActionsSuppressedBy == "" && state != StateAlarm {
			continue
		}
		n := *c
		switch {
		case state == StateAlarm && c.ActionsSuppressedBy != "":
			n.suppress("Alarm", time.Time{})
		case state == StateAlarm:
			continue // nothing held
		case c.ActionsSuppressedBy == "Alarm" && c.SuppressorExtensionPeriod > 0:
			n.suppress("ExtensionPeriod", now.Add(time.Duration(c.SuppressorExtensionPeriod)*time.Second))
		case c.ActionsSuppressedBy == "Alarm":
			s.releaseLocked(c, internal)
			continue
		default:
			continue // a wait or extension period runs on
		}
		s.saveSuppressionLocked(&n, internal)
	}
}

// releaseDueLocked runs the held actions whose wait or extension period
// has ended.
func (s *alarmSet) releaseDueLocked(now time.Time) {
	for _, cname := range slices.Sorted(maps.Keys(s.composites)) {
		if c := s.composites[cname]; !c.SuppressedUntil.IsZero() && !now.Before(c.SuppressedUntil) {
			s.releaseLocked(c, true)
		}
	}
}

// releaseLocked runs c's held actions (those of its current state) and
// clears the suppression.
func (s *alarmSet) releaseLocked(c *CompositeAlarm, internal bool) {
	n := *c
	n.ActionsSuppressedBy, n.ActionsSuppressedReason, n.SuppressedUntil, n.SuppressedFrom = "", "", time.Time{}, ""
	if !s.saveSuppressionLocked(&n, internal) {
		return
	}
	if n.ActionsEnabled {
		s.queueActionsLocked(n.Name, TypeComposite, n.State, n.OKActions, n.AlarmActions, n.InsufficientDataActions, s.m.compositeNotification(&n, c.SuppressedFrom))
	}
}

func (s *alarmSet) saveSuppressionLocked(c *CompositeAlarm, internal bool) bool {
	b := s.m.o.KV.NewBatch()
	defer b.Close()
	s.saveCompositeLocked(c, b)
	if err := s.commit(b, internal); err != nil {
		s.m.log.Error("composite alarm suppression not saved", "alarm", c.Name, "err", err)
		return false
	}
	s.composites[c.Name] = c
	return true
}

// compositeNotification is the JSON message a composite alarm's
// transition publishes to its SNS topics.
func (m *Monitor) compositeNotification(c *CompositeAlarm, old string) string {
	var desc any
	if c.Description != "" {
		desc = c.Description
	}
	var triggering struct {
		TriggeringAlarms []struct {
			ARN   string `json:"arn"`
			State struct {
				Value     string `json:"value"`
				Timestamp string `json:"timestamp"`
			} `json:"state"`
		} `json:"triggeringAlarms"`
	}
	_ = json.Unmarshal([]byte(c.StateReasonData), &triggering)
	children := []map[string]any{}
	for _, t := range triggering.TriggeringAlarms {
		children = append(children, map[string]any{"Arn": t.ARN, "State": map[string]string{"Value": t.State.Value, "Timestamp": t.State.Timestamp}})
	}
	msg := map[string]any{
		"AlarmName":                          c.Name,
		"AlarmDescription":                   desc,
		"AWSAccountId":                       m.o.AccountID,
		"AlarmConfigurationUpdatedTimestamp": c.ConfigUpdated.UTC().Format(timeFormatAlarm),
		"NewStateValue":                      c.State,
		"NewStateReason":                     c.StateReason,
		"StateChangeTime":                    c.StateTransitioned.UTC().Format(timeFormatAlarm),
		"Region":                             regionLongName(m.o.Region),
		"AlarmArn":                           c.ARN,
		"OldStateValue":                      old,
		"OKActions":                          nonNil(c.OKActions),
		"AlarmActions":                       nonNil(c.AlarmActions),
		"InsufficientDataActions":            nonNil(c.InsufficientDataActions),
		"AlarmRule":                          c.Rule,
		"TriggeringChildren":                 children,
	}
	b, _ := json.Marshal(msg)
	return string(b)
}

// compositeJSON is a composite alarm's configuration as history records
// it.
func compositeJSON(c *CompositeAlarm) map[string]any {
	out := map[string]any{
		"alarmName": c.Name, "alarmArn": c.ARN, "type": TypeComposite, "actionsEnabled": c.ActionsEnabled,
		"okActions": nonNil(c.OKActions), "alarmActions": nonNil(c.AlarmActions), "insufficientDataActions": nonNil(c.InsufficientDataActions),
		"alarmRule": c.Rule,
	}
	if c.Description != "" {
		out["alarmDescription"] = c.Description
	}
	if c.ActionsSuppressor != "" {
		out["actionsSuppressor"] = c.ActionsSuppressor
		out["actionsSuppressorWaitPeriod"] = c.SuppressorWaitPeriod
		out["actionsSuppressorExtensionPeriod"] = c.SuppressorExtensionPeriod
	}
	return out
}
