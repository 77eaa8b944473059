package cfn

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// MaxTemplateBytes is the largest TemplateBody CloudFormation accepts.
const MaxTemplateBytes = 51200

// maxDepth bounds the nesting of a template (a decoder bomb is refused).
const maxDepth = 64

// A template document decodes to plain Go values: map[string]any,
// []any, string, json.Number, bool and nil. YAML short-form tags become
// their long forms (!Ref x → {"Ref": x}, !GetAtt a.b → {"Fn::GetAtt":
// [a, b]}, !Sub … → {"Fn::Sub": …}); ordered key lists of the sections
// that CloudFormation reports in order are kept beside the tree.

// document is a decoded template and the declaration order of the keys of
// its top-level sections.
type document struct {
	root  map[string]any
	order map[string][]string // section → keys in declaration order
}

// parseDocument decodes a JSON or YAML template body.
func parseDocument(body string) (*document, error) {
	if len(body) > MaxTemplateBytes {
		return nil, validation("1 validation error detected: Value '[the template]' at 'templateBody' failed to satisfy constraint: Member must have length less than or equal to %d", MaxTemplateBytes)
	}
	trimmed := strings.TrimLeft(body, " \t\r\n\ufeff")
	if trimmed == "" {
		return nil, formatError("unsupported structure.")
	}
	if trimmed[0] == '{' {
		return parseJSON(trimmed)
	}
	return parseYAML(body)
}

func parseJSON(body string) (*document, error) {
	dec := json.NewDecoder(strings.NewReader(body))
	dec.UseNumber()
	doc := &document{order: map[string][]string{}}
	v, err := jsonValue(dec, doc, 0, "")
	if err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			line, col := lineCol(body, int(se.Offset))
			return nil, formatError("JSON not well-formed. (line %d, column %d)", line, col)
		}
		var e *Error
		if errors.As(err, &e) {
			return nil, e
		}
		return nil, formatError("JSON not well-formed. (%s)", clip(err.Error()))
	}
	if _, err := dec.Token(); err != io.EOF {
		line, col := lineCol(body, int(dec.InputOffset()))
		return nil, formatError("JSON not well-formed. (line %d, column %d)", line, col)
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, formatError("unsupported structure.")
	}
	doc.root = m
	return doc, nil
}

// jsonValue reads one value; section is the top-level key the value
// belongs to when it is directly under the root ("" otherwise).
func jsonValue(dec *json.Decoder, doc *document, depth int, section string) (any, error) {
	if depth > maxDepth {
		return nil, formatError("the template is nested deeper than %d levels.", maxDepth)
	}
	t, err := dec.Token()
	if err != nil {
		if err == io.EOF {
			return nil, &json.SyntaxError{Offset: dec.InputOffset()}
		}
		return nil, err
	}
	switch t := t.(type) {
	case json.Delim:
		switch t {
		case '{':
			m := map[string]any{}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, err
				}
				k, ok := kt.(string)
				if !ok {
					return nil, &json.SyntaxError{Offset: dec.InputOffset()}
				}
				if _, dup := m[k]; dup {
					return nil, formatError("JSON not well-formed. (duplicate key '%s')", clip(k))
				}
				sub := ""
				if depth == 0 {
					sub = k
				}
				v, err := jsonValue(dec, doc, depth+1, sub)
				if err != nil {
					return nil, err
				}
				m[k] = v
				if depth == 1 && section != "" {
					doc.order[section] = append(doc.order[section], k)
				}
			}
			if _, err := dec.Token(); err != nil {
				return nil, err
			}
			return m, nil
		case '[':
			l := []any{}
			for dec.More() {
				v, err := jsonValue(dec, doc, depth+1, "")
				if err != nil {
					return nil, err
				}
				l = append(l, v)
			}
			if _, err := dec.Token(); err != nil {
				return nil, err
			}
			return l, nil
		}
		return nil, &json.SyntaxError{Offset: dec.InputOffset()}
	default:
		return t, nil // string, json.Number, bool, nil
	}
}

func lineCol(s string, off int) (int, int) {
	if off > len(s) {
		off = len(s)
	}
	line := 1 + strings.Count(s[:off], "\n")
	col := off - strings.LastIndexByte(s[:off], '\n')
	return line, col
}

