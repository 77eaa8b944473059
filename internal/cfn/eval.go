package cfn

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// Scope is what expressions of one stack operation evaluate against.
type Scope struct {
	T *Template
	// Params are the parameter values (list types comma-joined).
	Params map[string]string
	// Pseudo holds AWS::Region, AWS::AccountId, AWS::StackName,
	// AWS::StackId, AWS::Partition, AWS::URLSuffix.
	Pseudo map[string]string
	// NotificationARNs is AWS::NotificationARNs.
	NotificationARNs []string
	// AZs are the region's availability zones (Fn::GetAZs).
	AZs func(region string) []string
	// Resource returns a resource's physical id and attributes once it
	// exists; ok is false for one that does not (yet).
	Resource func(logicalID string) (physicalID string, attrs map[string]string, ok bool)
	// Import returns the value of an export.
	Import func(name string) (string, error)

	conds map[string]bool
}

// errNotReady: an expression referenced a resource that does not exist yet
// (a dependency ordering bug, or a reference to a resource whose
// condition is false).
var errNotReady = errors.New("resource not ready")

// Conditions evaluates every condition of the template.
func (s *Scope) Conditions() (map[string]bool, error) {
	if s.conds != nil {
		return s.conds, nil
	}
	s.conds = map[string]bool{}
	for name := range s.T.Conditions {
		if _, err := s.condition(name, map[string]bool{}); err != nil {
			s.conds = nil
			return nil, err
		}
	}
	return s.conds, nil
}

func (s *Scope) condition(name string, seen map[string]bool) (bool, error) {
	if v, ok := s.conds[name]; ok {
		return v, nil
	}
	expr, ok := s.T.Conditions[name]
	if !ok {
		return false, templateError("unresolved condition dependency %s", name)
	}
	if seen[name] {
		return false, formatError("Circular dependency between conditions: [%s]", name)
	}
	seen[name] = true
	v, err := s.condValue(expr, seen)
	if err != nil {
		return false, err
	}
	s.conds[name] = v
	return v, nil
}

// Condition returns the value of a named condition.
func (s *Scope) Condition(name string) (bool, error) {
	if _, err := s.Conditions(); err != nil {
		return false, err
	}
	v, ok := s.conds[name]
	if !ok {
		return false, templateError("unresolved condition dependency %s", name)
	}
	return v, nil
}

func (s *Scope) condValue(v any, seen map[string]bool) (bool, error) {
	if m, ok := v.(map[string]any); ok && len(m) == 1 {
		if n, ok := m["Condition"].(string); ok {
			if s.conds == nil {
				s.conds = map[string]bool{}
			}
			return s.condition(n, seen)
		}
	}
	fn, arg, ok := intrinsic(v)
	if !ok {
		b, err := boolValue(v)
		if err != nil {
			return false, templateError("Conditions can only be boolean operations on parameters and other conditions")
		}
		return b, nil
	}
	switch fn {
	case "Fn::Equals":
		l, _ := arg.([]any)
		if len(l) != 2 {
			return false, templateError("Fn::Equals requires a list of two values")
		}
		a, err := s.eval(l[0])
		if err != nil {
			return false, err
		}
		b, err := s.eval(l[1])
		if err != nil {
			return false, err
		}
		return equalValues(a, b), nil
	case "Fn::Not", "Fn::And", "Fn::Or":
		l, _ := arg.([]any)
		if len(l) == 0 {
			return false, templateError("%s requires a list argument", fn)
		}
		vals := make([]bool, len(l))
		for i, e := range l {
			b, err := s.condValue(e, seen)
			if err != nil {
				return false, err
			}
			vals[i] = b
		}
		switch fn {
		case "Fn::Not":
			return !vals[0], nil
		case "Fn::And":
			return !slices.Contains(vals, false), nil
		default:
			return slices.Contains(vals, true), nil
		}
	case "Fn::If":
		r, err := s.eval(v)
		if err != nil {
			return false, err
		}
		return boolValue(r)
	}
	return false, templateError("Conditions can only be boolean operations on parameters and other conditions")
}

