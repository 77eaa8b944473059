package cfn

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"
)

// maxParallel bounds the resources one stack provisions at once.
const maxParallel = 8

// errInterrupted: the engine is closing; the operation resumes at the next
// Open.
var errInterrupted = errors.New("cfn: interrupted")

// startLocked starts the worker of a stack with an operation under way.
func (e *Engine) startLocked(s *stackRecord) {
	if e.running[s.ID] || e.closed {
		return
	}
	e.running[s.ID] = true
	e.wg.Add(1)
	go e.work(s.ID)
}

func (e *Engine) work(id string) {
	defer e.wg.Done()
	defer func() {
		e.mu.Lock()
		delete(e.running, id)
		e.cond.Broadcast()
		e.mu.Unlock()
	}()
	for e.ctx.Err() == nil {
		e.mu.Lock()
		s := e.stacks[id]
		if s == nil || s.Op == nil {
			e.mu.Unlock()
			return
		}
		kind, phase := s.Op.Kind, s.Op.Phase
		e.mu.Unlock()
		var err error
		switch {
		case phase == "delete":
			err = e.deletePhase(s)
		case kind == opCreate && phase == "apply":
			err = e.createPhase(s)
		case kind == opCreate && phase == "rollback":
			err = e.rollbackCreatePhase(s)
		case kind == opUpdate && phase == "apply":
			err = e.updatePhase(s)
		case kind == opUpdate && phase == "cleanup":
			err = e.cleanupPhase(s)
		case kind == opUpdate && phase == "rollback":
			err = e.rollbackUpdatePhase(s)
		case kind == opUpdate && phase == "rollback-cleanup":
			err = e.rollbackCleanupPhase(s)
		default:
			err = fmt.Errorf("cfn: unknown operation %s phase %s", kind, phase)
		}
		if errors.Is(err, errInterrupted) || e.ctx.Err() != nil {
			return
		}
		if err != nil {
			// A store failure: the operation stays recorded and resumes at
			// the next start; nothing more can be done now.
			e.log.Error("stack operation stopped", "stack_id", id, "op", kind, "phase", phase, "err", err)
			return
		}
	}
}

// token is a resource's idempotency token for one operation.
func token(stackID, logicalID, opID, purpose string) string {
	h := sha256.Sum256([]byte(stackID + "\x00" + logicalID + "\x00" + opID + "\x00" + purpose))
	return "cfn-" + hex.EncodeToString(h[:])[:40]
}

// reason is the public message of a resource failure (id "" for a failure
// of the stack's or change set's own: its template, outputs, exports).
// Only the messages of the domain's rules and of handler errors are
// public; anything else is logged and reported as an internal failure.
func (e *Engine) reason(s *stackRecord, id string, err error) string {
	var pe *PropertyError
	var he *HandlerError
	var ce *Error
	switch {
	case errors.As(err, &pe):
		return pe.msg
	case errors.As(err, &he):
		return fmt.Sprintf("Resource handler returned message: %q (HandlerErrorCode: %s)", he.Message, he.Code)
	case errors.As(err, &ce):
		return ce.Message
	case errors.Is(err, context.DeadlineExceeded):
		return "Resource timed out waiting for completion"
	}
	e.log.Error("resource provisioning failed", "stack", s.Name, "resource", id, "err", err)
	return "Internal Failure"
}

// runDAG runs do for every id once its dependencies among ids have
// succeeded, several at a time; after a failure it starts nothing new and
// waits for those under way. It returns the ids that failed.
func (e *Engine) runDAG(ids []string, deps map[string][]string, do func(id string) error) ([]string, error) {
	in := map[string]bool{}
	for _, id := range ids {
		in[id] = true
	}
	pending := map[string]int{}
	dependents := map[string][]string{}
	for _, id := range ids {
		for _, d := range deps[id] {
			if in[d] && d != id {
				pending[id]++
				dependents[d] = append(dependents[d], id)
			}
		}
	}
	var ready []string
	for _, id := range ids {
		if pending[id] == 0 {
			ready = append(ready, id)
		}
	}
	type result struct {
		id  string
		err error
	}
	results := make(chan result)
	running := 0
	var failed []string
	var hard error
	for len(ready) > 0 || running > 0 {
		for len(ready) > 0 && running < maxParallel && len(failed) == 0 && hard == nil {
			id := ready[0]
			ready = ready[1:]
			running++
			go func() { results <- result{id, do(id)} }()
		}
		if running == 0 {
			break
		}
		r := <-results
		running--
		switch {
		case r.err == nil:
			for _, d := range dependents[r.id] {
				if pending[d]--; pending[d] == 0 {
					ready = append(ready, d)
				}
			}
		case errors.Is(r.err, errInterrupted) || errors.Is(r.err, errStore):
			if hard == nil {
				hard = r.err
			}
		default:
			failed = append(failed, r.id)
		}
	}
	sort.Strings(failed)
	return failed, hard
}

