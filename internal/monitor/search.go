package monitor

import (
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Search expressions (SEARCH(' {Namespace, Dim1, ...} SearchTerm ',
// 'Statistic', Period) in GetMetricData): a metric schema picks the
// namespace and the exact set of dimension names; the search term is
// partial matches (tokens), exact matches ("..."), property designators
// (MetricName=, Namespace=, a dimension name=), AND (or juxtaposition),
// OR, NOT and parentheses, matched against the metric name, the
// namespace, the dimension names and the dimension values.

// maxSearchQuery bounds a search query's length (as on CloudWatch).
const maxSearchQuery = 1024

// maxSearchSeries bounds how many time series one search returns.
const maxSearchSeries = 500

// searchQuery is a parsed search: the schema (when given) and the term.
type searchQuery struct {
	hasSchema bool
	namespace string
	dims      []string // the schema's dimension names
	term      searchNode
}

// searchNode matches a metric.
type searchNode interface {
	match(m *Metric) bool
}

type (
	searchAnd struct{ l, r searchNode }
	searchOr  struct{ l, r searchNode }
	searchNot struct{ x searchNode }
	// searchWord is a partial match (tokens) or, exact, a whole-string
	// match, against the property prop (MetricName, Namespace, a
	// dimension's name) or, prop empty, against every string of the metric.
	searchWord struct {
		prop  string
		value string
		exact bool
	}
)

func (n searchAnd) match(m *Metric) bool { return n.l.match(m) && n.r.match(m) }
func (n searchOr) match(m *Metric) bool  { return n.l.match(m) || n.r.match(m) }
func (n searchNot) match(m *Metric) bool { return !n.x.match(m) }

func (n searchWord) match(m *Metric) bool {
	test := func(s string) bool {
		if n.exact {
			return s == n.value
		}
		return partialMatch(s, n.value)
	}
	switch n.prop {
	case "":
		if test(m.Namespace) || test(m.Name) {
			return true
		}
		for _, d := range m.Dimensions {
			if test(d.Name) || test(d.Value) {
				return true
			}
		}
		return false
	case "MetricName":
		return test(m.Name)
	case "Namespace":
		return test(m.Namespace)
	}
	v, ok := m.Dimension(n.prop)
	return ok && test(v)
}

// matches reports whether m is in the search's results.
func (q *searchQuery) matches(m *Metric) bool {
	if q.hasSchema {
		if m.Namespace != q.namespace || len(m.Dimensions) != len(q.dims) {
			return false
		}
		for _, d := range q.dims {
			if _, ok := m.Dimension(d); !ok {
				return false
			}
		}
	}
	return q.term == nil || q.term.match(m)
}

// parseSearch parses a search query (the first argument of SEARCH).
func parseSearch(s string) (*searchQuery, error) {
	if len(s) > maxSearchQuery {
		return nil, mathErrorf("the search query is longer than %d characters", maxSearchQuery)
	}
	q := &searchQuery{}
	rest := strings.TrimSpace(s)
	if strings.HasPrefix(rest, "{") {
		end := schemaEnd(rest)
		if end < 0 {
			return nil, mathErrorf("the metric schema of the search %q has no closing }", s)
		}
		names, err := schemaNames(rest[1:end])
		if err != nil {
			return nil, err
		}
		q.hasSchema, q.namespace, q.dims = true, names[0], names[1:]
		rest = strings.TrimSpace(rest[end+1:])
		rest = strings.TrimSpace(strings.TrimPrefix(rest, ","))
	}
	if rest != "" {
		p := &searchParser{lex: searchLexer{s: rest}}
		p.next()
		n, err := p.or()
		if err != nil {
			return nil, err
		}
		if p.tok.kind != 0 {
			return nil, mathErrorf("unexpected %q in the search term %q", p.tok.text, rest)
		}
		q.term = n
	}
	if !q.hasSchema && q.term == nil {
		return nil, mathErrorf("a search needs a metric schema, a search term or both")
	}
	return q, nil
}

// schemaEnd is the index of the } closing the schema that s begins with
// (quoted names may hold one), or -1.
func schemaEnd(s string) int {
	quoted := false
	for i := 1; i < len(s); i++ {
		switch {
		case s[i] == '\\' && quoted:
			i++
		case s[i] == '"':
			quoted = !quoted
		case s[i] == '}' && !quoted:
			return i
		}
	}
	return -1
}

// schemaNames splits a schema's inside ("AWS/EFS, FileSystemId") into
// its namespace and dimension names; a name with spaces or other
// characters is double-quoted.
func schemaNames(s string) ([]string, error) {
	var names []string
	for len(s) > 0 || len(names) == 0 {
		s = strings.TrimSpace(s)
		var name string
		if strings.HasPrefix(s, "\"") {
			v, n, ok := unquoteSearch(s)
			if !ok {
				return nil, mathErrorf("an unterminated quoted name in the metric schema")
			}
			name, s = v, strings.TrimSpace(s[n:])
		} else {
			i := strings.IndexByte(s, ',')
			if i < 0 {
				i = len(s)
			}
			name, s = strings.TrimSpace(s[:i]), s[i:]
		}
		if name == "" {
			return nil, mathErrorf("an empty name in the metric schema")
		}
		names = append(names, name)
		if s == "" {
			break
		}
		if s[0] != ',' {
			return nil, mathErrorf("expected , after %q in the metric schema", name)
		}
		s = s[1:]
		if strings.TrimSpace(s) == "" {
			return nil, mathErrorf("an empty name in the metric schema")
		}
	}
	if len(names)-1 > MaxDimensions {
		return nil, mathErrorf("the metric schema names more than %d dimensions", MaxDimensions)
	}
	return names, nil
}

// unquoteSearch reads the double-quoted string s begins with (\" \\ \(
// \) escaped): its value and how many bytes it took.
func unquoteSearch(s string) (string, int, bool) {
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		switch s[i] {
		case '\\':
			if i+1 == len(s) {
				return "", 0, false
			}
			i++
			b.WriteByte(s[i])
		case '"':
			return b.String(), i + 1, true
		default:
			b.WriteByte(s[i])
		}
	}
	return "", 0, false
}

type searchToken struct {
	kind byte // 'w' word, 'q' quoted, '(' ')' '=', 0 end
	text string
}

type searchLexer struct {
	s string
	i int
}

func (l *searchLexer) next() (searchToken, error) {
	for l.i < len(l.s) && unicode.IsSpace(rune(l.s[l.i])) {
		l.i++
	}
	if l.i == len(l.s) {
		return searchToken{}, nil
	}
	switch c := l.s[l.i]; c {
	case '(', ')', '=':
		l.i++
		return searchToken{kind: c, text: string(c)}, nil
	case '"':
		v, n, ok := unquoteSearch(l.s[l.i:])
		if !ok {
			return searchToken{}, mathErrorf("an unterminated \" in the search term")
		}
		l.i += n
		return searchToken{kind: 'q', text: v}, nil
	}
	j := l.i
	for j < len(l.s) && !unicode.IsSpace(rune(l.s[j])) && !strings.ContainsRune("()=\"", rune(l.s[j])) {
		j++
	}
	w := l.s[l.i:j]
	l.i = j
	return searchToken{kind: 'w', text: w}, nil
}

// searchParser: or := and {OR and}; and := not {[AND] not};
// not := NOT not | ( or ) | [name =] word-or-quoted.
type searchParser struct {
	lex   searchLexer
	tok   searchToken
	err   error
	depth int
}

func (p *searchParser) next() {
	if p.err != nil {
		return
	}
	p.tok, p.err = p.lex.next()
}

func (p *searchParser) keyword(k string) bool { return p.tok.kind == 'w' && p.tok.text == k }

func (p *searchParser) or() (searchNode, error) {
	l, err := p.and()
	if err != nil {
		return nil, err
	}
	for p.keyword("OR") {
		p.next()
		r, err := p.and()
		if err != nil {
			return nil, err
		}
		l = searchOr{l, r}
	}
	return l, p.err
}

func (p *searchParser) and() (searchNode, error) {
	l, err := p.not()
	if err != nil {
		return nil, err
	}
	for {
		if p.keyword("AND") {
			p.next()
		} else if p.tok.kind == 0 || p.tok.kind == ')' || p.keyword("OR") {
			return l, p.err
		}
		r, err := p.not()
		if err != nil {
			return nil, err
		}
		l = searchAnd{l, r}
	}
}

func (p *searchParser) not() (searchNode, error) {
	if p.err != nil {
		return nil, p.err
	}
	p.depth++
	defer func() { p.depth-- }()
	if p.depth > 100 {
		return nil, mathErrorf("the search term nests too deeply")
	}
	switch {
	case p.keyword("NOT"):
		p.next()
		x, err := p.not()
		if err != nil {
			return nil, err
		}
		return searchNot{x}, nil
	case p.tok.kind == '(':
		p.next()
		x, err := p.or()
		if err != nil {
			return nil, err
		}
		if p.tok.kind != ')' {
			return nil, mathErrorf("expected ) in the search term")
		}
		p.next()
		return x, p.err
	case p.tok.kind == 'q':
		w := searchWord{value: p.tok.text, exact: true}
		p.next()
		return w, p.err
	case p.tok.kind == 'w':
		w := searchWord{value: p.tok.text}
		p.next()
		if p.tok.kind != '=' {
			return w, p.err
		}
		p.next()
		switch p.tok.kind {
		case 'w':
			w = searchWord{prop: w.value, value: p.tok.text}
		case 'q':
			w = searchWord{prop: w.value, value: p.tok.text, exact: true}
		default:
			return nil, mathErrorf("expected a value after %s= in the search term", w.value)
		}
		p.next()
		return w, p.err
	case p.tok.kind == 0:
		return nil, mathErrorf("the search term ends too early")
	}
	return nil, mathErrorf("unexpected %q in the search term", p.tok.text)
}

// searchAtoms splits s into its tokens' atoms: runs of letters and
// digits, cut at every other character, where a lower-case letter is
// followed by an upper-case one (CustomCount), before the last capital
// of a run of capitals followed by a lower-case letter (SDBFailure), and
// between letters and digits (Count1). groups[i] is the word (the run
// between delimiters) atom i belongs to.
func searchAtoms(s string) (atoms []string, groups []int) {
	word := 0
	start := -1
	var prev rune
	for i, r := range s {
		if !unicode.IsLetter(r) && !unicode.IsDigit(r) {
			if start >= 0 {
				atoms, groups = append(atoms, s[start:i]), append(groups, word)
				start = -1
				word++
			}
			continue
		}
		if start >= 0 {
			_, w := utf8.DecodeRuneInString(s[i:])
			next, _ := utf8.DecodeRuneInString(s[i+w:])
			if unicode.IsDigit(r) != unicode.IsDigit(prev) ||
				unicode.IsLower(prev) && unicode.IsUpper(r) ||
				unicode.IsUpper(prev) && unicode.IsUpper(r) && unicode.IsLower(next) {
				atoms, groups = append(atoms, s[start:i]), append(groups, word)
				start = -1
			}
		}
		if start < 0 {
			start = i
		}
		prev = r
	}
	if start >= 0 {
		atoms, groups = append(atoms, s[start:]), append(groups, word)
	}
	return atoms, groups
}

// partialMatch reports whether the search word term matches s by tokens:
// the whole of s without delimiters (case-insensitive), or a run of
// consecutive atoms of s: each delimiter-separated part of term that is
// one atom matches an atom case-insensitively, a part of several atoms
// (couNT, Count1) matches them case-sensitively.
func partialMatch(s, term string) bool {
	tAtoms, tGroups := searchAtoms(term)
	if len(tAtoms) == 0 {
		return false
	}
	sAtoms, _ := searchAtoms(s)
	if strings.EqualFold(strings.Join(sAtoms, ""), strings.Join(tAtoms, "")) {
		return true
	}
	// Atoms in a part with others compare case-sensitively.
	partSize := map[int]int{}
	for _, g := range tGroups {
		partSize[g]++
	}
	for i := 0; i+len(tAtoms) <= len(sAtoms); i++ {
		ok := true
		for j, a := range tAtoms {
			b := sAtoms[i+j]
			if partSize[tGroups[j]] == 1 && !strings.EqualFold(a, b) || partSize[tGroups[j]] > 1 && a != b {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}

// searchSeries reads every metric with data in the last two weeks that q
// finds, as stat over period (at most maxSearchSeries, in key order),
// labelled by their dimension values (in the schema's order), with the
// metric name when the search found several names or the metric has no
// dimensions.
func (m *Monitor) searchSeries(param string, q *searchQuery, stat string, period int64, start, end time.Time) ([]*tseries, error) {
	var found []Metric
	names := map[string]bool{}
	for _, sm := range m.store.metrics(m.o.Clock().Add(-listWindow)) {
		if len(found) == maxSearchSeries {
			break
		}
		mt := sm.Metric
		if q.matches(&mt) {
			found = append(found, mt)
			names[mt.Name] = true
		}
	}
	out := make([]*tseries, 0, len(found))
	for i, mt := range found {
		s, err := m.statSeries(param, &MetricQuery{ID: "search" + strconv.Itoa(i), Stat: &MetricStat{Metric: mt, Period: period, Stat: stat}}, start, end)
		if err != nil {
			return nil, err
		}
		var parts []string
		if q.hasSchema {
			for _, d := range q.dims {
				v, _ := mt.Dimension(d)
				parts = append(parts, v)
			}
		} else {
			for _, d := range mt.Dimensions {
				parts = append(parts, d.Value)
			}
		}
		if len(parts) == 0 || len(names) > 1 {
			parts = append(parts, mt.Name)
		}
		s.label = strings.Join(parts, " ")
		out = append(out, s)
	}
	return out, nil
}
