package cloudformation

import (
	"net/url"
	"sort"
	"strconv"
	"strings"

	"github.com/regionfs/regionfs/internal/api/awsproto"
	"github.com/regionfs/regionfs/internal/cfn"
)

// params are the decoded query parameters of one request.
type params struct{ v url.Values }

func (p params) get(name string) string { return p.v.Get(name) }

func (p params) has(name string) bool { _, ok := p.v[name]; return ok }

// boolean reads a boolean parameter (absent: false).
func (p params) boolean(name string) (bool, error) {
	switch s := p.get(name); s {
	case "", "false":
		return false, nil
	case "true":
		return true, nil
	default:
		return false, validationf("1 validation error detected: Value '%s' at '%s' failed to satisfy constraint: Member must be a boolean", awsproto.Clip(s), lowerFirst(name))
	}
}

func lowerFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToLower(s[:1]) + s[1:]
}

// members returns Name.member.N (for N = 1, 2, …) as maps of their fields
// ("" for a scalar member), in index order.
func (p params) members(name string) ([]map[string]string, error) {
	byIdx := map[int]map[string]string{}
	prefix := name + ".member."
	for k, vs := range p.v {
		rest, ok := strings.CutPrefix(k, prefix)
		if !ok {
			if k == name+".member" || strings.HasPrefix(k, name+".") {
				return nil, validationf("The parameter %s is malformed", awsproto.Clip(k))
			}
			continue
		}
		idx, field, _ := strings.Cut(rest, ".")
		i, err := strconv.Atoi(idx)
		if err != nil || i < 1 || i > 10000 {
			return nil, validationf("The parameter %s has an invalid index", awsproto.Clip(k))
		}
		m := byIdx[i]
		if m == nil {
			m = map[string]string{}
			byIdx[i] = m
		}
		m[field] = vs[0]
	}
	idx := make([]int, 0, len(byIdx))
	for i := range byIdx {
		idx = append(idx, i)
	}
	sort.Ints(idx)
	out := make([]map[string]string, len(idx))
	for j, i := range idx {
		out[j] = byIdx[i]
	}
	return out, nil
}

// list returns the scalar members of a list parameter; present reports an
// empty list given as "Name=" (which clears a setting).
func (p params) list(name string) (vals []string, present bool, err error) {
	ms, err := p.members(name)
	if err != nil {
		return nil, false, err
	}
	for _, m := range ms {
		vals = append(vals, m[""])
	}
	_, empty := p.v[name]
	return vals, len(vals) > 0 || empty, nil
}

func (p params) parameters() ([]cfn.ParamInput, error) {
	ms, err := p.members("Parameters")
	if err != nil {
		return nil, err
	}
	var out []cfn.ParamInput
	for _, m := range ms {
		prev := m["UsePreviousValue"] == "true"
		if m["ParameterKey"] == "" {
			return nil, validationf("Parameters: a ParameterKey is required")
		}
		if _, hasValue := m["ParameterValue"]; prev && hasValue {
			return nil, validationf("Invalid input for parameter key %s. Cannot specify usePreviousValue as true and non empty value for a parameter", m["ParameterKey"])
		}
		out = append(out, cfn.ParamInput{Key: m["ParameterKey"], Value: m["ParameterValue"], UsePrevious: prev})
	}
	return out, nil
}

func (p params) tags() ([]cfn.Tag, bool, error) {
	ms, err := p.members("Tags")
	if err != nil {
		return nil, false, err
	}
	var out []cfn.Tag
	for _, m := range ms {
		out = append(out, cfn.Tag{Key: m["Key"], Value: m["Value"]})
	}
	_, empty := p.v["Tags"]
	return out, len(out) > 0 || empty, nil
}

// template reads TemplateBody; TemplateURL is refused (there is no S3
// here).
func (p params) template() (string, error) {
	if p.get("TemplateURL") != "" {
		return "", validationf("TemplateURL is not supported by this endpoint (there is no S3 to fetch it from); pass the template as TemplateBody (--template-body file://…).")
	}
	return p.get("TemplateBody"), nil
}

func (p params) stackInput() (cfn.StackInput, error) {
	var in cfn.StackInput
	var err error
	in.StackName = p.get("StackName")
	if in.TemplateBody, err = p.template(); err != nil {
		return in, err
	}
	if in.UsePreviousTemplate, err = p.boolean("UsePreviousTemplate"); err != nil {
		return in, err
	}
	if in.Parameters, err = p.parameters(); err != nil {
		return in, err
	}
	var tagsGiven bool
	if in.Tags, tagsGiven, err = p.tags(); err != nil {
		return in, err
	}
	if tagsGiven && in.Tags == nil {
		in.Tags = []cfn.Tag{}
	}
	if in.Capabilities, _, err = p.list("Capabilities"); err != nil {
		return in, err
	}
	var notifyGiven bool
	if in.NotificationARNs, notifyGiven, err = p.list("NotificationARNs"); err != nil {
		return in, err
	}
	if notifyGiven && in.NotificationARNs == nil {
		in.NotificationARNs = []string{}
	}
	if in.DisableRollback, err = p.boolean("DisableRollback"); err != nil {
		return in, err
	}
	if in.TerminationProtection, err = p.boolean("EnableTerminationProtection"); err != nil {
		return in, err
	}
	in.OnFailure = p.get("OnFailure")
	if t := p.get("TimeoutInMinutes"); t != "" {
		n, err := strconv.Atoi(t)
		if err != nil || n < 1 {
			return in, validationf("1 validation error detected: Value '%s' at 'timeoutInMinutes' failed to satisfy constraint: Member must have value greater than or equal to 1", awsproto.Clip(t))
		}
		in.TimeoutMinutes = n
	}
	in.RoleARN = p.get("RoleARN")
	in.ClientRequestToken = p.get("ClientRequestToken")
	return in, nil
}