// errStore marks a failure to persist state.
var errStore = errors.New("cfn: store")

func (e *Engine) saveOrWrap(s *stackRecord, evs ...event) error {
	if err := e.saveLocked(s, evs); err != nil {
		return fmt.Errorf("%w: %w", errStore, err)
	}
	return nil
}

// resourceScopeLocked resolves resources to their current state.
func (e *Engine) resourceScopeLocked(s *stackRecord, t *Template) *Scope {
	return e.scopeLocked(s, t, s.Params, func(id string) (string, map[string]string, bool) {
		r := s.Resources[id]
		if r == nil || r.PhysicalID == "" {
			return "", nil, false
		}
		switch r.Status {
		case CreateComplete, UpdateComplete, UpdateInProgress:
			return r.PhysicalID, r.Attrs, true
		}
		return "", nil, false
	})
}

// resolveLocked evaluates a resource's properties.
func (e *Engine) resolveLocked(s *stackRecord, t *Template, id string) (map[string]any, error) {
	decl := t.Resources[id]
	if decl.Properties == nil {
		return map[string]any{}, nil
	}
	v, err := e.resourceScopeLocked(s, t).Eval(decl.Properties)
	if err != nil {
		if errors.Is(err, errNotReady) {
			return nil, templateError("resource %s refers to a resource that was not created: %v", id, err)
		}
		return nil, err
	}
	m, _ := v.(map[string]any)
	if m == nil {
		m = map[string]any{}
	}
	return m, nil
}

// provision creates (or, with old set, replaces) one resource of the
// template: the resource's events, the provider call, its new state.
// prefix is CREATE or UPDATE (a replacement shows UPDATE_* events).
func (e *Engine) provision(s *stackRecord, t *Template, id, purpose string, prefix string) error {
	decl := t.Resources[id]
	rt := e.o.Types[decl.Type]
	e.mu.Lock()
	st := s.Resources[id]
	tok := token(s.ID, id, s.Op.ID, purpose)
	replacing := prefix == "UPDATE"
	if st == nil || st.Token != tok {
		st = &resourceState{LogicalID: id, Type: decl.Type, Token: tok}
	} else {
		st = st.clone()
	}
	st.Status, st.Reason, st.Updated = prefix+"_IN_PROGRESS", "", e.now()
	st.DeletionPolicy, st.UpdateReplacePolicy, st.Metadata = decl.DeletionPolicy, decl.UpdateReplacePolicy, decl.Metadata
	props, err := e.resolveLocked(s, t, id)
	var evs []event
	reason := ""
	if replacing {
		reason = "Requested update requires the creation of a new physical resource; hence creating one."
	}
	if err == nil {
		err = rt.validateProps(id, props)
	}
	if err == nil {
		st.Props = props
	}
	evs = append(evs, e.eventLocked(s, id, "", decl.Type, prefix+"_IN_PROGRESS", reason, marshalJSON(props)))
	s.Resources[id] = st
	if serr := e.saveOrWrap(s, evs...); serr != nil {
		e.mu.Unlock()
		return serr
	}
	e.mu.Unlock()
	if err != nil {
		return e.failResource(s, id, prefix+"_FAILED", err)
	}
	req := &Request{StackName: s.Name, StackID: s.ID, LogicalID: id, Token: tok, Props: props,
		Started: func(physical string) {
			e.mu.Lock()
			defer e.mu.Unlock()
			cur := s.Resources[id]
			if cur != st || cur.PhysicalID == physical {
				return
			}
			cur.PhysicalID = physical
			ev := e.eventLocked(s, id, physical, decl.Type, prefix+"_IN_PROGRESS", "Resource creation Initiated", "")
			if err := e.saveLocked(s, []event{ev}); err != nil {
				e.log.Error("record physical id", "stack", s.Name, "resource", id, "err", err)
			}
		}}
	out, err := rt.Provider.Create(e.ctx, req)
	if e.ctx.Err() != nil {
		return errInterrupted
	}
	if err != nil {
		return e.failResource(s, id, prefix+"_FAILED", err)
	}
	if replacing && e.samePhysical(s, id, out.PhysicalID) {
		// A custom name (an SNS topic's, found by name) gave back the
		// resource being replaced: the cleanup would delete the live one.
		return e.failResource(s, id, prefix+"_FAILED", validation("CloudFormation cannot update a stack when a custom-named resource requires replacing. Rename %s and update the stack again.", out.PhysicalID))
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if st.PhysicalID == "" || st.PhysicalID != out.PhysicalID {
		st.PhysicalID = out.PhysicalID
		evs = []event{e.eventLocked(s, id, out.PhysicalID, decl.Type, prefix+"_IN_PROGRESS", "Resource creation Initiated", "")}
	} else {
		evs = nil
	}
	st.Attrs, st.Status, st.Updated = out.Attributes, prefix+"_COMPLETE", e.now()
	evs = append(evs, e.eventLocked(s, id, out.PhysicalID, decl.Type, prefix+"_COMPLETE", "", ""))
	return e.saveOrWrap(s, evs...)
}

// samePhysical tells whether physical is the physical id of the resource
// that the current update replaces under the logical id.
func (e *Engine) samePhysical(s *stackRecord, id, physical string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	prev := s.Op.Prev[id]
	return prev != nil && prev.PhysicalID != "" && prev.PhysicalID == physical
}

func (e *Engine) failResource(s *stackRecord, id, status string, cause error) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	st := s.Resources[id]
	st.Status, st.Reason, st.Updated = status, e.reason(s, id, cause), e.now()
	ev := e.eventLocked(s, id, st.PhysicalID, st.Type, status, st.Reason, "")
	if err := e.saveOrWrap(s, ev); err != nil {
		return err
	}
	return cause
}

