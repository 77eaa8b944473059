package cfn

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
)

// updatePhase brings the stack's resources to its (new) template: adds,
// in-place updates and replacements, in dependency order.
func (e *Engine) updatePhase(s *stackRecord) error {
	t, err := e.parseStackTemplate(s.Template)
	if err != nil {
		return e.failOp(s, e.reason(s, "", err), nil)
	}
	e.mu.Lock()
	s.ImportNames = nil
	if s.Op.Actions == nil {
		s.Op.Actions = map[string]string{}
	}
	sc := e.resourceScopeLocked(s, t)
	set, err := targets(t, sc)
	var deps map[string][]string
	var order []string
	if err == nil {
		deps, err = runtimeDeps(t, sc, set)
	}
	if err == nil {
		order, err = t.order(func(id string) []string { return deps[id] }, set)
	}
	e.mu.Unlock()
	if err != nil {
		return e.failOp(s, e.reason(s, "", err), nil)
	}
	failed, hard := e.runDAG(order, deps, func(id string) error { return e.updateResource(s, t, id) })
	if hard != nil {
		return hard
	}
	if len(failed) > 0 {
		return e.failOp(s, fmt.Sprintf("The following resource(s) failed to update: [%s]. ", strings.Join(failed, ", ")), failed)
	}
	outs, err := e.outputs(s, t)
	if err != nil {
		return e.failOp(s, e.reason(s, "", err), nil)
	}
	if err := e.checkExportsInUse(s, outs); err != nil {
		return e.failOp(s, e.reason(s, "", err), nil)
	}
	return e.transition(s, UpdateCompleteCleanupInProgress, "", "cleanup", func() {
		s.Outputs = outs
		s.Op.Retired = nil
		for _, id := range sortedKeys(s.Op.Prev) {
			prev := s.Op.Prev[id]
			if !isLive(prev) {
				continue
			}
			if !set[id] || s.Op.Actions[id] == "replace" {
				r := prev.clone()
				if set[id] {
					r.DeletionPolicy = prev.UpdateReplacePolicy
				}
				s.Op.Retired = append(s.Op.Retired, r)
			}
		}
	})
}

func isLive(r *resourceState) bool {
	return r != nil && r.Status != DeleteComplete && r.Status != DeleteSkipped && (r.PhysicalID != "" || r.Status == CreateComplete)
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// checkExportsInUse refuses an update that changes or drops an export
// another stack imports.
func (e *Engine) checkExportsInUse(s *stackRecord, outs []Output) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, old := range s.Op.PrevOutputs {
		if old.ExportName == "" {
			continue
		}
		i := slices.IndexFunc(outs, func(o Output) bool { return o.ExportName == old.ExportName })
		if i >= 0 && outs[i].Value == old.Value {
			continue
		}
		for _, o := range e.stacks {
			if o.ID != s.ID && o.Status != DeleteComplete && slices.Contains(o.ImportNames, old.ExportName) {
				return validation("Cannot update export %s as it is in use by %s", old.ExportName, o.Name)
			}
		}
	}
	return nil
}

