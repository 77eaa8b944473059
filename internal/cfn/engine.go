package cfn

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/regionfs/regionfs/internal/engine/kv"
	"github.com/regionfs/regionfs/internal/refusal"
	"github.com/regionfs/regionfs/internal/uuid"
)

// Options configure an Engine.
type Options struct {
	Region, AccountID string
	// KV is the server's store; stacks live under 'o'.
	KV    kv.Store
	Types Registry
	// AZs returns the availability zones of a region (Fn::GetAZs).
	AZs    func(region string) []string
	Logger *slog.Logger
	Clock  func() time.Time
	// MaxStacks bounds the stacks of the region (2000 by default).
	MaxStacks int
	// Retention is how long deleted stacks stay listed (90 days).
	Retention time.Duration
}

// Engine runs the stacks of one region.
type Engine struct {
	o   Options
	log *slog.Logger

	ctx    context.Context // of the operation workers; cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu         sync.Mutex // guards the fields below
	cond       *sync.Cond // broadcast when an operation ends
	closed     bool
	stacks     map[string]*stackRecord // by stack id (deleted ones too)
	byName     map[string]string       // live stack name → id
	changeSets map[string]*changeSetRecord
	running    map[string]bool // stack ids with a worker
}

var (
	stackNameRe     = regexp.MustCompile(`^[a-zA-Z][-a-zA-Z0-9]*$`)
	changeSetNameRe = regexp.MustCompile(`^[a-zA-Z][-a-zA-Z0-9]*$`)
	tokenRe         = regexp.MustCompile(`^[a-zA-Z0-9][-a-zA-Z0-9]*$`)
)