// remove deletes one resource (state st, not necessarily the current one
// of its logical id). With skipRetain false the deletion policy is
// ignored.
func (e *Engine) remove(s *stackRecord, st *resourceState, policy string) error {
	e.mu.Lock()
	if policy == "Retain" || (policy == "RetainExceptOnCreate" && s.Op.Kind != opCreate) {
		st.Status, st.Updated = DeleteSkipped, e.now()
		ev := e.eventLocked(s, st.LogicalID, st.PhysicalID, st.Type, DeleteSkipped, "", "")
		err := e.saveOrWrap(s, ev)
		e.mu.Unlock()
		return err
	}
	st.Status, st.Reason, st.Updated = DeleteInProgress, "", e.now()
	ev := e.eventLocked(s, st.LogicalID, st.PhysicalID, st.Type, DeleteInProgress, "", "")
	if err := e.saveOrWrap(s, ev); err != nil {
		e.mu.Unlock()
		return err
	}
	e.mu.Unlock()
	var err error
	if st.PhysicalID != "" {
		rt := e.o.Types[st.Type]
		if rt == nil {
			err = fmt.Errorf("cfn: resource type %s is no longer known", st.Type)
		} else {
			err = rt.Provider.Delete(e.ctx, &Request{StackName: s.Name, StackID: s.ID, LogicalID: st.LogicalID,
				PhysicalID: st.PhysicalID, Token: st.Token, Props: st.Props, Attributes: st.Attrs})
		}
	}
	if e.ctx.Err() != nil {
		return errInterrupted
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if err != nil {
		st.Status, st.Reason, st.Updated = DeleteFailed, e.reason(s, st.LogicalID, err), e.now()
		ev := e.eventLocked(s, st.LogicalID, st.PhysicalID, st.Type, DeleteFailed, st.Reason, "")
		if serr := e.saveOrWrap(s, ev); serr != nil {
			return serr
		}
		return err
	}
	st.Status, st.Updated = DeleteComplete, e.now()
	ev = e.eventLocked(s, st.LogicalID, st.PhysicalID, st.Type, DeleteComplete, "", "")
	return e.saveOrWrap(s, ev)
}

// parseStackTemplate parses a stack's stored template.
func (e *Engine) parseStackTemplate(body string) (*Template, error) {
	return ParseTemplate(body, e.o.Types)
}

// transition ends a phase: the stack's new status (and event); next is the
// next phase, "" when the operation is over.
func (e *Engine) transition(s *stackRecord, status, reason, next string, change func()) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if change != nil {
		change()
	}
	s.Status, s.Reason = status, reason
	ev := e.stackEventLocked(s, status, reason)
	if next == "" {
		s.Op = nil
		s.Updated = e.now()
		if status == DeleteComplete {
			s.Deleted = e.now()
			delete(e.byName, s.Name)
		}
	} else {
		s.Op.Phase = next
	}
	var css []*changeSetRecord
	if next == "" {
		for _, c := range e.changeSets {
			if c.StackID == s.ID && c.ExecStatus == execInProgress {
				c.ExecStatus = execComplete
				if strings.HasSuffix(status, "FAILED") || strings.Contains(status, "ROLLBACK") {
					c.ExecStatus = execFailed
				}
				css = append(css, c)
			}
			if status == DeleteComplete && c.StackID == s.ID {
				c.Status = csDeleteComplete
				css = append(css, c)
				delete(e.changeSets, c.ID)
			}
		}
	}
	if err := e.saveLocked(s, []event{ev}, css...); err != nil {
		return fmt.Errorf("%w: %w", errStore, err)
	}
	if next == "" {
		e.log.Info("stack operation done", "stack", s.Name, "status", status)
		e.cond.Broadcast()
	}
	return nil
}

