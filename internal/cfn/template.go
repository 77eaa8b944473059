package cfn

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
)

// Template is a parsed and structurally validated template.
type Template struct {
	Body        string // as given
	Version     string
	Description string
	Metadata    any
	Parameters  []*Parameter // in declaration order
	Mappings    map[string]any
	Conditions  map[string]any
	Resources   map[string]*ResourceDecl
	ResourceIDs []string // in declaration order
	Outputs     []*OutputDecl
	Rules       map[string]any
	Transform   any
}

// Parameter is a declared parameter.
type Parameter struct {
	Name                  string
	Type                  string
	Default               *string
	NoEcho                bool
	Description           string
	AllowedValues         []string
	AllowedPattern        string
	MinLength, MaxLength  *int
	MinValue, MaxValue    *float64
	ConstraintDescription string
}

// ResourceDecl is a declared resource.
type ResourceDecl struct {
	LogicalID           string
	Type                string
	Properties          map[string]any // nil when absent
	DependsOn           []string
	Condition           string
	DeletionPolicy      string
	UpdateReplacePolicy string
	Metadata            any
}

// OutputDecl is a declared output.
type OutputDecl struct {
	Name        string
	Value       any
	Description string
	Condition   string
	Export      any // the Export.Name expression, nil when not exported
}

var (
	logicalIDRe = regexp.MustCompile(`^[A-Za-z0-9]+$`)
	topLevel    = []string{"AWSTemplateFormatVersion", "Description", "Metadata", "Parameters", "Mappings", "Conditions", "Resources", "Outputs", "Rules", "Transform"}
	resAttrs    = []string{"Type", "Properties", "DependsOn", "Condition", "DeletionPolicy", "UpdateReplacePolicy", "Metadata", "CreationPolicy", "UpdatePolicy", "Version"}
	paramKeys   = []string{"Type", "Default", "NoEcho", "Description", "AllowedValues", "AllowedPattern", "MinLength", "MaxLength", "MinValue", "MaxValue", "ConstraintDescription"}
	policies    = []string{"Delete", "Retain", "RetainExceptOnCreate", "Snapshot"}
)

// Limits of a template (CloudFormation quotas).
const (
	maxParameters = 200
	maxResources  = 500
	maxOutputs    = 200
	maxMappings   = 200
)

// ParseTemplate decodes and structurally validates a template body. types
// names the resource types that exist; references, functions and
// conditions are checked against the template itself.
func ParseTemplate(body string, types Registry) (*Template, error) {
	doc, err := parseDocument(body)
	if err != nil {
		return nil, err
	}
	root := doc.root
	var bad []string
	for k := range root {
		if !slices.Contains(topLevel, k) {
			bad = append(bad, k)
		}
	}
	if len(bad) > 0 {
		sort.Strings(bad)
		return nil, formatError("Invalid template property or properties [%s]", strings.Join(bad, ", "))
	}
	t := &Template{Body: body, Metadata: root["Metadata"], Rules: asMap(root["Rules"]), Transform: root["Transform"]}
	if v, ok := root["AWSTemplateFormatVersion"]; ok {
		s, ok := v.(string)
		if !ok || s != "2010-09-09" {
			return nil, formatError("'%v' is not a valid template version; AWSTemplateFormatVersion must be 2010-09-09", clip(fmt.Sprint(v)))
		}
		t.Version = s
	}
	if v, ok := root["Description"]; ok {
		s, ok := v.(string)
		if !ok {
			return nil, formatError("Every Description member must be a string.")
		}
		if len(s) > 1024 {
			return nil, formatError("Description must be no longer than 1024 characters.")
		}
		t.Description = s
	}
	if t.Transform != nil {
		return nil, validation("Transform %s is not supported by this endpoint: templates are processed without macros.", clip(marshalJSON(t.Transform)))
	}
	if err := t.parseParameters(root["Parameters"], doc.order["Parameters"]); err != nil {
		return nil, err
	}
	if v, ok := root["Mappings"]; ok {
		m, ok := v.(map[string]any)
		if !ok {
			return nil, formatError("Every Mappings member must be an object.")
		}
		if len(m) > maxMappings {
			return nil, formatError("Number of mappings %d exceeds the limit of %d.", len(m), maxMappings)
		}
		for name, mv := range m {
			l1, ok := mv.(map[string]any)
			if !ok || len(l1) == 0 {
				return nil, formatError("Mappings attribute %s must be a non-empty object.", name)
			}
			for k1, v1 := range l1 {
				l2, ok := v1.(map[string]any)
				if !ok || len(l2) == 0 {
					return nil, formatError("The mapping %s::%s must be a non-empty object of key-value pairs.", name, k1)
				}
			}
		}
		t.Mappings = m
	}
	if v, ok := root["Conditions"]; ok {
		m, ok := v.(map[string]any)
		if !ok {
			return nil, formatError("Every Conditions member must be an object.")
		}
		t.Conditions = m
	}
	if err := t.parseResources(root["Resources"], doc.order["Resources"], types); err != nil {
		return nil, err
	}
	if err := t.parseOutputs(root["Outputs"], doc.order["Outputs"]); err != nil {
		return nil, err
	}
	if err := t.check(types); err != nil {
		return nil, err
	}
	return t, nil
}