// Open loads the region's stacks and resumes every operation a restart
// interrupted.
func Open(o Options) (*Engine, error) {
	if o.KV == nil || o.Types == nil || o.Region == "" || o.AccountID == "" {
		return nil, errors.New("cfn: Options.KV, Types, Region and AccountID are required")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.MaxStacks == 0 {
		o.MaxStacks = 2000
	}
	if o.Retention == 0 {
		o.Retention = 90 * 24 * time.Hour
	}
	ctx, cancel := context.WithCancel(context.Background())
	e := &Engine{
		o: o, log: o.Logger.With("region", o.Region), ctx: ctx, cancel: cancel,
		stacks: map[string]*stackRecord{}, byName: map[string]string{},
		changeSets: map[string]*changeSetRecord{}, running: map[string]bool{},
	}
	e.cond = sync.NewCond(&e.mu)
	if err := e.load(); err != nil {
		cancel()
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.purgeExpiredLocked()
	for _, s := range e.stacks {
		if s.Op != nil {
			e.log.Info("stack operation resumed", "stack", s.Name, "op", s.Op.Kind, "phase", s.Op.Phase, "status", s.Status)
			e.startLocked(s)
		}
	}
	return e, nil
}

// Close stops the operation workers (an operation under way resumes at the
// next Open) and waits for them.
func (e *Engine) Close() error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	e.cond.Broadcast()
	e.mu.Unlock()
	e.cancel()
	e.wg.Wait()
	return nil
}

func (e *Engine) now() time.Time { return e.o.Clock().UTC() }

func (e *Engine) arn(kind, name string) string {
	return fmt.Sprintf("arn:aws:cloudformation:%s:%s:%s/%s/%s", e.o.Region, e.o.AccountID, kind, name, uuid.New())
}

// purgeExpiredLocked forgets deleted stacks older than the retention.
func (e *Engine) purgeExpiredLocked() {
	cut := e.now().Add(-e.o.Retention)
	for id, s := range e.stacks {
		if s.Status == DeleteComplete && s.Deleted.Before(cut) {
			b := e.o.KV.NewBatch()
			b.Delete(stackKey(id))
			p := eventPrefix(id)
			hi := append([]byte(nil), p...)
			hi[len(hi)-1]++
			b.DeleteRange(p, hi)
			err := b.Commit(true)
			b.Close()
			if err != nil {
				e.log.Error("purge deleted stack", "stack_id", id, "err", err)
				continue
			}
			delete(e.stacks, id)
		}
	}
}

// checkStackName validates a StackName parameter (name or ARN).
func checkStackName(name string) error {
	if name == "" {
		return validation("1 validation error detected: Value null at 'stackName' failed to satisfy constraint: Member must not be null")
	}
	if strings.HasPrefix(name, "arn:") {
		if len(name) > 2048 {
			return validation("1 validation error detected: Value '%s' at 'stackName' failed to satisfy constraint: Member must have length less than or equal to 2048", clip(name))
		}
		return nil
	}
	if len(name) > 128 || !stackNameRe.MatchString(name) {
		return validation("1 validation error detected: Value '%s' at 'stackName' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z][-a-zA-Z0-9]*|arn:[-a-zA-Z0-9:/._+]*", clip(name))
	}
	return nil
}

// lookupLocked finds a stack by name (live stacks) or id (any).
func (e *Engine) lookupLocked(ref string) (*stackRecord, error) {
	if err := checkStackName(ref); err != nil {
		return nil, err
	}
	if s, ok := e.stacks[ref]; ok {
		return s, nil
	}
	if id, ok := e.byName[ref]; ok {
		return e.stacks[id], nil
	}
	return nil, validation("Stack with id %s does not exist", clip(ref))
}

func checkToken(tok string) error {
	if tok == "" {
		return nil
	}
	if len(tok) > 128 || !tokenRe.MatchString(tok) {
		return validation("1 validation error detected: Value '%s' at 'clientRequestToken' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9][-a-zA-Z0-9]*", clip(tok))
	}
	return nil
}

// ParamInput is a parameter of a request.
type ParamInput struct {
	Key, Value  string
	UsePrevious bool
}

// StackInput are the parameters of CreateStack and UpdateStack.
type StackInput struct {
	StackName           string
	TemplateBody        string
	UsePreviousTemplate bool
	Parameters          []ParamInput
	Tags                []Tag
	Capabilities        []string
	NotificationARNs    []string
	DisableRollback     bool
	OnFailure           string // CreateStack: ROLLBACK (default), DO_NOTHING, DELETE
	TimeoutMinutes      int
	// TerminationProtection (CreateStack).
	TerminationProtection bool
	RoleARN               string
	ClientRequestToken    string
}

// ValidateTemplate parses a template and returns what ValidateTemplate
// reports.
func (e *Engine) ValidateTemplate(body string) (*Template, error) {
	if body == "" {
		return nil, validation("Either Template URL or Template Body must be specified.")
	}
	return ParseTemplate(body, e.o.Types)
}

// resolveParams checks the request's parameters against t and returns the
// stack's values (defaults applied, previous values kept).
func resolveParams(t *Template, in []ParamInput, prev []ParamValue) ([]ParamValue, error) {
	given := map[string]ParamInput{}
	var unknown []string
	for _, p := range in {
		if t.parameter(p.Key) == nil {
			unknown = append(unknown, p.Key)
			continue
		}
		given[p.Key] = p
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return nil, validation("Parameters: [%s] do not exist in the template", strings.Join(unknown, ", "))
	}
	var out []ParamValue
	var missing []string
	for _, p := range t.Parameters {
		g, ok := given[p.Name]
		var v string
		switch {
		case ok && g.UsePrevious:
			i := slices.IndexFunc(prev, func(pv ParamValue) bool { return pv.Key == p.Name })
			if i < 0 {
				return nil, validation("Invalid input for parameter key %s. Cannot specify usePreviousValue as true for a parameter key not in the previous template", p.Name)
			}
			v = prev[i].Value
		case ok:
			v = g.Value
		case p.Default != nil:
			v = *p.Default
		default:
			missing = append(missing, p.Name)
			continue
		}
		if err := p.check(v); err != nil {
			msg := fmt.Sprintf("Parameter '%s' %s", p.Name, err)
			if p.ConstraintDescription != "" {
				msg = fmt.Sprintf("Parameter '%s' failed to satisfy constraint: %s", p.Name, p.ConstraintDescription)
			}
			return nil, validation("%s", msg)
		}
		out = append(out, ParamValue{Key: p.Name, Value: v, NoEcho: p.NoEcho})
	}
	if len(missing) > 0 {
		return nil, validation("Parameters: [%s] must have values", strings.Join(missing, ", "))
	}
	return out, nil
}

func checkTags(tags []Tag) error {
	if len(tags) > 50 {
		return validation("1 validation error detected: Value at 'tags' failed to satisfy constraint: Member must have length less than or equal to 50")
	}
	for _, t := range tags {
		if t.Key == "" || len(t.Key) > 128 || len(t.Value) > 256 || t.Value == "" {
			return validation("1 validation error detected: a tag key must be 1 to 128 characters and a value 1 to 256 characters")
		}
		if strings.HasPrefix(strings.ToLower(t.Key), "aws:") {
			return validation("Invalid tag key %s: tag keys cannot start with aws:", clip(t.Key))
		}
	}
	return nil
}

func checkCapabilities(caps []string) error {
	for _, c := range caps {
		switch c {
		case "CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND":
		default:
			return validation("Requires capabilities : [%s] is not a valid capability", clip(c))
		}
	}
	return nil
}

// CreateStack starts creating a stack and returns its id. A retry with the
// same ClientRequestToken returns the same stack.
func (e *Engine) CreateStack(_ context.Context, in StackInput) (string, error) {
	if err := checkStackName(in.StackName); err != nil {
		return "", err
	}
	if strings.HasPrefix(in.StackName, "arn:") {
		return "", validation("1 validation error detected: Value '%s' at 'stackName' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z][-a-zA-Z0-9]*", clip(in.StackName))
	}
	if err := checkStackInput(in); err != nil {
		return "", err
	}
	switch in.OnFailure {
	case "", "ROLLBACK", "DO_NOTHING", "DELETE":
	default:
		return "", validation("1 validation error detected: Value '%s' at 'onFailure' failed to satisfy constraint: Member must satisfy enum value set: [DO_NOTHING, ROLLBACK, DELETE]", clip(in.OnFailure))
	}
	if in.OnFailure != "" && in.DisableRollback {
		return "", validation("You may specify either OnFailure or DisableRollback, but not both.")
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return "", ErrClosed
	}
	if id, ok := e.byName[in.StackName]; ok {
		s := e.stacks[id]
		if in.ClientRequestToken != "" && s.Tokens[in.ClientRequestToken] == opCreate {
			return s.ID, nil
		}
		if s.Status != ReviewInProgress {
			return "", refusal.Errorf(ErrAlreadyExists, "Stack [%s] already exists", in.StackName)
		}
	}
	t, err := e.ValidateTemplate(in.TemplateBody)
	if err != nil {
		return "", err
	}
	params, err := resolveParams(t, in.Parameters, nil)
	if err != nil {
		return "", err
	}
	if len(e.byName) >= e.o.MaxStacks {
		return "", refusal.Errorf(ErrLimitExceeded, "Limit for the number of stacks in this account (%d) has been reached", e.o.MaxStacks)
	}
	now := e.now()
	s := &stackRecord{
		ID: e.arn("stack", in.StackName), Name: in.StackName, Created: now, Template: in.TemplateBody,
		Description: t.Description, Params: params, Tags: in.Tags, Capabilities: in.Capabilities,
		NotificationARNs: in.NotificationARNs, DisableRollback: in.DisableRollback || in.OnFailure == "DO_NOTHING",
		OnFailure: in.OnFailure, TimeoutMinutes: in.TimeoutMinutes, TerminationProtection: in.TerminationProtection,
		RoleARN: in.RoleARN, Resources: map[string]*resourceState{}, Tokens: map[string]string{},
	}
	if old, ok := e.byName[in.StackName]; ok { // a stack under review is replaced
		s = e.stacks[old]
		s.Template, s.Description, s.Params, s.Tags = in.TemplateBody, t.Description, params, in.Tags
		s.Capabilities, s.NotificationARNs, s.DisableRollback = in.Capabilities, in.NotificationARNs, in.DisableRollback || in.OnFailure == "DO_NOTHING"
		s.OnFailure, s.TimeoutMinutes, s.TerminationProtection, s.RoleARN = in.OnFailure, in.TimeoutMinutes, in.TerminationProtection, in.RoleARN
	}
	if err := e.beginLocked(s, opCreate, in.ClientRequestToken, nil); err != nil {
		return "", err
	}
	return s.ID, nil
}

// beginLocked starts an operation on s: the stack's status, a stack event,
// durable; then the worker.
func (e *Engine) beginLocked(s *stackRecord, kind, token string, prep func(op *operation)) error {
	s.OpCounter++
	op := &operation{Kind: kind, ID: uuid.New(), Token: token, Phase: "apply"}
	var status, reason string
	switch kind {
	case opCreate:
		status, reason = CreateInProgress, "User Initiated"
	case opUpdate:
		status, reason = UpdateInProgress, "User Initiated"
	case opDelete:
		status, reason, op.Phase = DeleteInProgress, "User Initiated", "delete"
	}
	if prep != nil {
		prep(op)
	}
	prev := *s
	if token != "" {
		if s.Tokens == nil {
			s.Tokens = map[string]string{}
		}
		s.Tokens[token] = kind
	}
	s.Op, s.LastOpID, s.LastOp = op, op.ID, kind
	s.Status, s.Reason = status, ""
	if kind != opCreate {
		s.Updated = e.now()
	}
	ev := e.stackEventLocked(s, status, reason)
	if err := e.saveLocked(s, []event{ev}); err != nil {
		*s = prev
		return err
	}
	e.byName[s.Name] = s.ID
	e.stacks[s.ID] = s
	e.log.Info("stack operation", "stack", s.Name, "op", kind, "op_id", op.ID)
	e.startLocked(s)
	return nil
}

// stackEventLocked is a stack-level event (the next of s's sequence).
func (e *Engine) stackEventLocked(s *stackRecord, status, reason string) event {
	return e.eventLocked(s, s.Name, s.ID, "AWS::CloudFormation::Stack", status, reason, "")
}

func (e *Engine) eventLocked(s *stackRecord, logicalID, physicalID, typ, status, reason, props string) event {
	s.EventSeq++
	ev := event{
		ID: logicalID + "-" + status + "-" + e.now().Format("2006-01-02T15:04:05.000Z"), StackID: s.ID, StackName: s.Name,
		LogicalID: logicalID, PhysicalID: physicalID, Type: typ, Time: e.now(), Status: status, Reason: reason,
		Props: props, Seq: s.EventSeq,
	}
	if physicalID == s.ID && logicalID == s.Name {
		ev.ID = uuid.New()
	}
	if s.Op != nil {
		ev.Token, ev.OpID = s.Op.Token, s.Op.ID
	}
	return ev
}

// checkStackInput checks what creating and updating a stack both take:
// the request token, the tags and the capabilities.
func checkStackInput(in StackInput) error {
	if err := checkToken(in.ClientRequestToken); err != nil {
		return err
	}
	if err := checkTags(in.Tags); err != nil {
		return err
	}
	return checkCapabilities(in.Capabilities)
}

// UpdateStack starts updating a stack.
func (e *Engine) UpdateStack(_ context.Context, in StackInput) (string, error) {
	if err := checkStackName(in.StackName); err != nil {
		return "", err
	}
	if err := checkStackInput(in); err != nil {
		return "", err
	}
	if in.UsePreviousTemplate && in.TemplateBody != "" {
		return "", validation("You cannot specify both usePreviousTemplate and Template Body/Template URL")
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return "", ErrClosed
	}
	s, err := e.lookupLocked(in.StackName)
	if err != nil {
		return "", err
	}
	if in.ClientRequestToken != "" {
		if k, ok := s.Tokens[in.ClientRequestToken]; ok {
			if k == opUpdate {
				return s.ID, nil
			}
			return "", refusal.Errorf(ErrTokenAlreadyExists, "The client request token %s was used for another operation on stack %s", in.ClientRequestToken, s.Name)
		}
	}
	if err := updatable(s); err != nil {
		return "", err
	}
	body := in.TemplateBody
	if in.UsePreviousTemplate {
		body = s.Template
	}
	t, err := e.ValidateTemplate(body)
	if err != nil {
		return "", err
	}
	params, err := resolveParams(t, in.Parameters, s.Params)
	if err != nil {
		return "", err
	}
	tags := in.Tags
	if tags == nil {
		tags = s.Tags
	}
	changes, err := e.planLocked(s, t, params)
	if err != nil {
		return "", err
	}
	if len(changes) == 0 && body == s.Template && slices.Equal(params, s.Params) && slices.Equal(tags, s.Tags) {
		return "", validation(noUpdatesPerformed)
	}
	return s.ID, e.startUpdateLocked(s, body, t.Description, params, tags, in.NotificationARNs, in.Capabilities, in.DisableRollback, in.ClientRequestToken)
}

// updatable reports whether a stack's state allows an update.
func updatable(s *stackRecord) error {
	switch s.Status {
	case CreateComplete, UpdateComplete, UpdateRollbackComplete:
		return nil
	}
	return validation("Stack:%s is in %s state and can not be updated.", s.ID, s.Status)
}

func (e *Engine) startUpdateLocked(s *stackRecord, body, desc string, params []ParamValue, tags []Tag, notify, caps []string, disableRollback bool, token string) error {
	return e.beginLocked(s, opUpdate, token, func(op *operation) {
		op.PrevTemplate, op.PrevParams, op.PrevOutputs, op.PrevTags, op.PrevDesc = s.Template, s.Params, s.Outputs, s.Tags, s.Description
		op.Prev = map[string]*resourceState{}
		for id, r := range s.Resources {
			op.Prev[id] = r.clone()
		}
		s.Template, s.Description, s.Params, s.Tags = body, desc, params, tags
		if notify != nil {
			s.NotificationARNs = notify
		}
		if caps != nil {
			s.Capabilities = caps
		}
		s.DisableRollback = disableRollback
	})
}

// DeleteStack starts deleting a stack; deleting an unknown or deleted
// stack succeeds, as on AWS.
func (e *Engine) DeleteStack(_ context.Context, name string, retain []string, token string) error {
	if err := checkStackName(name); err != nil {
		return err
	}
	if err := checkToken(token); err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return ErrClosed
	}
	s, err := e.lookupLocked(name)
	if err != nil {
		return nil
	}
	if token != "" {
		if k, ok := s.Tokens[token]; ok {
			if k == opDelete {
				return nil
			}
			return refusal.Errorf(ErrTokenAlreadyExists, "The client request token %s was used for another operation on stack %s", token, s.Name)
		}
	}
	switch s.Status {
	case DeleteComplete, DeleteInProgress:
		return nil
	case CreateInProgress, UpdateInProgress, UpdateCompleteCleanupInProgress, RollbackInProgress,
		UpdateRollbackInProgress, UpdateRollbackCompleteCleanupInProgress:
		return validation("Stack [%s] cannot be deleted while in status %s", s.Name, s.Status)
	}
	if s.TerminationProtection {
		return validation("Stack [%s] cannot be deleted while TerminationProtection is enabled", s.Name)
	}
	if len(retain) > 0 && s.Status != DeleteFailed {
		return validation("Invalid operation on stack [%s]: RetainResources can only be specified for stacks in DELETE_FAILED state", s.Name)
	}
	for _, r := range retain {
		if s.Resources[r] == nil {
			return validation("The specified resources [%s] do not exist in the stack", r)
		}
	}
	return e.beginLocked(s, opDelete, token, func(op *operation) { op.Retain = retain })
}