// Eval resolves every intrinsic function of v, removing values that
// evaluate to AWS::NoValue.
func (s *Scope) Eval(v any) (any, error) {
	r, err := s.eval(v)
	if err != nil {
		return nil, err
	}
	if _, ok := r.(noValue); ok {
		return nil, nil
	}
	return r, nil
}

func (s *Scope) eval(v any) (any, error) {
	if fn, arg, ok := intrinsic(v); ok {
		return s.fn(fn, arg)
	}
	switch v := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			r, err := s.eval(e)
			if err != nil {
				return nil, err
			}
			if _, skip := r.(noValue); !skip {
				out[k] = r
			}
		}
		return out, nil
	case []any:
		out := make([]any, 0, len(v))
		for _, e := range v {
			r, err := s.eval(e)
			if err != nil {
				return nil, err
			}
			if _, skip := r.(noValue); !skip {
				out = append(out, r)
			}
		}
		return out, nil
	}
	return v, nil
}

func (s *Scope) evalString(v any, fn string) (string, error) {
	r, err := s.eval(v)
	if err != nil {
		return "", err
	}
	str, err := scalarString(r)
	if err != nil {
		return "", templateError("%s requires a string value; it was given %s", fn, clip(marshalJSON(r)))
	}
	return str, nil
}

func (s *Scope) evalList(v any, fn string) ([]any, error) {
	r, err := s.eval(v)
	if err != nil {
		return nil, err
	}
	l, ok := r.([]any)
	if !ok {
		return nil, templateError("%s requires a list of values; it was given %s", fn, clip(marshalJSON(r)))
	}
	return l, nil
}

// ref resolves Ref name.
func (s *Scope) ref(name string) (any, error) {
	switch name {
	case "AWS::NoValue":
		return noValue{}, nil
	case "AWS::NotificationARNs":
		l := make([]any, len(s.NotificationARNs))
		for i, a := range s.NotificationARNs {
			l[i] = a
		}
		return l, nil
	}
	if v, ok := s.Pseudo[name]; ok {
		return v, nil
	}
	if p := s.T.parameter(name); p != nil {
		v := s.Params[name]
		if IsList(p.Type) {
			parts := splitList(v)
			l := make([]any, len(parts))
			for i, e := range parts {
				l[i] = e
			}
			return l, nil
		}
		return v, nil
	}
	if s.T.Resources[name] != nil && s.Resource != nil {
		id, _, ok := s.Resource(name)
		if !ok {
			return nil, fmt.Errorf("%w: %s", errNotReady, name)
		}
		return id, nil
	}
	return nil, formatError("Unresolved resource dependencies [%s] in the Resources block of the template", name)
}

func (s *Scope) getAtt(res, attr string) (any, error) {
	r := s.T.Resources[res]
	if r == nil {
		return nil, templateError("instance of Fn::GetAtt references undefined resource %s", res)
	}
	if s.Resource == nil {
		return nil, fmt.Errorf("%w: %s", errNotReady, res)
	}
	_, attrs, ok := s.Resource(res)
	if !ok {
		return nil, fmt.Errorf("%w: %s", errNotReady, res)
	}
	v, ok := attrs[attr]
	if !ok {
		return nil, templateError("resource %s does not support attribute type %s in Fn::GetAtt", res, attr)
	}
	return v, nil
}