func asMap(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}

// parameterTypes are the parameter types accepted.
var parameterTypes = map[string]bool{
	"String": true, "Number": true, "List<Number>": true, "CommaDelimitedList": true,
	"AWS::EC2::AvailabilityZone::Name": true, "AWS::EC2::Image::Id": true, "AWS::EC2::Instance::Id": true,
	"AWS::EC2::KeyPair::KeyName": true, "AWS::EC2::SecurityGroup::GroupName": true, "AWS::EC2::SecurityGroup::Id": true,
	"AWS::EC2::Subnet::Id": true, "AWS::EC2::Volume::Id": true, "AWS::EC2::VPC::Id": true, "AWS::Route53::HostedZone::Id": true,
}

func validParameterType(t string) bool {
	if parameterTypes[t] {
		return true
	}
	if inner, ok := strings.CutPrefix(t, "List<"); ok && strings.HasSuffix(inner, ">") {
		inner = strings.TrimSuffix(inner, ">")
		return inner != "String" && strings.HasPrefix(inner, "AWS::") && parameterTypes[inner]
	}
	if inner, ok := strings.CutPrefix(t, "AWS::SSM::Parameter::Value<"); ok && strings.HasSuffix(inner, ">") {
		return false // SSM parameters do not exist here
	}
	return false
}

// IsList reports whether a parameter type takes a comma-delimited list.
func IsList(typ string) bool {
	return typ == "CommaDelimitedList" || strings.HasPrefix(typ, "List<")
}

func (t *Template) parseParameters(v any, order []string) error {
	if v == nil {
		return nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		return formatError("Every Parameters member must be an object.")
	}
	if len(m) > maxParameters {
		return formatError("Parameter count %d is greater than max allowed %d", len(m), maxParameters)
	}
	for _, name := range orderedKeys(m, order) {
		if !logicalIDRe.MatchString(name) || len(name) > 255 {
			return formatError("Parameter name %s is non alphanumeric.", clip(name))
		}
		pm, ok := m[name].(map[string]any)
		if !ok {
			return formatError("Every Parameters object must contain a Type member.")
		}
		for k := range pm {
			if !slices.Contains(paramKeys, k) {
				return formatError("Invalid template parameter property '%s'", clip(k))
			}
		}
		p := &Parameter{Name: name}
		typ, ok := pm["Type"].(string)
		if !ok {
			return formatError("Every Parameters object must contain a Type member.")
		}
		if !validParameterType(typ) {
			return formatError("Unrecognized parameter type: %s", clip(typ))
		}
		p.Type = typ
		if d, ok := pm["Default"]; ok {
			s, err := scalarString(d)
			if err != nil {
				if l, isList := d.([]any); isList && IsList(typ) {
					parts := make([]string, len(l))
					for i, e := range l {
						if parts[i], err = scalarString(e); err != nil {
							return formatError("Default member of parameter %s must be a string or a list of strings", name)
						}
					}
					s = strings.Join(parts, ",")
				} else {
					return formatError("Default member of parameter %s must be a string", name)
				}
			}
			p.Default = &s
		}
		if ne, ok := pm["NoEcho"]; ok {
			b, err := boolValue(ne)
			if err != nil {
				return formatError("NoEcho member of parameter %s must be a boolean", name)
			}
			p.NoEcho = b
		}
		if d, ok := pm["Description"].(string); ok {
			p.Description = d
		}
		if c, ok := pm["ConstraintDescription"].(string); ok {
			p.ConstraintDescription = c
		}
		if av, ok := pm["AllowedValues"]; ok {
			l, ok := av.([]any)
			if !ok {
				return formatError("Every AllowedValues member of parameter %s must be a list", name)
			}
			for _, e := range l {
				s, err := scalarString(e)
				if err != nil {
					return formatError("Every AllowedValues member of parameter %s must be a list of strings", name)
				}
				p.AllowedValues = append(p.AllowedValues, s)
			}
		}
		if ap, ok := pm["AllowedPattern"]; ok {
			s, ok := ap.(string)
			if !ok {
				return formatError("AllowedPattern of parameter %s must be a string", name)
			}
			if _, err := regexp.Compile("^(?:" + s + ")$"); err != nil {
				return formatError("Parameter '%s' AllowedPattern is not a valid regular expression", name)
			}
			p.AllowedPattern = s
		}
		for _, lim := range []struct {
			key string
			dst **int
		}{{"MinLength", &p.MinLength}, {"MaxLength", &p.MaxLength}} {
			if v, ok := pm[lim.key]; ok {
				n, err := intValue(v)
				if err != nil {
					return formatError("%s of parameter %s must be an integer", lim.key, name)
				}
				*lim.dst = &n
			}
		}
		for _, lim := range []struct {
			key string
			dst **float64
		}{{"MinValue", &p.MinValue}, {"MaxValue", &p.MaxValue}} {
			if v, ok := pm[lim.key]; ok {
				f, err := floatValue(v)
				if err != nil {
					return formatError("%s of parameter %s must be a number", lim.key, name)
				}
				*lim.dst = &f
			}
		}
		if p.Default != nil {
			if err := p.check(*p.Default); err != nil {
				return validation("Template error: Parameter '%s' default value '%s' %s", name, clip(*p.Default), err.Error())
			}
		}
		t.Parameters = append(t.Parameters, p)
	}
	return nil
}

