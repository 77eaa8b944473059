package ec2

import (
	"net/url"
	"sort"
	"strconv"
	"strings"

	"github.com/regionfs/regionfs/internal/api/awserr"
	"github.com/regionfs/regionfs/internal/api/awsproto"
	"github.com/regionfs/regionfs/internal/pagetoken"
)

// params are the decoded query parameters of one request.
type params struct {
	v     url.Values
	reqID string
}

// get returns a scalar parameter.
func (p params) get(name string) string { return p.v.Get(name) }

// list returns the values of Name.1, Name.2, … in index order.
func (p params) list(name string) ([]string, error) {
	type iv struct {
		i int
		v string
	}
	var out []iv
	for k, vs := range p.v {
		rest, ok := strings.CutPrefix(k, name+".")
		if !ok || strings.Contains(rest, ".") {
			continue
		}
		i, err := strconv.Atoi(rest)
		if err != nil || i < 1 {
			return nil, invalidParameter("The parameter %s has an invalid index: %q", name, rest)
		}
		out = append(out, iv{i, vs[0]})
	}
	sort.Slice(out, func(a, b int) bool { return out[a].i < out[b].i })
	vals := make([]string, len(out))
	for i, x := range out {
		vals[i] = x.v
	}
	return vals, nil
}

// filter is one Filter.N of a Describe call.
type filter struct {
	name   string
	values []string
}

func (p params) filters() ([]filter, error) {
	byIndex := map[int]*filter{}
	for k, vs := range p.v {
		rest, ok := strings.CutPrefix(k, "Filter.")
		if !ok {
			continue
		}
		idx, field, _ := strings.Cut(rest, ".")
		i, err := strconv.Atoi(idx)
		if err != nil || i < 1 {
			return nil, invalidParameter("The parameter Filter has an invalid index: %q", idx)
		}
		f := byIndex[i]
		if f == nil {
			f = &filter{}
			byIndex[i] = f
		}
		switch {
		case field == "Name":
			f.name = vs[0]
		case strings.HasPrefix(field, "Value."):
			if _, err := strconv.Atoi(strings.TrimPrefix(field, "Value.")); err != nil {
				return nil, invalidParameter("The parameter Filter.%s has an invalid value index", rest)
			}
			f.values = append(f.values, vs[0])
		default:
			return nil, errorf(awserr.ErrEC2UnknownParameter, "The parameter Filter.%s is not recognized", rest)
		}
	}
	idx := make([]int, 0, len(byIndex))
	for i := range byIndex {
		idx = append(idx, i)
	}
	sort.Ints(idx)
	fs := make([]filter, 0, len(idx))
	for _, i := range idx {
		f := byIndex[i]
		if f.name == "" {
			return nil, errorf(awserr.ErrEC2InvalidParameterValue, "The filter Filter.%d has no Name", i)
		}
		if len(f.values) == 0 {
			return nil, errorf(awserr.ErrEC2InvalidParameterValue, "The filter '%s' needs at least one value", f.name)
		}
		fs = append(fs, *f)
	}
	return fs, nil
}

// checkKnown rejects parameters the operation does not take; known lists
// top-level names (before the first dot).
func (p params) checkKnown(known ...string) error {
	for k := range p.v {
		top, _, _ := strings.Cut(k, ".")
		ok := top == "Action" || top == "Version" || top == "DryRun"
		for _, n := range known {
			ok = ok || top == n
		}
		if !ok {
			return errorf(awserr.ErrEC2UnknownParameter, "The parameter %s is not recognized", k)
		}
	}
	return nil
}

// tokenKind is the kind of EC2's NextTokens (package pagetoken).
const tokenKind byte = 'e'

// page applies MaxResults/NextToken to n items, returning the slice bounds
// and the next token ("" on the last page).
func (p params) page(n int) (lo, hi int, next string, err error) {
	lo, hi = 0, n
	if t := p.get("NextToken"); t != "" {
		off, ok := pagetoken.DecodeIndex(tokenKind, t, n)
		if !ok {
			return 0, 0, "", errorf(awserr.ErrEC2InvalidNextToken, "The token '%s' is invalid.", awsproto.Clip(t))
		}
		lo = off
	}
	if m := p.get("MaxResults"); m != "" {
		size, err := strconv.Atoi(m)
		if err != nil || size < 5 || size > 1000 {
			return 0, 0, "", invalidParameter("Value ( %s ) for parameter maxResults is invalid. Expecting a value between 5 and 1000.", awsproto.Clip(m))
		}
		if lo+size < n {
			hi = lo + size
			next = pagetoken.EncodeIndex(tokenKind, hi)
		}
	}
	return lo, hi, next, nil
}

// match reports whether value matches an EC2 filter pattern: * matches any
// run of characters, ? any one character, \ escapes.
func match(pattern, value string) bool {
	if !strings.ContainsAny(pattern, `*?\`) {
		return pattern == value
	}
	p, v := []rune(pattern), []rune(value)
	var rec func(i, j int) bool
	memo := map[[2]int]bool{}
	rec = func(i, j int) bool {
		key := [2]int{i, j}
		if r, ok := memo[key]; ok {
			return r
		}
		var r bool
		switch {
		case i == len(p):
			r = j == len(v)
		case p[i] == '*':
			r = rec(i+1, j) || (j < len(v) && rec(i, j+1))
		case p[i] == '?':
			r = j < len(v) && rec(i+1, j+1)
		case p[i] == '\\' && i+1 < len(p):
			r = j < len(v) && v[j] == p[i+1] && rec(i+2, j+1)
		default:
			r = j < len(v) && v[j] == p[i] && rec(i+1, j+1)
		}
		memo[key] = r
		return r
	}
	return rec(0, 0)
}

// anyMatch reports whether any of the values matches any pattern.
func anyMatch(patterns []string, values ...string) bool {
	for _, p := range patterns {
		for _, v := range values {
			if match(p, v) {
				return true
			}
		}
	}
	return false
}