func (s *Scope) fn(fn string, arg any) (any, error) {
	switch fn {
	case "Ref":
		name, ok := arg.(string)
		if !ok {
			return nil, templateError("every Ref object requires a single String value.")
		}
		return s.ref(name)
	case "Fn::GetAtt":
		l, ok := arg.([]any)
		if !ok || len(l) != 2 {
			return nil, templateError("every Fn::GetAtt object requires two non-empty parameters.")
		}
		res, _ := l[0].(string)
		attr, err := s.evalString(l[1], fn)
		if err != nil {
			return nil, err
		}
		return s.getAtt(res, attr)
	case "Fn::Sub":
		return s.sub(arg)
	case "Fn::Join":
		l, _ := arg.([]any)
		if len(l) != 2 {
			return nil, templateError("every Fn::Join object requires two parameters")
		}
		delim, _ := l[0].(string)
		items, err := s.evalList(l[1], fn)
		if err != nil {
			return nil, err
		}
		parts := make([]string, len(items))
		for i, e := range items {
			if parts[i], err = scalarString(e); err != nil {
				return nil, templateError("Fn::Join can only join strings; element %d is %s", i, clip(marshalJSON(e)))
			}
		}
		return strings.Join(parts, delim), nil
	case "Fn::Select":
		l, _ := arg.([]any)
		if len(l) != 2 {
			return nil, templateError("Fn::Select requires a list argument with two elements: an integer index and a list")
		}
		idxV, err := s.eval(l[0])
		if err != nil {
			return nil, err
		}
		idx, err := intValue(idxV)
		if err != nil {
			return nil, templateError("Fn::Select requires a list argument with two elements: an integer index and a list")
		}
		items, err := s.evalList(l[1], fn)
		if err != nil {
			return nil, err
		}
		if idx < 0 || idx >= len(items) {
			return nil, templateError("Fn::Select cannot select nonexistent value at index %d", idx)
		}
		return items[idx], nil
	case "Fn::Split":
		l, _ := arg.([]any)
		if len(l) != 2 {
			return nil, templateError("every Fn::Split object requires two parameters")
		}
		delim, _ := l[0].(string)
		str, err := s.evalString(l[1], fn)
		if err != nil {
			return nil, err
		}
		if delim == "" {
			return nil, templateError("Fn::Split requires a non-empty delimiter")
		}
		parts := strings.Split(str, delim)
		out := make([]any, len(parts))
		for i, p := range parts {
			out[i] = p
		}
		return out, nil
	case "Fn::If":
		l, _ := arg.([]any)
		if len(l) != 3 {
			return nil, templateError("Fn::If requires a list argument with three elements")
		}
		name, _ := l[0].(string)
		c, err := s.Condition(name)
		if err != nil {
			return nil, err
		}
		if c {
			return s.eval(l[1])
		}
		return s.eval(l[2])
	case "Fn::Equals", "Fn::Not", "Fn::And", "Fn::Or":
		if _, err := s.Conditions(); err != nil {
			return nil, err
		}
		b, err := s.condValue(map[string]any{fn: arg}, map[string]bool{})
		if err != nil {
			return nil, err
		}
		return b, nil
	case "Fn::FindInMap":
		l, _ := arg.([]any)
		if len(l) != 3 {
			return nil, templateError("every Fn::FindInMap object requires three parameters")
		}
		keys := make([]string, 3)
		for i, e := range l {
			k, err := s.evalString(e, fn)
			if err != nil {
				return nil, err
			}
			keys[i] = k
		}
		m1, ok := s.T.Mappings[keys[0]].(map[string]any)
		if !ok {
			return nil, templateError("Unable to get mapping for %s::%s::%s", keys[0], keys[1], keys[2])
		}
		m2, ok := m1[keys[1]].(map[string]any)
		if !ok {
			return nil, templateError("Unable to get mapping for %s::%s::%s", keys[0], keys[1], keys[2])
		}
		v, ok := m2[keys[2]]
		if !ok {
			return nil, templateError("Unable to get mapping for %s::%s::%s", keys[0], keys[1], keys[2])
		}
		return deepCopy(v), nil
	case "Fn::GetAZs":
		region, err := s.evalString(arg, fn)
		if err != nil {
			return nil, err
		}
		if region == "" {
			region = s.Pseudo["AWS::Region"]
		}
		var azs []string
		if s.AZs != nil {
			azs = s.AZs(region)
		}
		out := make([]any, len(azs))
		for i, a := range azs {
			out[i] = a
		}
		return out, nil
	case "Fn::ImportValue":
		name, err := s.evalString(arg, fn)
		if err != nil {
			return nil, err
		}
		if s.Import == nil {
			return nil, validation("No export named %s found", name)
		}
		return s.Import(name)
	case "Fn::Base64":
		str, err := s.evalString(arg, fn)
		if err != nil {
			return nil, err
		}
		return base64.StdEncoding.EncodeToString([]byte(str)), nil
	case "Fn::Cidr":
		return s.cidr(arg)
	}
	return nil, formatError("Encountered unsupported function: %s", clip(fn))
}