// createPhase creates every resource of the stack's template.
func (e *Engine) createPhase(s *stackRecord) error {
	t, order, deps, err := e.planCreate(s)
	if err != nil {
		return e.failOp(s, e.reason(s, "", err), nil)
	}
	ctxDeadline := time.Time{}
	if s.TimeoutMinutes > 0 {
		ctxDeadline = s.Created.Add(time.Duration(s.TimeoutMinutes) * time.Minute)
	}
	failed, hard := e.runDAG(order, deps, func(id string) error {
		e.mu.Lock()
		st := s.Resources[id]
		done := st != nil && st.Status == CreateComplete
		e.mu.Unlock()
		if done {
			return nil
		}
		if !ctxDeadline.IsZero() && e.now().After(ctxDeadline) {
			return e.failResource(s, id, CreateFailed, validation("Resource creation cancelled: the stack's timeout of %d minutes passed", s.TimeoutMinutes))
		}
		return e.provision(s, t, id, "create", "CREATE")
	})
	if hard != nil {
		return hard
	}
	if len(failed) > 0 {
		return e.failOp(s, fmt.Sprintf("The following resource(s) failed to create: [%s]. ", strings.Join(failed, ", ")), failed)
	}
	outs, err := e.outputs(s, t)
	if err != nil {
		return e.failOp(s, e.reason(s, "", err), nil)
	}
	return e.transition(s, CreateComplete, "", "", func() { s.Outputs = outs })
}

