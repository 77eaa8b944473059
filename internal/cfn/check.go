package cfn

import (
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
)

// Pseudo parameters.
var pseudoParams = []string{"AWS::AccountId", "AWS::NotificationARNs", "AWS::NoValue", "AWS::Partition", "AWS::Region", "AWS::StackId", "AWS::StackName", "AWS::URLSuffix"}

// subVarRe finds ${…} in a Fn::Sub string; ${!…} is a literal.
var subVarRe = regexp.MustCompile(`\$\{([^}]*)\}`)

// where is the part of a template an expression is in (some functions and
// references are allowed only in some parts).
type where int

const (
	inResource where = iota
	inOutput
	inCondition
	inExportName
)

// checker walks the template statically: function shapes, references to
// parameters, resources, attributes, mappings and conditions.
type checker struct {
	t       *Template
	types   Registry
	missing []string // unresolved references (resources)
}

// check validates every expression of the template and the dependency
// graph.
func (t *Template) check(types Registry) error {
	c := &checker{t: t, types: types}
	names := make([]string, 0, len(t.Conditions))
	for n := range t.Conditions {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if err := c.cond(t.Conditions[n], "Conditions/"+n); err != nil {
			return err
		}
	}
	if err := c.conditionCycles(); err != nil {
		return err
	}
	for _, id := range t.ResourceIDs {
		r := t.Resources[id]
		if r.Condition != "" {
			if _, ok := t.Conditions[r.Condition]; !ok {
				return formatError("Unresolved dependencies [%s]. Cannot reference resources in the Conditions block of the template", r.Condition)
			}
		}
		for _, d := range r.DependsOn {
			if _, ok := t.Resources[d]; !ok {
				c.missing = append(c.missing, d)
			}
		}
		if r.Properties != nil {
			if err := c.expr(r.Properties, inResource); err != nil {
				return err
			}
		}
	}
	for _, o := range t.Outputs {
		if o.Condition != "" {
			if _, ok := t.Conditions[o.Condition]; !ok {
				return formatError("Unresolved dependencies [%s]. Cannot reference resources in the Conditions block of the template", o.Condition)
			}
		}
		if err := c.expr(o.Value, inOutput); err != nil {
			return err
		}
		if o.Export != nil {
			if err := c.expr(o.Export, inExportName); err != nil {
				return err
			}
		}
	}
	if len(c.missing) > 0 {
		sort.Strings(c.missing)
		return formatError("Unresolved resource dependencies [%s] in the Resources block of the template", strings.Join(slices.Compact(c.missing), ", "))
	}
	all := map[string]bool{}
	for _, id := range t.ResourceIDs {
		all[id] = true
	}
	_, err := t.order(func(id string) []string {
		return t.staticDeps(id)
	}, all)
	return err
}

// intrinsic returns the function name and argument of a one-key map
// whose key names an intrinsic function.
func intrinsic(v any) (string, any, bool) {
	m, ok := v.(map[string]any)
	if !ok || len(m) != 1 {
		return "", nil, false
	}
	for k, a := range m {
		if k == "Ref" || strings.HasPrefix(k, "Fn::") {
			return k, a, true
		}
	}
	return "", nil, false
}

func (c *checker) refTarget(name string, w where) error {
	switch {
	case slices.Contains(pseudoParams, name), c.t.parameter(name) != nil:
		return nil
	case c.t.Resources[name] != nil:
		if w == inCondition {
			return formatError("Unresolved dependencies [%s]. Cannot reference resources in the Conditions block of the template", name)
		}
		if w == inExportName {
			return templateError("the Export Name of an output cannot depend on resource %s", name)
		}
		return nil
	}
	if w == inCondition {
		return formatError("Unresolved dependencies [%s]. Cannot reference resources in the Conditions block of the template", name)
	}
	c.missing = append(c.missing, name)
	return nil
}

