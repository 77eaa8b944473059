package awsproto

import (
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"
)

// Limits of a query request, far above what any operation takes, so that
// a hostile request cannot make the decoder allocate much.
const (
	maxQueryParams = 20000
	maxQueryDepth  = 12
	maxListIndex   = 100000
)

// DecodeQuery turns the parameters of an awsQuery request into a value:
// "A.B=x" is member B of structure A, "A.member.N" the N-th element of
// list A (N from 1, no gaps), "A.entry.N.key"/"A.entry.N.value" an entry
// of map A (Name/Value where the model renames them). Action and Version
// are left out. With ec2 set, lists are
// "A.N" as EC2 writes them.
func DecodeQuery(v url.Values, ec2 bool) (map[string]any, error) {
	if len(v) > maxQueryParams {
		return nil, &DecodeError{Reason: fmt.Sprintf("The request has more than %d parameters.", maxQueryParams)}
	}
	root := &qnode{}
	keys := make([]string, 0, len(v))
	for k := range v {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if k == "Action" || k == "Version" {
			continue
		}
		vs := v[k]
		if len(vs) > 1 {
			return nil, &DecodeError{Member: Clip(k), Reason: "is given more than once"}
		}
		parts := strings.Split(k, ".")
		if len(parts) > maxQueryDepth {
			return nil, &DecodeError{Member: Clip(k), Reason: "is nested too deeply"}
		}
		if err := root.put(parts, vs[0], k, ec2); err != nil {
			return nil, err
		}
	}
	out, err := root.value("")
	if err != nil {
		return nil, err
	}
	m, _ := out.(map[string]any)
	if m == nil {
		m = map[string]any{}
	}
	return m, nil
}

// qnode is a node of the parameter tree while it is being built: a leaf
// (set), a structure (fields), a list (items) or a map (entries).
type qnode struct {
	leaf    *string
	fields  map[string]*qnode
	items   map[int]*qnode
	entries map[int]*qnode
}

func (n *qnode) put(parts []string, val, key string, ec2 bool) error {
	if len(parts) == 0 {
		if n.leaf != nil || n.fields != nil || n.items != nil || n.entries != nil {
			return &DecodeError{Member: Clip(key), Reason: "conflicts with another parameter"}
		}
		n.leaf = &val
		return nil
	}
	if n.leaf != nil {
		return &DecodeError{Member: Clip(key), Reason: "conflicts with another parameter"}
	}
	p := parts[0]
	if p == "" {
		return &DecodeError{Member: Clip(key), Reason: "is not a valid parameter name"}
	}
	idx, isIndex := index(p)
	switch {
	case (p == "member" || p == "entry") && len(parts) >= 2:
		i, ok := index(parts[1])
		if !ok {
			return &DecodeError{Member: Clip(key), Reason: "has an invalid list index"}
		}
		m := &n.items
		if p == "entry" {
			m = &n.entries
		}
		if n.fields != nil || (p == "member" && n.entries != nil) || (p == "entry" && n.items != nil) {
			return &DecodeError{Member: Clip(key), Reason: "conflicts with another parameter"}
		}
		if *m == nil {
			*m = map[int]*qnode{}
		}
		c := (*m)[i]
		if c == nil {
			c = &qnode{}
			(*m)[i] = c
		}
		return c.put(parts[2:], val, key, ec2)
	case ec2 && isIndex:
		if n.fields != nil || n.entries != nil {
			return &DecodeError{Member: Clip(key), Reason: "conflicts with another parameter"}
		}
		if n.items == nil {
			n.items = map[int]*qnode{}
		}
		c := n.items[idx]
		if c == nil {
			c = &qnode{}
			n.items[idx] = c
		}
		return c.put(parts[1:], val, key, ec2)
	}
	if n.items != nil || n.entries != nil {
		return &DecodeError{Member: Clip(key), Reason: "conflicts with another parameter"}
	}
	if n.fields == nil {
		n.fields = map[string]*qnode{}
	}
	c := n.fields[p]
	if c == nil {
		c = &qnode{}
		n.fields[p] = c
	}
	return c.put(parts[1:], val, key, ec2)
}

// index parses a list index (1 … maxListIndex).
func index(s string) (int, bool) {
	if s == "" || len(s) > 6 || s[0] == '0' {
		return 0, false
	}
	i, err := strconv.Atoi(s)
	if err != nil || i < 1 || i > maxListIndex {
		return 0, false
	}
	return i, true
}

func (n *qnode) value(path string) (any, error) {
	switch {
	case n.leaf != nil:
		return *n.leaf, nil
	case n.items != nil:
		l := make([]any, len(n.items))
		for i := range l {
			c, ok := n.items[i+1]
			if !ok {
				return nil, &DecodeError{Member: Clip(path), Reason: fmt.Sprintf("is a list whose indexes must run from 1 to %d without gaps", len(n.items))}
			}
			v, err := c.value(fmt.Sprintf("%s.member.%d", path, i+1))
			if err != nil {
				return nil, err
			}
			l[i] = v
		}
		return l, nil
	case n.entries != nil:
		m := Map{}
		for i := 1; i <= len(n.entries); i++ {
			c, ok := n.entries[i]
			if !ok {
				return nil, &DecodeError{Member: Clip(path), Reason: fmt.Sprintf("is a map whose entry indexes must run from 1 to %d without gaps", len(n.entries))}
			}
			// Entries are key/value, or Name/Value for maps whose model
			// renames them (SNS MessageAttributes).
			k, kok := c.fields["key"]
			val, vok := c.fields["value"]
			if !kok && !vok {
				k, kok = c.fields["Name"]
				val, vok = c.fields["Value"]
			}
			if !kok || k.leaf == nil || !vok {
				return nil, &DecodeError{Member: Clip(fmt.Sprintf("%s.entry.%d", path, i)), Reason: "needs a key and a value"}
			}
			if _, dup := m[*k.leaf]; dup {
				return nil, &DecodeError{Member: Clip(fmt.Sprintf("%s.entry.%d", path, i)), Reason: "repeats the key " + strconv.Quote(Clip(*k.leaf))}
			}
			v, err := val.value(fmt.Sprintf("%s.entry.%d.value", path, i))
			if err != nil {
				return nil, err
			}
			m[*k.leaf] = v
		}
		return m, nil
	}
	s := make(map[string]any, len(n.fields))
	for name, c := range n.fields {
		v, err := c.value(join(path, name))
		if err != nil {
			return nil, err
		}
		s[name] = v
	}
	return s, nil
}

// Clip shortens a value a client sent to 128 bytes for quoting it in an
// error message (a longer value ends in "…").
func Clip(s string) string {
	if len(s) > 128 {
		return s[:128] + "…"
	}
	return s
}
