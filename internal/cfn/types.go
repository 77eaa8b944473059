package cfn

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
)

// Registry holds the resource types the engine provisions, by name.
type Registry map[string]*ResourceType

// ResourceType is a resource type: its documented properties, its return
// values and the provider that creates, updates and deletes it through the
// region's control plane.
type ResourceType struct {
	Name string
	// Properties are the documented properties.
	Properties map[string]*Prop
	// Attributes are the Fn::GetAtt return values.
	Attributes []string
	// Provider provisions the type.
	Provider Provider
}

// Kind is the JSON type of a property.
type Kind int

// Property kinds.
const (
	String Kind = iota
	Integer
	Number
	Boolean
	Object // Fields describes it
	List   // Elem describes an element
	JSON   // an object or a JSON string (policies)
)

// Prop describes one property.
type Prop struct {
	Kind     Kind
	Required bool
	// Replace: changing the property replaces the resource (else the
	// update happens without interruption).
	Replace bool
	Enum    []string
	Pattern *regexp.Regexp
	// MinLen and MaxLen bound strings and lists (0: no bound).
	MinLen, MaxLen int
	// Min and Max bound integers (nil: no bound).
	Min, Max *float64
	Fields   map[string]*Prop // Object
	Elem     *Prop            // List
}

// Provider creates, updates and deletes resources of one type. Every
// method is idempotent under the request's Token: a retry after a crash
// finds what the first call made.
type Provider interface {
	// Create makes the resource and waits until it is usable.
	Create(ctx context.Context, r *Request) (Outcome, error)
	// Update changes the properties that update without interruption
	// (OldProps → Props) in place.
	Update(ctx context.Context, r *Request) (Outcome, error)
	// Delete removes the resource; a resource already gone is success.
	Delete(ctx context.Context, r *Request) error
}

// Request is one provisioning step.
type Request struct {
	StackName, StackID, LogicalID string
	// PhysicalID is the resource's id (Update, Delete).
	PhysicalID string
	// Token is deterministic per stack, resource and operation: creating
	// again with the same token finds the first attempt's resource.
	Token string
	// Props are the resolved properties; OldProps those of the previous
	// state (Update).
	Props, OldProps map[string]any
	// Attributes are the previous state's return values (Update, Delete).
	Attributes map[string]string
	// Started, when set, is called by Create as soon as the physical
	// resource has an id (before waiting for it to be usable): the engine
	// records it so that a rollback or a resumed operation finds it.
	Started func(physicalID string)
}

// Outcome is what a create or update produced.
type Outcome struct {
	PhysicalID string
	Attributes map[string]string
}

// PropertyError is a resource's property validation failure, reported with
// CloudFormation's message.
type PropertyError struct{ msg string }

func (e *PropertyError) Error() string { return e.msg }

// validateProps checks resolved properties against a type's schema and
// returns CloudFormation's message for the first problem.
func (rt *ResourceType) validateProps(logicalID string, props map[string]any) error {
	if err := checkObject("#", props, rt.Properties); err != "" {
		return &PropertyError{fmt.Sprintf("Properties validation failed for resource %s with message: %s", logicalID, err)}
	}
	return nil
}

func checkObject(path string, m map[string]any, fields map[string]*Prop) string {
	var extra, missing []string
	for k := range m {
		if fields[k] == nil {
			extra = append(extra, k)
		}
	}
	for k, p := range fields {
		if _, ok := m[k]; p.Required && !ok {
			missing = append(missing, k)
		}
	}
	if len(extra) > 0 {
		sort.Strings(extra)
		return fmt.Sprintf("%s: extraneous key [%s] is not permitted", path, extra[0])
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return fmt.Sprintf("%s: required key [%s] not found", path, missing[0])
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if err := checkValue(path+"/"+k, m[k], fields[k]); err != "" {
			return err
		}
	}
	return ""
}

func kindName(k Kind) string {
	return [...]string{"String", "Integer", "Number", "Boolean", "JSONObject", "JSONArray", "JSONObject"}[k]
}

func foundName(v any) string {
	switch v.(type) {
	case map[string]any:
		return "JSONObject"
	case []any:
		return "JSONArray"
	case bool:
		return "Boolean"
	case json.Number:
		return "Number"
	case nil:
		return "Null"
	}
	return "String"
}

func checkValue(path string, v any, p *Prop) string {
	wrongType := func() string {
		return fmt.Sprintf("%s: expected type: %s, found: %s", path, kindName(p.Kind), foundName(v))
	}
	switch p.Kind {
	case String:
		s, err := scalarString(v)
		if err != nil {
			return wrongType()
		}
		if p.MinLen > 0 && len(s) < p.MinLen {
			return fmt.Sprintf("%s: expected minLength: %d, actual: %d", path, p.MinLen, len(s))
		}
		if p.MaxLen > 0 && len(s) > p.MaxLen {
			return fmt.Sprintf("%s: expected maxLength: %d, actual: %d", path, p.MaxLen, len(s))
		}
		if len(p.Enum) > 0 && !slices.Contains(p.Enum, s) {
			return fmt.Sprintf("%s: #: only 1 subschema matches out of 2 (%s is not one of [%s])", path, clip(s), strings.Join(p.Enum, ", "))
		}
		if p.Pattern != nil && !p.Pattern.MatchString(s) {
			return fmt.Sprintf("%s: string [%s] does not match pattern %s", path, clip(s), p.Pattern)
		}
	case Integer, Number:
		f, err := floatValue(v)
		if err != nil {
			return wrongType()
		}
		if p.Kind == Integer {
			if _, err := intValue(v); err != nil {
				return wrongType()
			}
		}
		if p.Min != nil && f < *p.Min {
			return fmt.Sprintf("%s: %s is not greater or equal to %s", path, fmtFloat(f), fmtFloat(*p.Min))
		}
		if p.Max != nil && f > *p.Max {
			return fmt.Sprintf("%s: %s is not less or equal to %s", path, fmtFloat(f), fmtFloat(*p.Max))
		}
	case Boolean:
		if _, err := boolValue(v); err != nil {
			return wrongType()
		}
	case Object:
		m, ok := v.(map[string]any)
		if !ok {
			return wrongType()
		}
		return checkObject(path, m, p.Fields)
	case List:
		l, ok := v.([]any)
		if !ok {
			return wrongType()
		}
		if p.MinLen > 0 && len(l) < p.MinLen {
			return fmt.Sprintf("%s: expected minimum item count: %d, found: %d", path, p.MinLen, len(l))
		}
		if p.MaxLen > 0 && len(l) > p.MaxLen {
			return fmt.Sprintf("%s: expected maximum item count: %d, found: %d", path, p.MaxLen, len(l))
		}
		for i, e := range l {
			if err := checkValue(fmt.Sprintf("%s/%d", path, i), e, p.Elem); err != "" {
				return err
			}
		}
	case JSON:
		switch v := v.(type) {
		case map[string]any:
		case string:
			var x any
			if json.Unmarshal([]byte(v), &x) != nil {
				return fmt.Sprintf("%s: the value is not valid JSON", path)
			}
		default:
			return wrongType()
		}
	}
	return ""
}

// HandlerError is a provider's failure with CloudFormation's handler error
// code (NotFound, AlreadyExists, InvalidRequest, NotStabilized,
// ServiceLimitExceeded, ResourceConflict, GeneralServiceException) and the
// service's public message.
type HandlerError struct {
	Code    string
	Message string
}

func (e *HandlerError) Error() string { return e.Message }
