package cfn

import (
	"context"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/regionfs/regionfs/internal/refusal"
)

// ChangeSetInput are the parameters of CreateChangeSet.
type ChangeSetInput struct {
	StackInput
	ChangeSetName string
	ChangeSetType string // CREATE, UPDATE (default)
	Description   string
	ClientToken   string
	// OnStackFailure: ROLLBACK (default), DO_NOTHING, DELETE.
	OnStackFailure string
}

// ChangeSet describes a change set.
type ChangeSet struct {
	ID, Name, StackID, StackName, Description string
	Type, Status, ExecutionStatus, Reason     string
	Created                                   time.Time
	Parameters                                []ParamValue
	Tags                                      []Tag
	Capabilities, NotificationARNs            []string
	Changes                                   []Change
	OnStackFailure                            string
}

func describeChangeSet(c *changeSetRecord) ChangeSet {
	d := ChangeSet{ID: c.ID, Name: c.Name, StackID: c.StackID, StackName: c.StackName, Description: c.Description,
		Type: c.Type, Status: c.Status, ExecutionStatus: c.ExecStatus, Reason: c.Reason, Created: c.Created,
		Tags: slices.Clone(c.Tags), Capabilities: slices.Clone(c.Capabilities), NotificationARNs: slices.Clone(c.NotificationARNs),
		Changes: slices.Clone(c.Changes), OnStackFailure: c.OnStackFailure}
	for _, p := range c.Params {
		if p.NoEcho {
			p.Value = "****"
		}
		d.Parameters = append(d.Parameters, p)
	}
	return d
}