func parseYAML(body string) (*document, error) {
	dec := yaml.NewDecoder(strings.NewReader(body))
	var n yaml.Node
	if err := dec.Decode(&n); err != nil {
		if err == io.EOF {
			return nil, formatError("unsupported structure.")
		}
		return nil, formatError("YAML not well-formed. (%s)", yamlMessage(err))
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err != io.EOF {
		return nil, formatError("YAML not well-formed. (a template is one YAML document)")
	}
	if n.Kind == yaml.DocumentNode {
		if len(n.Content) != 1 {
			return nil, formatError("unsupported structure.")
		}
		n = *n.Content[0]
	}
	if n.Kind != yaml.MappingNode {
		return nil, formatError("unsupported structure.")
	}
	doc := &document{order: map[string][]string{}}
	v, err := yamlValue(&n, doc, 0, "")
	if err != nil {
		return nil, err
	}
	doc.root = v.(map[string]any)
	return doc, nil
}

func yamlMessage(err error) string {
	s := strings.TrimPrefix(err.Error(), "yaml: ")
	if l, rest, ok := strings.Cut(s, ": "); ok && strings.HasPrefix(l, "line ") {
		return rest + " (" + l + ")"
	}
	return clip(s)
}

// shortForms maps a YAML tag to the intrinsic function it abbreviates.
var shortForms = map[string]string{
	"!Ref": "Ref", "!Condition": "Condition",
	"!GetAtt": "Fn::GetAtt", "!Sub": "Fn::Sub", "!Join": "Fn::Join", "!Select": "Fn::Select",
	"!Split": "Fn::Split", "!If": "Fn::If", "!Equals": "Fn::Equals", "!Not": "Fn::Not",
	"!And": "Fn::And", "!Or": "Fn::Or", "!FindInMap": "Fn::FindInMap", "!GetAZs": "Fn::GetAZs",
	"!ImportValue": "Fn::ImportValue", "!Base64": "Fn::Base64", "!Cidr": "Fn::Cidr",
	"!Length": "Fn::Length", "!ToJsonString": "Fn::ToJsonString", "!Transform": "Fn::Transform",
}

func yamlValue(n *yaml.Node, doc *document, depth int, section string) (any, error) {
	if depth > maxDepth {
		return nil, formatError("the template is nested deeper than %d levels.", maxDepth)
	}
	if n.Kind == yaml.AliasNode || n.Anchor != "" {
		return nil, formatError("YAML aliases and anchors are not allowed in CloudFormation templates. (line %d, column %d)", n.Line, n.Column)
	}
	if fn, ok := shortForms[n.Tag]; ok {
		plain := *n
		plain.Tag = ""
		switch n.Kind {
		case yaml.ScalarNode:
			plain.Tag = "!!str"
		case yaml.SequenceNode:
			plain.Tag = "!!seq"
		case yaml.MappingNode:
			plain.Tag = "!!map"
		}
		v, err := yamlValue(&plain, doc, depth+1, "")
		if err != nil {
			return nil, err
		}
		if fn == "Fn::GetAtt" {
			if s, ok := v.(string); ok {
				res, attr, found := strings.Cut(s, ".")
				if !found {
					return nil, templateError("every Fn::GetAtt object requires two non-empty parameters. (line %d)", n.Line)
				}
				v = []any{res, attr}
			}
		}
		return map[string]any{fn: v}, nil
	}
	if strings.HasPrefix(n.Tag, "!") && !strings.HasPrefix(n.Tag, "!!") {
		return nil, formatError("YAML not well-formed. (unknown tag %s, line %d, column %d)", clip(n.Tag), n.Line, n.Column)
	}
	switch n.Kind {
	case yaml.MappingNode:
		m := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			kn, vn := n.Content[i], n.Content[i+1]
			if kn.Kind != yaml.ScalarNode {
				return nil, formatError("YAML not well-formed. (a mapping key must be a scalar, line %d, column %d)", kn.Line, kn.Column)
			}
			if kn.Tag == "!!merge" {
				return nil, formatError("YAML merge keys are not allowed in CloudFormation templates. (line %d, column %d)", kn.Line, kn.Column)
			}
			k := kn.Value
			if _, dup := m[k]; dup {
				return nil, formatError("YAML not well-formed. (duplicate key '%s', line %d, column %d)", clip(k), kn.Line, kn.Column)
			}
			sub := ""
			if depth == 0 {
				sub = k
			}
			v, err := yamlValue(vn, doc, depth+1, sub)
			if err != nil {
				return nil, err
			}
			m[k] = v
			if depth == 1 && section != "" {
				doc.order[section] = append(doc.order[section], k)
			}
		}
		return m, nil
	case yaml.SequenceNode:
		l := make([]any, 0, len(n.Content))
		for _, c := range n.Content {
			v, err := yamlValue(c, doc, depth+1, "")
			if err != nil {
				return nil, err
			}
			l = append(l, v)
		}
		return l, nil
	case yaml.ScalarNode:
		return yamlScalar(n)
	}
	return nil, formatError("unsupported structure.")
}

func yamlScalar(n *yaml.Node) (any, error) {
	switch n.ShortTag() {
	case "!!null":
		return nil, nil
	case "!!bool":
		var b bool
		if err := n.Decode(&b); err != nil {
			return nil, formatError("YAML not well-formed. (line %d, column %d)", n.Line, n.Column)
		}
		return b, nil
	case "!!int":
		var i int64
		if err := n.Decode(&i); err != nil {
			var u uint64
			if err := n.Decode(&u); err != nil {
				return n.Value, nil
			}
			return json.Number(strconv.FormatUint(u, 10)), nil
		}
		return json.Number(strconv.FormatInt(i, 10)), nil
	case "!!float":
		var f float64
		if err := n.Decode(&f); err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return n.Value, nil
		}
		return json.Number(strings.TrimSpace(n.Value)), nil
	case "!!timestamp", "!!binary":
		return n.Value, nil
	}
	return n.Value, nil
}

func clip(s string) string {
	if len(s) > 128 {
		return s[:128] + "…"
	}
	return s
}

// marshalJSON renders a value as CloudFormation shows JSON (for change-set
// details, GetTemplate of processed templates, ResourceProperties).
func marshalJSON(v any) string {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return fmt.Sprintf("%v", v)
	}
	return strings.TrimSuffix(buf.String(), "\n")
}
