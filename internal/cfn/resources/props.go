package resources

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/regionfs/regionfs/internal/api/awserr"
	"github.com/regionfs/regionfs/internal/cfn"
	"github.com/regionfs/regionfs/internal/control/replconf"
)

// Property accessors over resolved template values (validated against the
// type's schema before a provider sees them).

func str(props map[string]any, key string) string {
	v, ok := props[key]
	if !ok || v == nil {
		return ""
	}
	switch v := v.(type) {
	case string:
		return v
	case json.Number:
		return v.String()
	case bool:
		return strconv.FormatBool(v)
	}
	return fmt.Sprint(v)
}

func has(props map[string]any, key string) bool {
	_, ok := props[key]
	return ok
}

func boolean(props map[string]any, key string) bool {
	switch v := props[key].(type) {
	case bool:
		return v
	case string:
		return strings.EqualFold(v, "true")
	}
	return false
}

func number(props map[string]any, key string) (float64, bool) {
	s := str(props, key)
	if s == "" {
		return 0, false
	}
	f, err := strconv.ParseFloat(s, 64)
	return f, err == nil
}

func object(props map[string]any, key string) map[string]any {
	m, _ := props[key].(map[string]any)
	return m
}

func list(props map[string]any, key string) []any {
	l, _ := props[key].([]any)
	return l
}

func strings_(props map[string]any, key string) []string {
	var out []string
	for _, v := range list(props, key) {
		out = append(out, str(map[string]any{"v": v}, "v"))
	}
	return out
}

// jsonText renders a JSON-typed property (an object or a JSON string).
func jsonText(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// Schema helpers.

func p(k cfn.Kind) *cfn.Prop { return &cfn.Prop{Kind: k} }

func req(pr *cfn.Prop) *cfn.Prop { pr.Required = true; return pr }

func replace(pr *cfn.Prop) *cfn.Prop { pr.Replace = true; return pr }

func enum(vals ...string) *cfn.Prop { return &cfn.Prop{Kind: cfn.String, Enum: vals} }

func pattern(re string, minLen, maxLen int) *cfn.Prop {
	return &cfn.Prop{Kind: cfn.String, Pattern: regexp.MustCompile(re), MinLen: minLen, MaxLen: maxLen}
}

func obj(fields map[string]*cfn.Prop) *cfn.Prop { return &cfn.Prop{Kind: cfn.Object, Fields: fields} }

func listOf(elem *cfn.Prop) *cfn.Prop { return &cfn.Prop{Kind: cfn.List, Elem: elem} }

func tagList() *cfn.Prop {
	return listOf(obj(map[string]*cfn.Prop{"Key": req(p(cfn.String)), "Value": req(p(cfn.String))}))
}

// tagsOf reads a [{Key, Value}] property.
func tagsOf(props map[string]any, key string) [][2]string {
	var out [][2]string
	for _, v := range list(props, key) {
		m, _ := v.(map[string]any)
		out = append(out, [2]string{str(m, "Key"), str(m, "Value")})
	}
	return out
}

// tagDiff returns the tags to set and the keys to remove to go from old
// to new.
func tagDiff(old, new [][2]string) (set [][2]string, remove []string) {
	oldM := map[string]string{}
	for _, t := range old {
		oldM[t[0]] = t[1]
	}
	newM := map[string]bool{}
	for _, t := range new {
		newM[t[0]] = true
		if v, ok := oldM[t[0]]; !ok || v != t[1] {
			set = append(set, t)
		}
	}
	for _, t := range old {
		if !newM[t[0]] {
			remove = append(remove, t[0])
		}
	}
	return set, remove
}

// handlerError turns a domain error into CloudFormation's handler error
// through package awserr's table: its handler code and public message. An
// error a peer region answered is read back as the peer wrote it. Errors
// the table gives no handler code pass through: the engine reports them
// as internal failures and logs them.
func handlerError(err error) error {
	if err == nil {
		return nil
	}
	var pe *replconf.PeerError
	if errors.As(err, &pe) {
		err = awserr.FromREST(pe.Status, pe.Code, pe.Message)
	}
	code, msg, ok := awserr.HandlerError(err)
	if !ok {
		return err
	}
	return &cfn.HandlerError{Code: code, Message: msg}
}