func (c *checker) getAtt(arg any, w where) error {
	l, ok := arg.([]any)
	if !ok || len(l) != 2 {
		return templateError("every Fn::GetAtt object requires two non-empty parameters.")
	}
	res, ok := l[0].(string)
	if !ok || res == "" {
		return templateError("every Fn::GetAtt object requires two non-empty parameters.")
	}
	if w == inCondition || w == inExportName {
		return templateError("Fn::GetAtt is not supported in this part of the template (%s)", res)
	}
	r := c.t.Resources[res]
	if r == nil {
		return templateError("instance of Fn::GetAtt references undefined resource %s", res)
	}
	switch attr := l[1].(type) {
	case string:
		if attr == "" {
			return templateError("every Fn::GetAtt object requires two non-empty parameters.")
		}
		if rt := c.types[r.Type]; rt != nil && !slices.Contains(rt.Attributes, attr) {
			return templateError("resource %s does not support attribute type %s in Fn::GetAtt", res, attr)
		}
	default:
		return c.expr(attr, w)
	}
	return nil
}

func (c *checker) sub(arg any, w where) error {
	var s string
	vars := map[string]any{}
	switch a := arg.(type) {
	case string:
		s = a
	case []any:
		if len(a) != 2 {
			return templateError("One or more Fn::Sub intrinsic functions don't specify expected arguments. Specify a string as first argument, and an optional second argument to specify a mapping of values to replace in the string")
		}
		var ok bool
		if s, ok = a[0].(string); !ok {
			return templateError("One or more Fn::Sub intrinsic functions don't specify expected arguments. Specify a string as first argument, and an optional second argument to specify a mapping of values to replace in the string")
		}
		if vars, ok = a[1].(map[string]any); !ok {
			return templateError("One or more Fn::Sub intrinsic functions don't specify expected arguments. Specify a string as first argument, and an optional second argument to specify a mapping of values to replace in the string")
		}
		for _, v := range vars {
			if err := c.expr(v, w); err != nil {
				return err
			}
		}
	default:
		return templateError("One or more Fn::Sub intrinsic functions don't specify expected arguments. Specify a string as first argument, and an optional second argument to specify a mapping of values to replace in the string")
	}
	for _, name := range subNames(s, vars) {
		if res, attr, dotted := strings.Cut(name, "."); dotted && !strings.HasPrefix(name, "AWS::") {
			if err := c.getAtt([]any{res, attr}, w); err != nil {
				return err
			}
			continue
		}
		if err := c.refTarget(name, w); err != nil {
			return err
		}
	}
	return nil
}

// subNames returns the names Fn::Sub's string s refers to: each ${name}
// that is neither a literal (${!…}) nor one of vars.
func subNames(s string, vars map[string]any) []string {
	var names []string
	for _, m := range subVarRe.FindAllStringSubmatch(s, -1) {
		name := strings.TrimSpace(m[1])
		if strings.HasPrefix(name, "!") {
			continue
		}
		if _, ok := vars[name]; !ok {
			names = append(names, name)
		}
	}
	return names
}

func (c *checker) expr(v any, w where) error {
	if fn, arg, ok := intrinsic(v); ok {
		return c.fn(fn, arg, w)
	}
	switch v := v.(type) {
	case map[string]any:
		for _, e := range v {
			if err := c.expr(e, w); err != nil {
				return err
			}
		}
	case []any:
		for _, e := range v {
			if err := c.expr(e, w); err != nil {
				return err
			}
		}
	}
	return nil
}

func listArg(arg any, fn string, n int) ([]any, error) {
	l, ok := arg.([]any)
	if !ok || (n > 0 && len(l) != n) {
		return nil, templateError("every %s object requires %d parameters.", fn, n)
	}
	return l, nil
}

