package monitor

import (
	"fmt"
	"strings"

	"github.com/regionfs/regionfs/internal/refusal"
)

// Limits of a composite alarm's rule (CloudWatch's).
const (
	MaxRuleLength   = 10240 // characters
	MaxRuleChildren = 100   // distinct alarms one rule names
	maxRuleDepth    = 100   // nesting of NOT and parentheses
)

// rule is a parsed AlarmRule: a boolean expression over the states of
// other alarms.
//
//	expr    = and { "OR" and }
//	and     = unary { "AND" unary }
//	unary   = "NOT" unary | primary
//	primary = "(" expr ")" | "TRUE" | "FALSE" | state "(" ref ")"
//	state   = "ALARM" | "OK" | "INSUFFICIENT_DATA"
//	ref     = '"' name-or-ARN '"' | name-or-ARN up to ")"
//
// Keywords are matched without regard to case, as CloudWatch does
// (AlarmRule "false" is its documented way to break a cycle).
type rule struct {
	op       byte // 'T' TRUE, 'F' FALSE, 'S' state, '!' NOT, '&' AND, '|' OR
	state    string
	ref      string // as written: a name or an ARN
	children []*rule
}

// eval computes the rule given each referenced alarm's state.
func (r *rule) eval(state func(ref string) string) bool {
	switch r.op {
	case 'T':
		return true
	case 'F':
		return false
	case 'S':
		return state(r.ref) == r.state
	case '!':
		return !r.children[0].eval(state)
	case '&':
		for _, c := range r.children {
			if !c.eval(state) {
				return false
			}
		}
		return true
	default: // '|'
		for _, c := range r.children {
			if c.eval(state) {
				return true
			}
		}
		return false
	}
}

// refs appends the alarm references of r (as written, in order).
func (r *rule) refs(out []string) []string {
	if r.op == 'S' {
		return append(out, r.ref)
	}
	for _, c := range r.children {
		out = c.refs(out)
	}
	return out
}

// ruleError is CloudWatch's refusal of a rule that does not parse.
func ruleError(format string, args ...any) error {
	return refusal.Errorf(ErrValidation, "Error in AlarmRule [%s]", fmt.Sprintf(format, args...))
}

type ruleParser struct {
	s     string
	pos   int
	depth int
}

// parseRule parses an AlarmRule; the refusal says where it went wrong.
func parseRule(s string) (*rule, error) {
	switch {
	case s == "":
		return nil, missing("AlarmRule")
	case len([]rune(s)) > MaxRuleLength:
		return nil, invalid("The value of AlarmRule must be at most %d characters long.", MaxRuleLength)
	}
	p := &ruleParser{s: s}
	r, err := p.expr()
	if err != nil {
		return nil, err
	}
	p.space()
	if p.pos < len(p.s) {
		return nil, p.unexpected()
	}
	refs := map[string]bool{}
	for _, n := range r.refs(nil) {
		refs[n] = true
	}
	if len(refs) > MaxRuleChildren {
		return nil, refusal.Errorf(ErrValidation, "The AlarmRule names %d alarms; a composite alarm can be based on at most %d.", len(refs), MaxRuleChildren)
	}
	return r, nil
}

func (p *ruleParser) space() {
	for p.pos < len(p.s) && (p.s[p.pos] == ' ' || p.s[p.pos] == '\t' || p.s[p.pos] == '\n' || p.s[p.pos] == '\r') {
		p.pos++
	}
}

// word returns the keyword at pos (letters and underscores), not
// consuming it.
func (p *ruleParser) word() string {
	i := p.pos
	for i < len(p.s) && (p.s[i] >= 'A' && p.s[i] <= 'Z' || p.s[i] >= 'a' && p.s[i] <= 'z' || p.s[i] == '_') {
		i++
	}
	return strings.ToUpper(p.s[p.pos:i])
}

func (p *ruleParser) unexpected() error {
	if p.pos >= len(p.s) {
		return ruleError("Unexpected end of rule at char %d", p.pos+1)
	}
	tok := p.s[p.pos:]
	if w := p.word(); w != "" {
		tok = p.s[p.pos : p.pos+len(w)]
	} else {
		tok = string([]rune(tok)[:1])
	}
	return ruleError("Unsupported token '%s' at char %d", clip(tok), p.pos+1)
}