// check validates a parameter value against the parameter's constraints
// (the error message completes "Parameter 'X' …").
func (p *Parameter) check(value string) error {
	values := []string{value}
	if IsList(p.Type) {
		values = splitList(value)
	}
	for _, v := range values {
		switch {
		case p.Type == "Number" || p.Type == "List<Number>":
			f, err := floatValue(json.Number(strings.TrimSpace(v)))
			if err != nil {
				return fmt.Errorf("must be a number")
			}
			if p.MinValue != nil && f < *p.MinValue {
				return fmt.Errorf("must be a number not less than %s", fmtFloat(*p.MinValue))
			}
			if p.MaxValue != nil && f > *p.MaxValue {
				return fmt.Errorf("must be a number not greater than %s", fmtFloat(*p.MaxValue))
			}
		case strings.Contains(p.Type, "AWS::EC2::Subnet::Id") && v != "":
			if !strings.HasPrefix(v, "subnet-") {
				return fmt.Errorf("must be a subnet id (subnet-…)")
			}
		case strings.Contains(p.Type, "AWS::EC2::SecurityGroup::Id") && v != "":
			if !strings.HasPrefix(v, "sg-") {
				return fmt.Errorf("must be a security group id (sg-…)")
			}
		case strings.Contains(p.Type, "AWS::EC2::VPC::Id") && v != "":
			if !strings.HasPrefix(v, "vpc-") {
				return fmt.Errorf("must be a VPC id (vpc-…)")
			}
		}
		if len(p.AllowedValues) > 0 && !slices.Contains(p.AllowedValues, v) {
			return fmt.Errorf("must be one of AllowedValues")
		}
		if p.AllowedPattern != "" && !regexp.MustCompile("^(?:"+p.AllowedPattern+")$").MatchString(v) {
			return fmt.Errorf("must match pattern %s", p.AllowedPattern)
		}
		if p.MinLength != nil && len(v) < *p.MinLength {
			return fmt.Errorf("must contain at least %d characters", *p.MinLength)
		}
		if p.MaxLength != nil && len(v) > *p.MaxLength {
			return fmt.Errorf("must contain at most %d characters", *p.MaxLength)
		}
	}
	return nil
}

func splitList(s string) []string {
	if s == "" {
		return []string{}
	}
	parts := strings.Split(s, ",")
	for i := range parts {
		parts[i] = strings.TrimSpace(parts[i])
	}
	return parts
}