func (s *Scope) sub(arg any) (any, error) {
	var str string
	vars := map[string]any{}
	switch a := arg.(type) {
	case string:
		str = a
	case []any:
		if len(a) != 2 {
			return nil, templateError("One or more Fn::Sub intrinsic functions don't specify expected arguments.")
		}
		str, _ = a[0].(string)
		m, _ := a[1].(map[string]any)
		for k, v := range m {
			r, err := s.eval(v)
			if err != nil {
				return nil, err
			}
			vars[k] = r
		}
	default:
		return nil, templateError("One or more Fn::Sub intrinsic functions don't specify expected arguments.")
	}
	var firstErr error
	out := subVarRe.ReplaceAllStringFunc(str, func(m string) string {
		name := strings.TrimSpace(m[2 : len(m)-1])
		if lit, ok := strings.CutPrefix(name, "!"); ok {
			return "${" + lit + "}"
		}
		var v any
		var err error
		if vv, ok := vars[name]; ok {
			v = vv
		} else if res, attr, dotted := strings.Cut(name, "."); dotted && !strings.HasPrefix(name, "AWS::") {
			v, err = s.getAtt(res, attr)
		} else {
			v, err = s.ref(name)
		}
		if err == nil {
			var str string
			if str, err = scalarString(v); err == nil {
				return str
			}
			err = templateError("Fn::Sub variable %s does not resolve to a string", name)
		}
		if firstErr == nil {
			firstErr = err
		}
		return ""
	})
	if firstErr != nil {
		return nil, firstErr
	}
	return out, nil
}

func (s *Scope) cidr(arg any) (any, error) {
	l, _ := arg.([]any)
	if len(l) != 3 {
		return nil, templateError("Fn::Cidr requires three parameters: an address block, a count and the subnet size in bits")
	}
	block, err := s.evalString(l[0], "Fn::Cidr")
	if err != nil {
		return nil, err
	}
	cv, err := s.eval(l[1])
	if err != nil {
		return nil, err
	}
	bv, err := s.eval(l[2])
	if err != nil {
		return nil, err
	}
	count, err1 := intValue(cv)
	bits, err2 := intValue(bv)
	p, err3 := netip.ParsePrefix(block)
	if err1 != nil || err2 != nil || err3 != nil || !p.Addr().Is4() || count < 1 || count > 256 || bits < 1 || 32-bits < p.Bits() {
		return nil, templateError("Fn::Cidr: invalid arguments %s, %v, %v", clip(block), cv, bv)
	}
	prefixLen := 32 - bits
	a4 := p.Masked().Addr().As4()
	base := binary.BigEndian.Uint32(a4[:])
	step := uint64(1) << bits
	if uint64(count)*step > uint64(1)<<(32-p.Bits()) {
		return nil, templateError("Fn::Cidr: %s cannot hold %d subnets of %d bits", block, count, bits)
	}
	out := make([]any, count)
	for i := range count {
		var b [4]byte
		binary.BigEndian.PutUint32(b[:], base+uint32(uint64(i)*step))
		out[i] = netip.AddrFrom4(b).String() + "/" + strconv.Itoa(prefixLen)
	}
	return out, nil
}