// updateResource applies the template to one resource.
func (e *Engine) updateResource(s *stackRecord, t *Template, id string) error {
	decl := t.Resources[id]
	rt := e.o.Types[decl.Type]
	e.mu.Lock()
	prev, cur := s.Op.Prev[id], s.Resources[id]
	if cur == nil && isLive(prev) {
		// The stored stack lost the resource's state (a damaged
		// record; FuzzStoredRecords): it is as it was before the update.
		cur = prev.clone()
		s.Resources[id] = cur
	}
	action := s.Op.Actions[id]
	if action != "" && cur != nil && (cur.Status == UpdateComplete || cur.Status == CreateComplete) {
		e.mu.Unlock()
		return nil // done before a restart
	}
	if !isLive(prev) {
		s.Op.Actions[id] = "add"
		s.Op.Touched = appendOnce(s.Op.Touched, id)
		e.mu.Unlock()
		return e.provision(s, t, id, "create", "CREATE")
	}
	props, err := e.resolveLocked(s, t, id)
	if err != nil {
		e.mu.Unlock()
		return e.failResourceLocked(s, id, err)
	}
	replace := prev.Type != decl.Type
	changed := false
	for k := range union(props, prev.Props) {
		if !equalValues(props[k], prev.Props[k]) {
			changed = true
			if p := rt.Properties[k]; p != nil && p.Replace {
				replace = true
			}
		}
	}
	if !changed && !replace {
		cur.DeletionPolicy, cur.UpdateReplacePolicy, cur.Metadata = decl.DeletionPolicy, decl.UpdateReplacePolicy, decl.Metadata
		e.mu.Unlock()
		return nil
	}
	s.Op.Touched = appendOnce(s.Op.Touched, id)
	if replace {
		s.Op.Actions[id] = "replace"
		e.mu.Unlock()
		return e.provision(s, t, id, "replace", "UPDATE")
	}
	s.Op.Actions[id] = "modify"
	st := cur
	st.Status, st.Reason, st.Updated = UpdateInProgress, "", e.now()
	st.DeletionPolicy, st.UpdateReplacePolicy, st.Metadata = decl.DeletionPolicy, decl.UpdateReplacePolicy, decl.Metadata
	ev := e.eventLocked(s, id, st.PhysicalID, st.Type, UpdateInProgress, "", marshalJSON(props))
	if err := e.saveOrWrap(s, ev); err != nil {
		e.mu.Unlock()
		return err
	}
	e.mu.Unlock()
	if err := rt.validateProps(id, props); err != nil {
		return e.failResource(s, id, UpdateFailed, err)
	}
	out, err := e.providerUpdate(s, id, rt.Provider, &Request{StackName: s.Name, StackID: s.ID, LogicalID: id, PhysicalID: prev.PhysicalID,
		Token: prev.Token, Props: props, OldProps: prev.Props, Attributes: prev.Attrs})
	if err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	st.Props, st.Status, st.Updated = props, UpdateComplete, e.now()
	if out.Attributes != nil {
		st.Attrs = out.Attributes
	}
	ev = e.eventLocked(s, id, st.PhysicalID, st.Type, UpdateComplete, "", "")
	return e.saveOrWrap(s, ev)
}

func (e *Engine) failResourceLocked(s *stackRecord, id string, cause error) error {
	st := s.Resources[id]
	st.Status, st.Reason, st.Updated = UpdateFailed, e.reason(s, id, cause), e.now()
	ev := e.eventLocked(s, id, st.PhysicalID, st.Type, UpdateFailed, st.Reason, "")
	if err := e.saveOrWrap(s, ev); err != nil {
		return err
	}
	return cause
}

func union(a, b map[string]any) map[string]bool {
	out := map[string]bool{}
	for k := range a {
		out[k] = true
	}
	for k := range b {
		out[k] = true
	}
	return out
}

func appendOnce(l []string, s string) []string {
	if slices.Contains(l, s) {
		return l
	}
	return append(l, s)
}

// cleanupPhase deletes what a successful update retired: resources removed
// from the template and the old physical resources of replaced ones.
func (e *Engine) cleanupPhase(s *stackRecord) error {
	e.mu.Lock()
	prevT, _ := e.parseStackTemplate(s.Op.PrevTemplate)
	retired := s.Op.Retired
	e.mu.Unlock()
	failed := e.deleteRetired(s, prevT, retired)
	if failed != nil {
		return failed
	}
	return e.transition(s, UpdateComplete, "", "", func() {
		t, _ := e.parseStackTemplate(s.Template)
		for id := range s.Resources {
			if t == nil || t.Resources[id] == nil {
				delete(s.Resources, id)
			}
		}
	})
}

// deleteRetired deletes retired physical resources, dependents first; a
// failure to delete one is recorded in its events and otherwise ignored,
// as CloudFormation does in cleanup phases. It returns only interruption
// or store errors.
func (e *Engine) deleteRetired(s *stackRecord, t *Template, retired []*resourceState) error {
	byID := map[string]*resourceState{}
	var ids []string
	for _, r := range retired {
		if r.Status == DeleteComplete || r.Status == DeleteSkipped {
			continue
		}
		key := r.LogicalID + "/" + r.PhysicalID
		byID[key] = r
		ids = append(ids, key)
	}
	sort.Strings(ids)
	deps := map[string][]string{}
	if t != nil {
		logical := map[string]string{}
		for _, k := range ids {
			logical[byID[k].LogicalID] = k
		}
		lids := make([]string, 0, len(logical))
		for l := range logical {
			lids = append(lids, l)
		}
		for d, users := range reverseDeps(t, lids) {
			for _, u := range users {
				deps[logical[d]] = append(deps[logical[d]], logical[u])
			}
		}
	}
	_, hard := e.runDAG(ids, deps, func(k string) error {
		r := byID[k]
		return e.remove(s, r, r.DeletionPolicy)
	})
	return hard
}