func (c *checker) fn(fn string, arg any, w where) error {
	switch fn {
	case "Ref":
		s, ok := arg.(string)
		if !ok {
			return templateError("every Ref object requires a single String value.")
		}
		return c.refTarget(s, w)
	case "Fn::GetAtt":
		return c.getAtt(arg, w)
	case "Fn::Sub":
		return c.sub(arg, w)
	case "Fn::Join", "Fn::Split":
		l, err := listArg(arg, fn, 2)
		if err != nil {
			return err
		}
		if _, ok := l[0].(string); !ok {
			if fn == "Fn::Join" {
				return templateError("every Fn::Join object requires two parameters, (1) a string delimiter and (2) a list of strings to be joined or a function that returns a list of strings (such as Fn::GetAZs) to be joined.")
			}
			return templateError("every Fn::Split object requires two parameters, (1) a string delimiter and (2) a string to be split or a function that returns a string to be split.")
		}
		return c.expr(l[1], w)
	case "Fn::Select", "Fn::Equals":
		l, err := listArg(arg, fn, 2)
		if err != nil {
			return err
		}
		return c.expr(l, w)
	case "Fn::If":
		l, err := listArg(arg, fn, 3)
		if err != nil {
			return err
		}
		name, ok := l[0].(string)
		if !ok {
			return templateError("Fn::If requires a list argument with the first element being a condition")
		}
		if _, ok := c.t.Conditions[name]; !ok {
			return templateError("unresolved condition dependency %s in Fn::If", name)
		}
		return c.expr(l[1:], w)
	case "Fn::Not", "Fn::And", "Fn::Or":
		if w != inCondition && w != inResource && w != inOutput {
			return templateError("%s is not supported here", fn)
		}
		l, ok := arg.([]any)
		if !ok || (fn == "Fn::Not" && len(l) != 1) || (fn != "Fn::Not" && (len(l) < 2 || len(l) > 10)) {
			if fn == "Fn::Not" {
				return templateError("Fn::Not requires a list argument with one function token")
			}
			return templateError("%s requires a list argument with between 2 and 10 function tokens", fn)
		}
		for _, e := range l {
			if err := c.cond(e, fn); err != nil {
				return err
			}
		}
		return nil
	case "Fn::FindInMap":
		l, ok := arg.([]any)
		if !ok || len(l) != 3 {
			return templateError("every Fn::FindInMap object requires three parameters, the map name, map key and the attribute for return value")
		}
		if name, ok := l[0].(string); ok {
			if _, ok := c.t.Mappings[name]; !ok {
				return templateError("Unable to get mapping for %s", name)
			}
		}
		return c.expr(l, w)
	case "Fn::GetAZs":
		return c.expr(arg, w)
	case "Fn::ImportValue":
		if w == inExportName {
			return templateError("Fn::ImportValue cannot be used in an Export Name")
		}
		if _, _, ok := intrinsic(arg); ok {
			return c.expr(arg, w)
		}
		if _, ok := arg.(string); !ok {
			return templateError("the Fn::ImportValue function requires a string or a function that returns a string.")
		}
		return nil
	case "Fn::Base64":
		return c.expr(arg, w)
	case "Fn::Cidr":
		l, err := listArg(arg, fn, 3)
		if err != nil {
			return err
		}
		return c.expr(l, w)
	}
	return formatError("Encountered unsupported function: %s Supported functions are: [Fn::Base64, Fn::GetAtt, Fn::GetAZs, Fn::ImportValue, Fn::Join, Fn::Split, Fn::FindInMap, Fn::Select, Ref, Fn::Equals, Fn::If, Fn::Not, Condition, Fn::And, Fn::Or, Fn::Sub, Fn::Cidr]", clip(fn))
}

// cond checks a condition expression: a condition function or
// {"Condition": name}.
func (c *checker) cond(v any, ctx string) error {
	if m, ok := v.(map[string]any); ok && len(m) == 1 {
		if name, ok := m["Condition"]; ok {
			s, ok := name.(string)
			if !ok {
				return templateError("Condition references must be strings (%s)", ctx)
			}
			if _, ok := c.t.Conditions[s]; !ok {
				return templateError("unresolved condition dependency %s in %s", s, ctx)
			}
			return nil
		}
	}
	fn, arg, ok := intrinsic(v)
	if !ok {
		if _, isBool := v.(bool); isBool {
			return nil
		}
		if s, isStr := v.(string); isStr && (s == "true" || s == "false") {
			return nil
		}
		return templateError("Conditions can only be boolean operations on parameters and other conditions (%s)", ctx)
	}
	switch fn {
	case "Fn::Equals", "Fn::Not", "Fn::And", "Fn::Or":
		return c.fn(fn, arg, inCondition)
	case "Fn::If":
		return c.fn(fn, arg, inCondition)
	}
	return templateError("Conditions can only be boolean operations on parameters and other conditions (%s uses %s)", ctx, fn)
}