// CreateChangeSet computes the changes a template makes to a stack (a new
// stack in REVIEW_IN_PROGRESS for type CREATE) and returns the change set
// and stack ids. The change set is complete when the call returns: FAILED
// with CloudFormation's reason when it holds no change.
func (e *Engine) CreateChangeSet(_ context.Context, in ChangeSetInput) (string, string, error) {
	if err := checkStackName(in.StackName); err != nil {
		return "", "", err
	}
	if in.ChangeSetName == "" || len(in.ChangeSetName) > 128 || !changeSetNameRe.MatchString(in.ChangeSetName) {
		return "", "", validation("1 validation error detected: Value '%s' at 'changeSetName' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z][-a-zA-Z0-9]*", clip(in.ChangeSetName))
	}
	if err := checkTags(in.Tags); err != nil {
		return "", "", err
	}
	if err := checkCapabilities(in.Capabilities); err != nil {
		return "", "", err
	}
	typ := in.ChangeSetType
	switch typ {
	case "":
		typ = changeSetUpdate
	case changeSetCreate, changeSetUpdate:
	case "IMPORT":
		return "", "", validation("ChangeSetType IMPORT is not supported: resources cannot be imported into stacks here.")
	default:
		return "", "", validation("1 validation error detected: Value '%s' at 'changeSetType' failed to satisfy constraint: Member must satisfy enum value set: [CREATE, UPDATE, IMPORT]", clip(typ))
	}
	switch in.OnStackFailure {
	case "", "ROLLBACK", "DO_NOTHING", "DELETE":
	default:
		return "", "", validation("1 validation error detected: Value '%s' at 'onStackFailure' failed to satisfy constraint: Member must satisfy enum value set: [DO_NOTHING, ROLLBACK, DELETE]", clip(in.OnStackFailure))
	}
	if len(in.Description) > 1024 {
		return "", "", validation("1 validation error detected: Value at 'description' failed to satisfy constraint: Member must have length less than or equal to 1024")
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return "", "", ErrClosed
	}
	var s *stackRecord
	if typ == changeSetCreate {
		if strings.HasPrefix(in.StackName, "arn:") {
			return "", "", validation("A stack name, not an id, is required to create a stack")
		}
		if id, ok := e.byName[in.StackName]; ok {
			s = e.stacks[id]
			if s.Status != ReviewInProgress {
				return "", "", validation("Stack [%s] already exists and cannot be created again with the changeSet [%s].", in.StackName, in.ChangeSetName)
			}
		}
	} else {
		var err error
		if s, err = e.lookupLocked(in.StackName); err != nil {
			return "", "", err
		}
		if s.Status == ReviewInProgress {
			return "", "", validation("Stack [%s] does not exist", in.StackName)
		}
	}
	if s != nil {
		for _, c := range e.changeSets {
			if c.StackID != s.ID {
				continue
			}
			if in.ClientToken != "" && c.ClientToken == in.ClientToken && c.Name == in.ChangeSetName {
				return c.ID, s.ID, nil
			}
			if c.Name == in.ChangeSetName {
				return "", "", refusal.Errorf(ErrAlreadyExists, "ChangeSet [%s] already exists", in.ChangeSetName)
			}
		}
	}
	body := in.TemplateBody
	if in.UsePreviousTemplate {
		if s == nil || s.Template == "" {
			return "", "", validation("UsePreviousTemplate requires an existing stack with a template")
		}
		body = s.Template
	}
	t, err := e.ValidateTemplate(body)
	if err != nil {
		return "", "", err
	}
	var prev []ParamValue
	if s != nil {
		prev = s.Params
	}
	params, err := resolveParams(t, in.Parameters, prev)
	if err != nil {
		return "", "", err
	}
	now := e.now()
	newStack := s == nil
	if newStack {
		if len(e.byName) >= e.o.MaxStacks {
			return "", "", refusal.Errorf(ErrLimitExceeded, "Limit for the number of stacks in this account (%d) has been reached", e.o.MaxStacks)
		}
		s = &stackRecord{ID: e.arn("stack", in.StackName), Name: in.StackName, Created: now, Status: ReviewInProgress,
			Reason: "User Initiated", Resources: map[string]*resourceState{}, Tokens: map[string]string{}}
	}
	c := &changeSetRecord{
		ID: e.arn("changeSet", in.ChangeSetName), Name: in.ChangeSetName, StackID: s.ID, StackName: s.Name, Type: typ,
		Status: csCreateComplete, ExecStatus: execAvailable, Description: in.Description, Created: now, Template: body,
		Params: params, Tags: in.Tags, Capabilities: in.Capabilities, NotificationARNs: in.NotificationARNs,
		ClientToken: in.ClientToken, OnStackFailure: in.OnStackFailure, RoleARN: in.RoleARN,
	}
	if typ == changeSetUpdate && in.Tags == nil {
		c.Tags = s.Tags
	}
	changes, err := e.planLocked(s, t, params)
	if err != nil {
		c.Status, c.ExecStatus, c.Reason = csFailed, execUnavailable, e.reason(s, "", err)
	} else {
		c.Changes = changes
		if len(changes) == 0 && typ == changeSetUpdate && (body != s.Template || !slices.Equal(params, s.Params) || !slices.Equal(c.Tags, s.Tags)) {
			// Only the stack itself changes (tags, outputs, parameters
			// no resource uses): executable, with no resource change.
		} else if len(changes) == 0 {
			c.Status, c.ExecStatus, c.Reason = csFailed, execUnavailable, noChangesReason
		}
	}
	var evs []event
	if newStack {
		evs = append(evs, e.stackEventLocked(s, ReviewInProgress, "User Initiated"))
	}
	if err := e.saveLocked(s, evs, c); err != nil {
		return "", "", err
	}
	e.stacks[s.ID] = s
	e.byName[s.Name] = s.ID
	e.changeSets[c.ID] = c
	return c.ID, s.ID, nil
}

// changeSetLocked finds a change set by id, or by name within a stack.
func (e *Engine) changeSetLocked(ref, stackName string) (*changeSetRecord, error) {
	if ref == "" {
		return nil, validation("1 validation error detected: Value null at 'changeSetName' failed to satisfy constraint: Member must not be null")
	}
	if c, ok := e.changeSets[ref]; ok {
		return c, nil
	}
	if strings.HasPrefix(ref, "arn:") {
		return nil, refusal.Errorf(ErrChangeSetNotFound, "ChangeSet [%s] does not exist", clip(ref))
	}
	if stackName == "" {
		return nil, validation("StackName must be specified if ChangeSetName is not specified as an ARN.")
	}
	s, err := e.lookupLocked(stackName)
	if err != nil {
		return nil, refusal.Errorf(ErrChangeSetNotFound, "ChangeSet [%s] does not exist", clip(ref))
	}
	for _, c := range e.changeSets {
		if c.StackID == s.ID && c.Name == ref {
			return c, nil
		}
	}
	return nil, refusal.Errorf(ErrChangeSetNotFound, "ChangeSet [%s] does not exist", clip(ref))
}