// UpdateTerminationProtection sets a stack's termination protection.
func (e *Engine) UpdateTerminationProtection(_ context.Context, name string, enable bool) (string, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	s, err := e.lookupLocked(name)
	if err != nil {
		return "", err
	}
	if s.Status == DeleteComplete {
		return "", validation("Stack with id %s does not exist", clip(name))
	}
	prev := s.TerminationProtection
	s.TerminationProtection = enable
	if err := e.saveLocked(s, nil); err != nil {
		s.TerminationProtection = prev
		return "", err
	}
	return s.ID, nil
}

// Wait blocks until the stack's operation under way ends, ctx ends or
// maxWait passes; it returns the stack's status.
func (e *Engine) Wait(ctx context.Context, stackID string, maxWait time.Duration) string {
	deadline := time.Now().Add(maxWait)
	stop := context.AfterFunc(ctx, func() {
		e.mu.Lock()
		e.cond.Broadcast()
		e.mu.Unlock()
	})
	defer stop()
	t := time.AfterFunc(maxWait, func() {
		e.mu.Lock()
		e.cond.Broadcast()
		e.mu.Unlock()
	})
	defer t.Stop()
	e.mu.Lock()
	defer e.mu.Unlock()
	for {
		s := e.stacks[stackID]
		if s == nil {
			return ""
		}
		if s.Op == nil || e.closed || ctx.Err() != nil || !time.Now().Before(deadline) {
			return s.Status
		}
		e.cond.Wait()
	}
}