func (p *ruleParser) expr() (*rule, error) {
	return p.binary('|', "OR", p.and)
}

func (p *ruleParser) and() (*rule, error) {
	return p.binary('&', "AND", p.unary)
}

func (p *ruleParser) binary(op byte, word string, next func() (*rule, error)) (*rule, error) {
	first, err := next()
	if err != nil {
		return nil, err
	}
	r := &rule{op: op, children: []*rule{first}}
	for {
		p.space()
		if p.word() != word {
			break
		}
		p.pos += len(word)
		c, err := next()
		if err != nil {
			return nil, err
		}
		r.children = append(r.children, c)
	}
	if len(r.children) == 1 {
		return first, nil
	}
	return r, nil
}

func (p *ruleParser) unary() (*rule, error) {
	p.space()
	if p.word() == "NOT" {
		if p.depth++; p.depth > maxRuleDepth {
			return nil, ruleError("The rule nests more than %d levels at char %d", maxRuleDepth, p.pos+1)
		}
		p.pos += 3
		c, err := p.unary()
		p.depth--
		if err != nil {
			return nil, err
		}
		return &rule{op: '!', children: []*rule{c}}, nil
	}
	return p.primary()
}

func (p *ruleParser) primary() (*rule, error) {
	p.space()
	if p.pos < len(p.s) && p.s[p.pos] == '(' {
		if p.depth++; p.depth > maxRuleDepth {
			return nil, ruleError("The rule nests more than %d levels at char %d", maxRuleDepth, p.pos+1)
		}
		p.pos++
		r, err := p.expr()
		p.depth--
		if err != nil {
			return nil, err
		}
		p.space()
		if p.pos >= len(p.s) || p.s[p.pos] != ')' {
			return nil, p.unexpected()
		}
		p.pos++
		return r, nil
	}
	w := p.word()
	switch w {
	case "TRUE":
		p.pos += len(w)
		return &rule{op: 'T'}, nil
	case "FALSE":
		p.pos += len(w)
		return &rule{op: 'F'}, nil
	case StateAlarm, StateOK, StateInsufficientData:
		start := p.pos
		p.pos += len(w)
		p.space()
		if p.pos >= len(p.s) || p.s[p.pos] != '(' {
			return nil, p.unexpected()
		}
		p.pos++
		p.space()
		ref, err := p.ref()
		if err != nil {
			return nil, err
		}
		if ref == "" {
			return nil, ruleError("Empty alarm name in %s() at char %d", w, start+1)
		}
		return &rule{op: 'S', state: w, ref: ref}, nil
	}
	return nil, p.unexpected()
}

// ref reads an alarm reference and the ")" that closes it.
func (p *ruleParser) ref() (string, error) {
	if p.pos < len(p.s) && p.s[p.pos] == '"' {
		end := strings.IndexByte(p.s[p.pos+1:], '"')
		if end < 0 {
			return "", ruleError("Unterminated quoted alarm name at char %d", p.pos+1)
		}
		ref := p.s[p.pos+1 : p.pos+1+end]
		p.pos += end + 2
		p.space()
		if p.pos >= len(p.s) || p.s[p.pos] != ')' {
			return "", p.unexpected()
		}
		p.pos++
		return ref, nil
	}
	end := strings.IndexAny(p.s[p.pos:], "()\"")
	if end < 0 || p.s[p.pos+end] != ')' {
		if end >= 0 {
			p.pos += end
		} else {
			p.pos = len(p.s)
		}
		return "", p.unexpected()
	}
	ref := strings.TrimSpace(p.s[p.pos : p.pos+end])
	p.pos += end + 1
	return ref, nil
}

// String writes r in canonical form: keywords upper case, names quoted,
// every operation parenthesised.
func (r *rule) String() string {
	switch r.op {
	case 'T':
		return "TRUE"
	case 'F':
		return "FALSE"
	case 'S':
		return r.state + `("` + r.ref + `")`
	case '!':
		return "NOT " + r.children[0].String()
	}
	word := " AND "
	if r.op == '|' {
		word = " OR "
	}
	parts := make([]string, len(r.children))
	for i, c := range r.children {
		parts[i] = c.String()
	}
	return "(" + strings.Join(parts, word) + ")"
}