func (t *Template) parseResources(v any, order []string, types Registry) error {
	m, ok := v.(map[string]any)
	if !ok || len(m) == 0 {
		if v != nil && !ok {
			return formatError("Every Resources member must be an object.")
		}
		return formatError("At least one Resources member must be defined.")
	}
	if len(m) > maxResources {
		return formatError("Number of resources, %d, is greater than maximum allowed, %d", len(m), maxResources)
	}
	t.Resources = map[string]*ResourceDecl{}
	var unknown []string
	for _, id := range orderedKeys(m, order) {
		if !logicalIDRe.MatchString(id) || len(id) > 255 {
			return formatError("Resource name %s is non alphanumeric.", clip(id))
		}
		if t.parameter(id) != nil {
			return formatError("Duplicate identifier %s: a parameter and a resource share it.", id)
		}
		rm, ok := m[id].(map[string]any)
		if !ok {
			return formatError("[/Resources/%s] Every Resources object must contain a Type member.", id)
		}
		for k := range rm {
			if !slices.Contains(resAttrs, k) {
				return formatError("Invalid template resource property '%s'", clip(k))
			}
		}
		typ, ok := rm["Type"].(string)
		if !ok || typ == "" {
			return formatError("[/Resources/%s] Every Resources object must contain a Type member.", id)
		}
		r := &ResourceDecl{LogicalID: id, Type: typ, Metadata: rm["Metadata"]}
		if _, known := types[typ]; !known {
			unknown = append(unknown, typ)
		}
		if p, ok := rm["Properties"]; ok && p != nil {
			pm, ok := p.(map[string]any)
			if !ok {
				return formatError("[/Resources/%s/Properties] Every Properties object must be an object.", id)
			}
			r.Properties = pm
		}
		if d, ok := rm["DependsOn"]; ok {
			switch d := d.(type) {
			case string:
				r.DependsOn = []string{d}
			case []any:
				for _, e := range d {
					s, ok := e.(string)
					if !ok {
						return formatError("DependsOn must be a string or list of strings.")
					}
					r.DependsOn = append(r.DependsOn, s)
				}
			default:
				return formatError("DependsOn must be a string or list of strings.")
			}
		}
		if c, ok := rm["Condition"]; ok {
			s, ok := c.(string)
			if !ok {
				return formatError("Condition of resource %s must be a string.", id)
			}
			r.Condition = s
		}
		for _, pol := range []struct {
			key string
			dst *string
		}{{"DeletionPolicy", &r.DeletionPolicy}, {"UpdateReplacePolicy", &r.UpdateReplacePolicy}} {
			if pv, ok := rm[pol.key]; ok {
				s, ok := pv.(string)
				if !ok || !slices.Contains(policies, s) {
					return formatError("Unrecognized %s %s for resource %s", pol.key, clip(fmt.Sprint(pv)), id)
				}
				if s == "Snapshot" {
					return formatError("[/Resources/%s/%s] %s does not support Snapshot; use Delete or Retain.", id, pol.key, typ)
				}
				*pol.dst = s
			}
		}
		t.Resources[id] = r
		t.ResourceIDs = append(t.ResourceIDs, id)
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		unknown = slices.Compact(unknown)
		return formatError("Unrecognized resource types: [%s]", strings.Join(unknown, ", "))
	}
	return nil
}

func (t *Template) parseOutputs(v any, order []string) error {
	if v == nil {
		return nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		return formatError("Every Outputs member must be an object.")
	}
	if len(m) > maxOutputs {
		return formatError("Number of outputs %d exceeds the limit of %d.", len(m), maxOutputs)
	}
	for _, name := range orderedKeys(m, order) {
		if !logicalIDRe.MatchString(name) || len(name) > 255 {
			return formatError("Output name %s is non alphanumeric.", clip(name))
		}
		om, ok := m[name].(map[string]any)
		if !ok {
			return formatError("Every Outputs member must contain a Value object")
		}
		o := &OutputDecl{Name: name}
		for k, ov := range om {
			switch k {
			case "Value":
				o.Value = ov
			case "Description":
				s, ok := ov.(string)
				if !ok {
					return formatError("Output %s: Description must be a string.", name)
				}
				o.Description = s
			case "Condition":
				s, ok := ov.(string)
				if !ok {
					return formatError("Output %s: Condition must be a string.", name)
				}
				o.Condition = s
			case "Export":
				em, ok := ov.(map[string]any)
				if !ok || len(em) != 1 || em["Name"] == nil {
					return formatError("Output %s is malformed. The Export member must be an object with one Name member.", name)
				}
				o.Export = em["Name"]
			default:
				return formatError("Invalid template property or properties [%s] in output %s", clip(k), name)
			}
		}
		if _, ok := om["Value"]; !ok {
			return formatError("Every Outputs member must contain a Value object")
		}
		t.Outputs = append(t.Outputs, o)
	}
	return nil
}

// orderedKeys returns m's keys in declaration order (keys missing from
// order, which cannot happen for parsed documents, go last, sorted).
func orderedKeys(m map[string]any, order []string) []string {
	out := make([]string, 0, len(m))
	seen := map[string]bool{}
	for _, k := range order {
		if _, ok := m[k]; ok && !seen[k] {
			out = append(out, k)
			seen[k] = true
		}
	}
	var rest []string
	for k := range m {
		if !seen[k] {
			rest = append(rest, k)
		}
	}
	sort.Strings(rest)
	return append(out, rest...)
}

func (t *Template) parameter(name string) *Parameter {
	for _, p := range t.Parameters {
		if p.Name == name {
			return p
		}
	}
	return nil
}

// Parameter returns the declared parameter called name, or nil.
func (t *Template) Parameter(name string) *Parameter { return t.parameter(name) }