// DescribeChangeSet describes a change set.
func (e *Engine) DescribeChangeSet(_ context.Context, ref, stackName string) (ChangeSet, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	c, err := e.changeSetLocked(ref, stackName)
	if err != nil {
		return ChangeSet{}, err
	}
	return describeChangeSet(c), nil
}

// ListChangeSets lists the change sets of a stack.
func (e *Engine) ListChangeSets(_ context.Context, stackName, token string) ([]ChangeSet, string, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	s, err := e.lookupLocked(stackName)
	if err != nil {
		return nil, "", err
	}
	var all []ChangeSet
	for _, c := range e.changeSets {
		if c.StackID == s.ID {
			all = append(all, describeChangeSet(c))
		}
	}
	sort.Slice(all, func(i, j int) bool { return all[i].Created.Before(all[j].Created) })
	return page(all, token, pageSize)
}

// DeleteChangeSet deletes a change set that is not being executed.
func (e *Engine) DeleteChangeSet(_ context.Context, ref, stackName string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	c, err := e.changeSetLocked(ref, stackName)
	if err != nil {
		return err
	}
	if c.ExecStatus == execInProgress {
		return refusal.Errorf(ErrInvalidChangeSetStatus, "ChangeSet [%s] cannot be deleted in its current status of [%s]", c.ID, c.ExecStatus)
	}
	s := e.stacks[c.StackID]
	c.Status = csDeleteComplete
	if err := e.saveLocked(s, nil, c); err != nil {
		c.Status = csCreateComplete
		return err
	}
	delete(e.changeSets, c.ID)
	return nil
}

// ExecuteChangeSet starts the stack operation a change set describes.
func (e *Engine) ExecuteChangeSet(_ context.Context, ref, stackName, token string, disableRollback bool) (string, error) {
	if err := checkToken(token); err != nil {
		return "", err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return "", ErrClosed
	}
	c, err := e.changeSetLocked(ref, stackName)
	if err != nil {
		return "", err
	}
	s := e.stacks[c.StackID]
	if token != "" {
		if _, ok := s.Tokens[token]; ok && (c.ExecStatus == execInProgress || c.ExecStatus == execComplete) {
			return s.ID, nil
		}
	}
	if c.ExecStatus != execAvailable {
		return "", refusal.Errorf(ErrInvalidChangeSetStatus, "ChangeSet [%s] cannot be executed in its current status of [%s]", c.ID, c.ExecStatus)
	}
	t, err := e.ValidateTemplate(c.Template)
	if err != nil {
		return "", err
	}
	var others []*changeSetRecord
	for _, o := range e.changeSets {
		if o.StackID == s.ID && o.ID != c.ID && o.ExecStatus == execAvailable {
			others = append(others, o)
		}
	}
	prevExec := c.ExecStatus
	c.ExecStatus = execInProgress
	for _, o := range others {
		o.ExecStatus = execObsolete
	}
	restore := func() {
		c.ExecStatus = prevExec
		for _, o := range others {
			o.ExecStatus = execAvailable
		}
	}
	s.ChangeSetID = c.ID
	if c.Type == changeSetCreate {
		s.Template, s.Description, s.Params, s.Tags = c.Template, t.Description, c.Params, c.Tags
		s.Capabilities, s.NotificationARNs, s.RoleARN = c.Capabilities, c.NotificationARNs, c.RoleARN
		s.OnFailure = c.OnStackFailure
		s.DisableRollback = disableRollback || c.OnStackFailure == "DO_NOTHING"
		s.Created = e.now()
		err = e.beginLocked(s, opCreate, token, nil)
	} else {
		if err := updatable(s); err != nil {
			restore()
			return "", err
		}
		err = e.startUpdateLocked(s, c.Template, t.Description, c.Params, c.Tags, c.NotificationARNs, c.Capabilities, disableRollback, token)
	}
	if err != nil {
		restore()
		return "", err
	}
	css := append([]*changeSetRecord{c}, others...)
	if err := e.saveLocked(s, nil, css...); err != nil {
		e.log.Error("change set status not saved", "change_set", c.ID, "err", err)
	}
	return s.ID, nil
}