// planCreate returns the stack's template, its resources to create in
// dependency order and their dependencies.
func (e *Engine) planCreate(s *stackRecord) (*Template, []string, map[string][]string, error) {
	t, err := e.parseStackTemplate(s.Template)
	if err != nil {
		return nil, nil, nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	sc := e.resourceScopeLocked(s, t)
	set, err := targets(t, sc)
	if err != nil {
		return nil, nil, nil, err
	}
	deps, err := runtimeDeps(t, sc, set)
	if err != nil {
		return nil, nil, nil, err
	}
	order, err := t.order(func(id string) []string { return deps[id] }, set)
	if err != nil {
		return nil, nil, nil, err
	}
	return t, order, deps, nil
}

// failOp ends the apply phase of a create or update that failed: a
// rollback, or the FAILED status when rollback is disabled.
func (e *Engine) failOp(s *stackRecord, reason string, failed []string) error {
	e.mu.Lock()
	kind, disable, onFailure := s.Op.Kind, s.DisableRollback, s.OnFailure
	e.mu.Unlock()
	if kind == opCreate {
		if disable {
			return e.transition(s, CreateFailed, reason, "", nil)
		}
		if onFailure == "DELETE" {
			reason += "Delete requested by user."
		} else {
			reason += "Rollback requested by user."
		}
		return e.transition(s, RollbackInProgress, reason, "rollback", func() { s.Op.Failed = failed })
	}
	if disable {
		return e.transition(s, UpdateFailed, reason, "", nil)
	}
	return e.transition(s, UpdateRollbackInProgress, reason, "rollback", func() { s.Op.Failed = failed })
}

// outputs evaluates the template's outputs and checks its exports.
func (e *Engine) outputs(s *stackRecord, t *Template) ([]Output, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	sc := e.resourceScopeLocked(s, t)
	var out []Output
	for _, o := range t.Outputs {
		if o.Condition != "" {
			ok, err := sc.Condition(o.Condition)
			if err != nil {
				return nil, err
			}
			if !ok {
				continue
			}
		}
		v, err := sc.Eval(o.Value)
		if err != nil {
			return nil, err
		}
		str, err := scalarString(v)
		if err != nil {
			if l, ok := v.([]any); ok {
				parts := make([]string, len(l))
				for i, x := range l {
					parts[i], _ = scalarString(x)
				}
				str = strings.Join(parts, ",")
			} else {
				return nil, templateError("Output %s must be a string or a list of strings", o.Name)
			}
		}
		oo := Output{Key: o.Name, Value: str, Description: o.Description}
		if o.Export != nil {
			ev, err := sc.Eval(o.Export)
			if err != nil {
				return nil, err
			}
			name, err := scalarString(ev)
			if err != nil || name == "" {
				return nil, templateError("Export name of output %s must be a non-empty string", o.Name)
			}
			for _, other := range e.stacks {
				if other.ID == s.ID || other.Status == DeleteComplete {
					continue
				}
				for _, x := range other.Outputs {
					if x.ExportName == name {
						return nil, validation("Export with name %s is already exported by stack %s", name, other.Name)
					}
				}
			}
			oo.ExportName = name
		}
		out = append(out, oo)
	}
	return out, nil
}

// liveResources returns the resources of s that exist (or may exist) in
// reverse-deletion order data: ids and dependencies from t.
func liveIDs(s *stackRecord) []string {
	var ids []string
	for id, r := range s.Resources {
		switch r.Status {
		case DeleteComplete, DeleteSkipped:
			continue
		}
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// reverseDeps: to delete, a resource waits for the resources that depend
// on it.
func reverseDeps(t *Template, ids []string) map[string][]string {
	in := map[string]bool{}
	for _, id := range ids {
		in[id] = true
	}
	rev := map[string][]string{}
	for _, id := range ids {
		if t == nil || t.Resources[id] == nil {
			continue
		}
		for _, d := range t.staticDeps(id) {
			if in[d] {
				rev[d] = append(rev[d], id)
			}
		}
	}
	return rev
}

// deleteAll deletes the live resources of s in reverse dependency order.
func (e *Engine) deleteAll(s *stackRecord, t *Template, onCreate bool) ([]string, error) {
	e.mu.Lock()
	ids := liveIDs(s)
	retain := []string{}
	if s.Op != nil {
		retain = s.Op.Retain
	}
	e.mu.Unlock()
	return e.runDAG(ids, reverseDeps(t, ids), func(id string) error {
		e.mu.Lock()
		st := s.Resources[id]
		policy := st.DeletionPolicy
		if slices.Contains(retain, id) {
			policy = "Retain"
		}
		if onCreate && policy == "RetainExceptOnCreate" {
			policy = "Delete"
		}
		if st.PhysicalID == "" && st.Status != DeleteFailed {
			// Never created: nothing to delete.
			st.Status = DeleteComplete
			ev := e.eventLocked(s, id, "", st.Type, DeleteComplete, "", "")
			err := e.saveOrWrap(s, ev)
			e.mu.Unlock()
			return err
		}
		e.mu.Unlock()
		return e.remove(s, st, policy)
	})
}

func (e *Engine) rollbackCreatePhase(s *stackRecord) error {
	t, _ := e.parseStackTemplate(s.Template)
	failed, hard := e.deleteAll(s, t, true)
	if hard != nil {
		return hard
	}
	if len(failed) > 0 {
		return e.transition(s, RollbackFailed, fmt.Sprintf("The following resource(s) failed to delete: [%s]. ", strings.Join(failed, ", ")), "", nil)
	}
	e.mu.Lock()
	del := s.OnFailure == "DELETE"
	e.mu.Unlock()
	if del {
		return e.transition(s, DeleteComplete, "", "", nil)
	}
	e.mu.Lock()
	why := s.Reason
	e.mu.Unlock()
	return e.transition(s, RollbackComplete, why, "", nil)
}

func (e *Engine) deletePhase(s *stackRecord) error {
	e.mu.Lock()
	var users []string
	for _, out := range s.Outputs {
		if out.ExportName == "" {
			continue
		}
		for _, o := range e.stacks {
			if o.ID != s.ID && o.Status != DeleteComplete && slices.Contains(o.Imports(), out.ExportName) {
				users = append(users, fmt.Sprintf("Export %s cannot be deleted as it is in use by %s", out.ExportName, o.Name))
			}
		}
	}
	e.mu.Unlock()
	if len(users) > 0 {
		return e.transition(s, DeleteFailed, strings.Join(users, " and "), "", nil)
	}
	t, _ := e.parseStackTemplate(s.Template)
	failed, hard := e.deleteAll(s, t, false)
	if hard != nil {
		return hard
	}
	if len(failed) > 0 {
		return e.transition(s, DeleteFailed, fmt.Sprintf("The following resource(s) failed to delete: [%s]. ", strings.Join(failed, ", ")), "", nil)
	}
	return e.transition(s, DeleteComplete, "", "", func() { s.Outputs = nil })
}
