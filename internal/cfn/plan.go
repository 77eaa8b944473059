package cfn

import (
	"errors"
	"slices"
	"sort"
)

// scopeLocked builds the evaluation scope of a stack's template t with
// params; res resolves resources.
func (e *Engine) scopeLocked(s *stackRecord, t *Template, params []ParamValue, res func(string) (string, map[string]string, bool)) *Scope {
	pv := make(map[string]string, len(params))
	for _, p := range params {
		pv[p.Key] = p.Value
	}
	return &Scope{
		T: t, Params: pv, NotificationARNs: s.NotificationARNs, AZs: e.o.AZs, Resource: res,
		Pseudo: map[string]string{
			"AWS::Region": e.o.Region, "AWS::AccountId": e.o.AccountID, "AWS::StackName": s.Name,
			"AWS::StackId": s.ID, "AWS::Partition": "aws", "AWS::URLSuffix": "amazonaws.com",
		},
		Import: func(name string) (string, error) {
			if !slices.Contains(s.ImportNames, name) {
				s.ImportNames = append(s.ImportNames, name)
			}
			return e.importLocked(s, name)
		},
	}
}

// importLocked returns the value of an export (of another live stack).
func (e *Engine) importLocked(s *stackRecord, name string) (string, error) {
	for _, o := range e.stacks {
		if o.Status == DeleteComplete || o.ID == s.ID {
			continue
		}
		for _, out := range o.Outputs {
			if out.ExportName == name {
				return out.Value, nil
			}
		}
	}
	return "", validation("No export named %s found. Rollback requested by user.", name)
}

// targets returns the resources of t whose condition holds.
func targets(t *Template, sc *Scope) (map[string]bool, error) {
	set := map[string]bool{}
	for _, id := range t.ResourceIDs {
		r := t.Resources[id]
		if r.Condition != "" {
			ok, err := sc.Condition(r.Condition)
			if err != nil {
				return nil, err
			}
			if !ok {
				continue
			}
		}
		set[id] = true
	}
	return set, nil
}

// runtimeDeps returns each target's dependencies, following only the
// Fn::If branches the conditions choose; a reference to a resource that is
// not created is CloudFormation's unresolved dependency error.
func runtimeDeps(t *Template, sc *Scope, set map[string]bool) (map[string][]string, error) {
	deps := map[string][]string{}
	var missing []string
	choose := func(c string) (bool, bool) {
		v, err := sc.Condition(c)
		return v, err == nil
	}
	for id := range set {
		r := t.Resources[id]
		ds := map[string]bool{}
		for _, d := range r.DependsOn {
			if !set[d] {
				missing = append(missing, d)
			}
			ds[d] = true
		}
		collectRefs(r.Properties, func(name string) {
			if t.Resources[name] == nil {
				return
			}
			if !set[name] {
				missing = append(missing, name)
			}
			ds[name] = true
		}, choose)
		for d := range ds {
			deps[id] = append(deps[id], d)
		}
		sort.Strings(deps[id])
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return nil, formatError("Unresolved resource dependencies [%s] in the Resources block of the template", missing[0])
	}
	return deps, nil
}

// planLocked computes the resource changes that updating s to t with
// params makes, as a change set shows them.
func (e *Engine) planLocked(s *stackRecord, t *Template, params []ParamValue) ([]Change, error) {
	action := map[string]string{}
	sc := e.scopeLocked(s, t, params, func(id string) (string, map[string]string, bool) {
		if a := action[id]; a == "Add" || a == "Replace" {
			return "", nil, false
		}
		r := s.Resources[id]
		if r == nil || r.PhysicalID == "" || r.Status == DeleteComplete {
			return "", nil, false
		}
		return r.PhysicalID, r.Attrs, true
	})
	set, err := targets(t, sc)
	if err != nil {
		return nil, err
	}
	deps, err := runtimeDeps(t, sc, set)
	if err != nil {
		return nil, err
	}
	order, err := t.order(func(id string) []string { return deps[id] }, set)
	if err != nil {
		return nil, err
	}
	var changes []Change
	for _, id := range order {
		decl := t.Resources[id]
		old := s.Resources[id]
		if old == nil || old.Status == DeleteComplete || old.Status == DeleteSkipped || (old.PhysicalID == "" && old.Status != CreateComplete) {
			action[id] = "Add"
			changes = append(changes, Change{Action: "Add", LogicalID: id, Type: decl.Type})
			continue
		}
		c := Change{Action: "Modify", LogicalID: id, PhysicalID: old.PhysicalID, Type: decl.Type, Replacement: "False"}
		if old.Type != decl.Type {
			c.Replacement = "True"
			action[id] = "Replace"
			changes = append(changes, c)
			continue
		}
		rt := e.o.Types[decl.Type]
		keys := map[string]bool{}
		for k := range decl.Properties {
			keys[k] = true
		}
		for k := range old.Props {
			keys[k] = true
		}
		names := make([]string, 0, len(keys))
		for k := range keys {
			names = append(names, k)
		}
		sort.Strings(names)
		replace, conditional := false, false
		for _, k := range names {
			var nv any
			dynamic := false
			if expr, ok := decl.Properties[k]; ok {
				v, err := sc.eval(expr)
				switch {
				case errors.Is(err, errNotReady):
					dynamic = true
				case err != nil:
					return nil, err
				default:
					nv = v
				}
			}
			if _, skip := nv.(noValue); skip {
				nv = nil
			}
			if !dynamic && equalValues(nv, old.Props[k]) {
				continue
			}
			recreate := "Never"
			if p := rt.Properties[k]; p != nil && p.Replace {
				if dynamic {
					recreate, conditional = "Conditionally", true
				} else {
					recreate, replace = "Always", true
				}
			}
			d := ChangeDetail{Name: k, RequiresRecreation: recreate, Evaluation: "Static", ChangeSource: "DirectModification"}
			if dynamic {
				d.Evaluation, d.ChangeSource = "Dynamic", "ResourceReference"
			}
			c.Details = append(c.Details, d)
		}
		if len(c.Details) == 0 {
			continue
		}
		c.Scope = []string{"Properties"}
		switch {
		case replace:
			c.Replacement = "True"
			action[id] = "Replace"
		case conditional:
			c.Replacement = "Conditional"
			action[id] = "Modify"
		default:
			action[id] = "Modify"
		}
		changes = append(changes, c)
	}
	var removed []string
	for id, r := range s.Resources {
		if !set[id] && r.Status != DeleteComplete && r.Status != DeleteSkipped {
			removed = append(removed, id)
		}
	}
	sort.Strings(removed)
	for _, id := range removed {
		r := s.Resources[id]
		changes = append(changes, Change{Action: "Remove", LogicalID: id, PhysicalID: r.PhysicalID, Type: r.Type})
	}
	return changes, nil
}