// rollbackUpdatePhase restores what the failed update changed, newest
// first.
func (e *Engine) rollbackUpdatePhase(s *stackRecord) error {
	e.mu.Lock()
	touched := slices.Clone(s.Op.Touched)
	e.mu.Unlock()
	slices.Reverse(touched)
	var failed []string
	for _, id := range touched {
		if err := e.rollbackResource(s, id); err != nil {
			if isHard(err) {
				return err
			}
			failed = append(failed, id)
		}
	}
	if len(failed) > 0 {
		return e.transition(s, UpdateRollbackFailed, fmt.Sprintf("The following resource(s) failed to update: [%s]. ", strings.Join(failed, ", ")), "", nil)
	}
	return e.transition(s, UpdateRollbackCompleteCleanupInProgress, "", "rollback-cleanup", func() {
		op := s.Op
		s.Template, s.Params, s.Outputs, s.Tags, s.Description = op.PrevTemplate, op.PrevParams, op.PrevOutputs, op.PrevTags, op.PrevDesc
		op.Retired = nil
		for _, id := range op.Touched {
			cur := s.Resources[id]
			switch op.Actions[id] {
			case "add", "replace":
				if cur != nil && cur.PhysicalID != "" && cur != op.Prev[id] && (op.Prev[id] == nil || cur.PhysicalID != op.Prev[id].PhysicalID) {
					r := cur.clone()
					r.DeletionPolicy = "Delete"
					op.Retired = append(op.Retired, r)
				}
			}
		}
		for _, id := range op.Touched {
			if prev := op.Prev[id]; isLive(prev) {
				s.Resources[id] = prev.clone()
				if s.Resources[id].Status != CreateComplete {
					s.Resources[id].Status = UpdateComplete
				}
			}
		}
	})
}

// providerUpdate has the provider update a resource in place; a failure
// fails the resource, an operation interrupted meanwhile is
// errInterrupted.
func (e *Engine) providerUpdate(s *stackRecord, id string, p Provider, r *Request) (Outcome, error) {
	out, err := p.Update(e.ctx, r)
	if e.ctx.Err() != nil {
		return Outcome{}, errInterrupted
	}
	if err != nil {
		return Outcome{}, e.failResource(s, id, UpdateFailed, err)
	}
	return out, nil
}

func isHard(err error) bool {
	return errors.Is(err, errInterrupted) || errors.Is(err, errStore)
}

func (e *Engine) rollbackResource(s *stackRecord, id string) error {
	e.mu.Lock()
	op := s.Op
	if slices.Contains(op.RolledBack, id) || op.Actions[id] != "modify" {
		e.mu.Unlock()
		return nil
	}
	prev, cur := op.Prev[id], s.Resources[id]
	rt := e.o.Types[prev.Type]
	cur.Status, cur.Updated = UpdateInProgress, e.now()
	ev := e.eventLocked(s, id, cur.PhysicalID, cur.Type, UpdateInProgress, "", marshalJSON(prev.Props))
	if err := e.saveOrWrap(s, ev); err != nil {
		e.mu.Unlock()
		return err
	}
	e.mu.Unlock()
	out, err := e.providerUpdate(s, id, rt.Provider, &Request{StackName: s.Name, StackID: s.ID, LogicalID: id, PhysicalID: prev.PhysicalID,
		Token: prev.Token, Props: prev.Props, OldProps: cur.Props, Attributes: cur.Attrs})
	if err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	cur.Props, cur.Status, cur.Updated = prev.Props, UpdateComplete, e.now()
	if out.Attributes != nil {
		cur.Attrs = out.Attributes
	}
	op.RolledBack = append(op.RolledBack, id)
	ev = e.eventLocked(s, id, cur.PhysicalID, cur.Type, UpdateComplete, "", "")
	return e.saveOrWrap(s, ev)
}

// rollbackCleanupPhase deletes what the failed update created.
func (e *Engine) rollbackCleanupPhase(s *stackRecord) error {
	e.mu.Lock()
	t, _ := e.parseStackTemplate(s.Template)
	retired := s.Op.Retired
	e.mu.Unlock()
	if err := e.deleteRetired(s, t, retired); err != nil {
		return err
	}
	return e.transition(s, UpdateRollbackComplete, "", "", func() {
		for id := range s.Resources {
			if !isLive(s.Op.Prev[id]) {
				delete(s.Resources, id)
			}
		}
	})
}