// conditionCycles finds a condition that depends on itself.
func (c *checker) conditionCycles() error {
	deps := map[string][]string{}
	var walk func(v any, out *[]string)
	walk = func(v any, out *[]string) {
		switch v := v.(type) {
		case map[string]any:
			if len(v) == 1 {
				if n, ok := v["Condition"].(string); ok {
					*out = append(*out, n)
					return
				}
				if l, ok := v["Fn::If"].([]any); ok && len(l) == 3 {
					if n, ok := l[0].(string); ok {
						*out = append(*out, n)
					}
				}
			}
			for _, e := range v {
				walk(e, out)
			}
		case []any:
			for _, e := range v {
				walk(e, out)
			}
		}
	}
	for n, v := range c.t.Conditions {
		var d []string
		walk(v, &d)
		deps[n] = d
	}
	state := map[string]int{}
	var visit func(n string) error
	visit = func(n string) error {
		switch state[n] {
		case 1:
			return formatError("Circular dependency between conditions: [%s]", n)
		case 2:
			return nil
		}
		state[n] = 1
		for _, d := range deps[n] {
			if err := visit(d); err != nil {
				return err
			}
		}
		state[n] = 2
		return nil
	}
	names := make([]string, 0, len(deps))
	for n := range deps {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if err := visit(n); err != nil {
			return err
		}
	}
	return nil
}

// staticDeps are the resources a resource depends on whatever the
// conditions: DependsOn and every reference in its properties.
func (t *Template) staticDeps(id string) []string {
	r := t.Resources[id]
	set := map[string]bool{}
	for _, d := range r.DependsOn {
		set[d] = true
	}
	collectRefs(r.Properties, func(name string) {
		if t.Resources[name] != nil {
			set[name] = true
		}
	}, nil)
	out := make([]string, 0, len(set))
	for d := range set {
		out = append(out, d)
	}
	sort.Strings(out)
	return out
}

// collectRefs calls ref for every Ref, GetAtt and Sub reference in v;
// chooseIf, when set, picks the branch of an Fn::If (nil: both).
func collectRefs(v any, ref func(string), chooseIf func(cond string) (bool, bool)) {
	if fn, arg, ok := intrinsic(v); ok {
		switch fn {
		case "Ref":
			if s, ok := arg.(string); ok {
				ref(s)
			}
			return
		case "Fn::GetAtt":
			if l, ok := arg.([]any); ok && len(l) == 2 {
				if s, ok := l[0].(string); ok {
					ref(s)
				}
				collectRefs(l[1], ref, chooseIf)
			}
			return
		case "Fn::Sub":
			var s string
			vars := map[string]any{}
			switch a := arg.(type) {
			case string:
				s = a
			case []any:
				if len(a) == 2 {
					s, _ = a[0].(string)
					vars, _ = a[1].(map[string]any)
					collectRefs(a[1], ref, chooseIf)
				}
			}
			for _, name := range subNames(s, vars) {
				if res, _, dotted := strings.Cut(name, "."); dotted && !strings.HasPrefix(name, "AWS::") {
					name = res
				}
				ref(name)
			}
			return
		case "Fn::If":
			if l, ok := arg.([]any); ok && len(l) == 3 && chooseIf != nil {
				if n, ok := l[0].(string); ok {
					if val, known := chooseIf(n); known {
						if val {
							collectRefs(l[1], ref, chooseIf)
						} else {
							collectRefs(l[2], ref, chooseIf)
						}
						return
					}
				}
			}
		}
		collectRefs(arg, ref, chooseIf)
		return
	}
	switch v := v.(type) {
	case map[string]any:
		for _, e := range v {
			collectRefs(e, ref, chooseIf)
		}
	case []any:
		for _, e := range v {
			collectRefs(e, ref, chooseIf)
		}
	}
}

// order returns the resources of set in an order where each comes after
// its dependencies, or CloudFormation's circular dependency error.
func (t *Template) order(deps func(string) []string, set map[string]bool) ([]string, error) {
	ids := make([]string, 0, len(set))
	for _, id := range t.ResourceIDs {
		if set[id] {
			ids = append(ids, id)
		}
	}
	state := map[string]int{}
	var out []string
	var cycle []string
	var visit func(id string) bool
	visit = func(id string) bool {
		switch state[id] {
		case 1:
			cycle = append(cycle, id)
			return false
		case 2:
			return true
		}
		state[id] = 1
		for _, d := range deps(id) {
			if !set[d] {
				continue
			}
			if !visit(d) {
				if len(cycle) == 0 || cycle[0] != id {
					cycle = append(cycle, id)
				}
				return false
			}
		}
		state[id] = 2
		out = append(out, id)
		return true
	}
	for _, id := range ids {
		if !visit(id) {
			sort.Strings(cycle)
			return nil, validation("Circular dependency between resources: [%s]", strings.Join(slices.Compact(cycle), ", "))
		}
	}
	return out, nil
}

var _ = fmt.Sprint
