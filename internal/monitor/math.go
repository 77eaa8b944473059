package monitor

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
)

// Metric math (GetMetricData and alarms on Metrics): numbers, query ids,
// + - * / ^, unary minus, parentheses, arrays [a, b] and the functions
// SUM, AVG, MIN, MAX (over an array: per timestamp; over one series: a
// scalar), FILL(x, value|REPEAT|LINEAR), ABS, DIFF, RATE, METRICS([filter])
// and SEARCH(query, stat[, period]) (search.go).

// tseries is a time series: ascending timestamps (Unix seconds) and values.
type tseries struct {
	id, label string
	ts        []int64
	vals      []float64
	// src is what a series was read from (a MetricStat query or a search
	// result) and what it keeps through functions of one series, for
	// dynamic labels; nil for a series computed from several.
	src *seriesSource
}

// seriesSource is the metric, statistic and period a series was read as.
type seriesSource struct {
	metric Metric
	stat   string
	period int64
}

// mvalue is what an expression evaluates to: float64, *tseries or
// []*tseries.
type mvalue any

type node interface{}

type (
	numNode struct{ v float64 }
	strNode struct{ s string }
	idNode  struct{ id string }
	negNode struct{ x node }
	binNode struct {
		op   byte
		l, r node
	}
	callNode struct {
		fn   string
		args []node
	}
	arrayNode struct{ elems []node }
)

// maxExpression bounds an expression's length (as on CloudWatch).
const maxExpression = 2048

type mathError struct{ msg string }

func (e *mathError) Error() string { return e.msg }

func mathErrorf(format string, args ...any) error { return &mathError{fmt.Sprintf(format, args...)} }

// parseExpression parses a metric math expression.
func parseExpression(s string) (node, error) {
	if len(s) > maxExpression {
		return nil, mathErrorf("the expression is longer than %d characters", maxExpression)
	}
	p := &parser{s: s}
	p.next()
	n, err := p.expr(0)
	if err != nil {
		return nil, err
	}
	if p.tok != "" {
		return nil, mathErrorf("unexpected %q at character %d", p.tok, p.pos)
	}
	return n, nil
}

type parser struct {
	s     string
	i     int // next byte to read
	pos   int // start of tok
	tok   string
	kind  byte // 'n' number, 'i' identifier, 's' string, 'p' punctuation, 0 end
	depth int
}

func (p *parser) next() {
	for p.i < len(p.s) && (p.s[p.i] == ' ' || p.s[p.i] == '\t' || p.s[p.i] == '\n') {
		p.i++
	}
	p.pos = p.i
	if p.i >= len(p.s) {
		p.tok, p.kind = "", 0
		return
	}
	c := p.s[p.i]
	switch {
	case c >= '0' && c <= '9' || c == '.':
		j := p.i
		for j < len(p.s) && (p.s[j] >= '0' && p.s[j] <= '9' || p.s[j] == '.' || p.s[j] == 'e' || p.s[j] == 'E' ||
			(j > p.i && (p.s[j] == '+' || p.s[j] == '-') && (p.s[j-1] == 'e' || p.s[j-1] == 'E'))) {
			j++
		}
		p.tok, p.kind, p.i = p.s[p.i:j], 'n', j
	case c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z':
		j := p.i
		for j < len(p.s) && (p.s[j] == '_' || p.s[j] >= 'a' && p.s[j] <= 'z' || p.s[j] >= 'A' && p.s[j] <= 'Z' || p.s[j] >= '0' && p.s[j] <= '9') {
			j++
		}
		p.tok, p.kind, p.i = p.s[p.i:j], 'i', j
	case c == '"' || c == '\'':
		j := strings.IndexByte(p.s[p.i+1:], c)
		if j < 0 {
			p.tok, p.kind, p.i = p.s[p.i:], 'x', len(p.s)
			return
		}
		p.tok, p.kind, p.i = p.s[p.i+1:p.i+1+j], 's', p.i+2+j
	default:
		p.tok, p.kind, p.i = string(c), 'p', p.i+1
	}
}

var precedence = map[string]int{"+": 1, "-": 1, "*": 2, "/": 2, "^": 3}

func (p *parser) expr(minPrec int) (node, error) {
	p.depth++
	defer func() { p.depth-- }()
	if p.depth > 64 {
		return nil, mathErrorf("the expression is nested too deeply")
	}
	l, err := p.unary()
	if err != nil {
		return nil, err
	}
	for p.kind == 'p' {
		prec, ok := precedence[p.tok]
		if !ok || prec < minPrec {
			break
		}
		op := p.tok[0]
		p.next()
		next := prec + 1
		if op == '^' {
			next = prec // right-associative
		}
		r, err := p.expr(next)
		if err != nil {
			return nil, err
		}
		l = binNode{op, l, r}
	}
	return l, nil
}

func (p *parser) unary() (node, error) {
	if p.kind == 'p' && p.tok == "-" {
		p.next()
		x, err := p.unary()
		if err != nil {
			return nil, err
		}
		return negNode{x}, nil
	}
	return p.primary()
}

func (p *parser) primary() (node, error) {
	switch p.kind {
	case 'n':
		v, err := strconv.ParseFloat(p.tok, 64)
		if err != nil {
			return nil, mathErrorf("%q at character %d is not a number", p.tok, p.pos)
		}
		p.next()
		return numNode{v}, nil
	case 's':
		s := p.tok
		p.next()
		return strNode{s}, nil
	case 'i':
		name := p.tok
		p.next()
		if p.kind == 'p' && p.tok == "(" {
			p.next()
			var args []node
			for !(p.kind == 'p' && p.tok == ")") {
				a, err := p.expr(0)
				if err != nil {
					return nil, err
				}
				args = append(args, a)
				if p.kind == 'p' && p.tok == "," {
					p.next()
					continue
				}
				if !(p.kind == 'p' && p.tok == ")") {
					return nil, mathErrorf("expected , or ) at character %d", p.pos)
				}
			}
			p.next()
			return callNode{strings.ToUpper(name), args}, nil
		}
		return idNode{name}, nil
	case 'p':
		switch p.tok {
		case "(":
			p.next()
			x, err := p.expr(0)
			if err != nil {
				return nil, err
			}
			if !(p.kind == 'p' && p.tok == ")") {
				return nil, mathErrorf("expected ) at character %d", p.pos)
			}
			p.next()
			return x, nil
		case "[":
			p.next()
			var elems []node
			for !(p.kind == 'p' && p.tok == "]") {
				e, err := p.expr(0)
				if err != nil {
					return nil, err
				}
				elems = append(elems, e)
				if p.kind == 'p' && p.tok == "," {
					p.next()
					continue
				}
				if !(p.kind == 'p' && p.tok == "]") {
					return nil, mathErrorf("expected , or ] at character %d", p.pos)
				}
			}
			p.next()
			return arrayNode{elems}, nil
		}
	case 0:
		return nil, mathErrorf("the expression ends too early")
	}
	return nil, mathErrorf("unexpected %q at character %d", p.tok, p.pos)
}

// env is what an evaluation can see.
type env struct {
	resolve func(id string) (mvalue, error)
	metrics func() []*tseries
	grid    func() []int64 // every timestamp of the expression's periods
	// search reads every metric a search finds, as stat over period.
	search func(q *searchQuery, stat string, period int64) ([]*tseries, error)
	period int64 // the expression's period
}

func (e *env) eval(n node) (mvalue, error) {
	switch x := n.(type) {
	case numNode:
		return x.v, nil
	case strNode:
		return nil, mathErrorf("a string (%q) is only valid as an argument of METRICS or SEARCH", x.s)
	case idNode:
		return e.resolve(x.id)
	case negNode:
		v, err := e.eval(x.x)
		if err != nil {
			return nil, err
		}
		return apply(v, func(f float64) (float64, bool) { return -f, true }), nil
	case binNode:
		l, err := e.eval(x.l)
		if err != nil {
			return nil, err
		}
		r, err := e.eval(x.r)
		if err != nil {
			return nil, err
		}
		return binop(x.op, l, r)
	case arrayNode:
		var out []*tseries
		for _, el := range x.elems {
			v, err := e.eval(el)
			if err != nil {
				return nil, err
			}
			switch s := v.(type) {
			case *tseries:
				out = append(out, s)
			case []*tseries:
				out = append(out, s...)
			default:
				return nil, mathErrorf("an array holds time series, not numbers")
			}
		}
		return out, nil
	case callNode:
		return e.call(x)
	}
	return nil, mathErrorf("unsupported expression")
}

func (e *env) call(c callNode) (mvalue, error) {
	argn := func(n int) error {
		if len(c.args) != n {
			return mathErrorf("%s takes %d argument(s), not %d", c.fn, n, len(c.args))
		}
		return nil
	}
	switch c.fn {
	case "METRICS":
		if len(c.args) > 1 {
			return nil, mathErrorf("METRICS takes at most one argument")
		}
		all := e.metrics()
		if len(c.args) == 0 {
			return all, nil
		}
		f, ok := c.args[0].(strNode)
		if !ok {
			return nil, mathErrorf("the argument of METRICS must be a string")
		}
		var out []*tseries
		for _, s := range all {
			if strings.Contains(s.id, f.s) || strings.Contains(s.label, f.s) {
				out = append(out, s)
			}
		}
		return out, nil
	case "SEARCH":
		q, stat, period, err := searchArgs(c, e.period)
		if err != nil {
			return nil, err
		}
		if e.search == nil {
			return nil, mathErrorf("SEARCH is not supported here")
		}
		return e.search(q, stat, period)
	case "SUM", "AVG", "MIN", "MAX":
		if err := argn(1); err != nil {
			return nil, err
		}
		v, err := e.eval(c.args[0])
		if err != nil {
			return nil, err
		}
		return reduce(c.fn, v)
	case "ABS":
		if err := argn(1); err != nil {
			return nil, err
		}
		v, err := e.eval(c.args[0])
		if err != nil {
			return nil, err
		}
		return apply(v, func(f float64) (float64, bool) { return math.Abs(f), true }), nil
	case "DIFF", "RATE":
		if err := argn(1); err != nil {
			return nil, err
		}
		v, err := e.eval(c.args[0])
		if err != nil {
			return nil, err
		}
		return perSeries(v, func(s *tseries) *tseries { return diff(s, c.fn == "RATE") })
	case "FILL":
		if err := argn(2); err != nil {
			return nil, err
		}
		v, err := e.eval(c.args[0])
		if err != nil {
			return nil, err
		}
		var fill func(s *tseries) *tseries
		grid := e.grid()
		if id, ok := c.args[1].(idNode); ok && (strings.EqualFold(id.id, "REPEAT") || strings.EqualFold(id.id, "LINEAR")) {
			linear := strings.EqualFold(id.id, "LINEAR")
			fill = func(s *tseries) *tseries { return fillSeries(s, grid, linear) }
		} else {
			w, err := e.eval(c.args[1])
			if err != nil {
				return nil, err
			}
			f, ok := w.(float64)
			if !ok {
				return nil, mathErrorf("the second argument of FILL must be a number, REPEAT or LINEAR")
			}
			fill = func(s *tseries) *tseries { return fillValue(s, grid, f) }
		}
		return perSeries(v, fill)
	}
	return nil, mathErrorf("unknown function %s", c.fn)
}

// apply maps f over every value of v; values for which f fails are dropped.
func apply(v mvalue, f func(float64) (float64, bool)) mvalue {
	switch x := v.(type) {
	case float64:
		r, ok := f(x)
		if !ok {
			return math.NaN()
		}
		return r
	case *tseries:
		return mapSeries(x, f)
	case []*tseries:
		out := make([]*tseries, len(x))
		for i, s := range x {
			out[i] = mapSeries(s, f)
		}
		return out
	}
	return v
}

func mapSeries(s *tseries, f func(float64) (float64, bool)) *tseries {
	out := &tseries{id: s.id, label: s.label, src: s.src}
	for i, v := range s.vals {
		if r, ok := f(v); ok && !math.IsNaN(r) && !math.IsInf(r, 0) {
			out.ts = append(out.ts, s.ts[i])
			out.vals = append(out.vals, r)
		}
	}
	return out
}

func perSeries(v mvalue, f func(*tseries) *tseries) (mvalue, error) {
	switch x := v.(type) {
	case *tseries:
		return f(x), nil
	case []*tseries:
		out := make([]*tseries, len(x))
		for i, s := range x {
			out[i] = f(s)
		}
		return out, nil
	}
	return nil, mathErrorf("the function needs a time series")
}

func arith(op byte, a, b float64) (float64, bool) {
	var r float64
	switch op {
	case '+':
		r = a + b
	case '-':
		r = a - b
	case '*':
		r = a * b
	case '/':
		if b == 0 {
			return 0, false
		}
		r = a / b
	case '^':
		r = math.Pow(a, b)
	}
	return r, !math.IsNaN(r) && !math.IsInf(r, 0)
}

// binop applies op: scalar with scalar, scalar with each value of a
// series (or of each series of an array), and series with series on the
// timestamps both have.
func binop(op byte, l, r mvalue) (mvalue, error) {
	switch a := l.(type) {
	case float64:
		switch b := r.(type) {
		case float64:
			v, ok := arith(op, a, b)
			if !ok {
				return math.NaN(), nil
			}
			return v, nil
		default:
			return apply(b, func(x float64) (float64, bool) { return arith(op, a, x) }), nil
		}
	case *tseries:
		switch b := r.(type) {
		case float64:
			return apply(a, func(x float64) (float64, bool) { return arith(op, x, b) }), nil
		case *tseries:
			return join(op, a, b), nil
		case []*tseries:
			out := make([]*tseries, len(b))
			for i, s := range b {
				out[i] = join(op, a, s)
			}
			return out, nil
		}
	case []*tseries:
		switch b := r.(type) {
		case float64:
			return apply(a, func(x float64) (float64, bool) { return arith(op, x, b) }), nil
		case *tseries:
			out := make([]*tseries, len(a))
			for i, s := range a {
				out[i] = join(op, s, b)
			}
			return out, nil
		}
		return nil, mathErrorf("an arithmetic operation between two arrays of time series is not supported")
	}
	return nil, mathErrorf("unsupported operands")
}

func join(op byte, a, b *tseries) *tseries {
	out := &tseries{id: a.id, label: a.label, src: a.src}
	i, j := 0, 0
	for i < len(a.ts) && j < len(b.ts) {
		switch {
		case a.ts[i] < b.ts[j]:
			i++
		case a.ts[i] > b.ts[j]:
			j++
		default:
			if v, ok := arith(op, a.vals[i], b.vals[j]); ok {
				out.ts = append(out.ts, a.ts[i])
				out.vals = append(out.vals, v)
			}
			i++
			j++
		}
	}
	return out
}

// reduce: over an array, a series of the per-timestamp aggregate of the
// values present; over one series, the scalar aggregate of its values.
func reduce(fn string, v mvalue) (mvalue, error) {
	agg := func(xs []float64) float64 {
		r := xs[0]
		switch fn {
		case "SUM", "AVG":
			r = 0
			for _, x := range xs {
				r += x
			}
			if fn == "AVG" {
				r /= float64(len(xs))
			}
		case "MIN":
			for _, x := range xs {
				r = math.Min(r, x)
			}
		case "MAX":
			for _, x := range xs {
				r = math.Max(r, x)
			}
		}
		return r
	}
	switch x := v.(type) {
	case float64:
		return x, nil
	case *tseries:
		if len(x.vals) == 0 {
			return math.NaN(), nil
		}
		return agg(x.vals), nil
	case []*tseries:
		by := map[int64][]float64{}
		for _, s := range x {
			for i, t := range s.ts {
				by[t] = append(by[t], s.vals[i])
			}
		}
		out := &tseries{}
		for t := range by {
			out.ts = append(out.ts, t)
		}
		sort.Slice(out.ts, func(i, j int) bool { return out.ts[i] < out.ts[j] })
		for _, t := range out.ts {
			out.vals = append(out.vals, agg(by[t]))
		}
		return out, nil
	}
	return nil, mathErrorf("%s needs a time series or an array", fn)
}

func diff(s *tseries, rate bool) *tseries {
	out := &tseries{id: s.id, label: s.label, src: s.src}
	for i := 1; i < len(s.vals); i++ {
		d := s.vals[i] - s.vals[i-1]
		if rate {
			d /= float64(s.ts[i] - s.ts[i-1])
		}
		out.ts = append(out.ts, s.ts[i])
		out.vals = append(out.vals, d)
	}
	return out
}

func fillValue(s *tseries, grid []int64, f float64) *tseries {
	out := &tseries{id: s.id, label: s.label, src: s.src, ts: grid, vals: make([]float64, len(grid))}
	j := 0
	for i, t := range grid {
		for j < len(s.ts) && s.ts[j] < t {
			j++
		}
		if j < len(s.ts) && s.ts[j] == t {
			out.vals[i] = s.vals[j]
		} else {
			out.vals[i] = f
		}
	}
	return out
}

// fillSeries fills the gaps of s on grid with the previous value (REPEAT)
// or by interpolation (LINEAR); before the first and after the last value
// the nearest is used.
func fillSeries(s *tseries, grid []int64, linear bool) *tseries {
	if len(s.ts) == 0 {
		return &tseries{id: s.id, label: s.label, src: s.src}
	}
	out := &tseries{id: s.id, label: s.label, src: s.src, ts: grid, vals: make([]float64, len(grid))}
	j := 0
	for i, t := range grid {
		for j < len(s.ts) && s.ts[j] < t {
			j++
		}
		switch {
		case j < len(s.ts) && s.ts[j] == t:
			out.vals[i] = s.vals[j]
		case j == 0:
			out.vals[i] = s.vals[0]
		case j == len(s.ts):
			out.vals[i] = s.vals[len(s.vals)-1]
		case linear:
			t0, t1 := s.ts[j-1], s.ts[j]
			v0, v1 := s.vals[j-1], s.vals[j]
			out.vals[i] = v0 + (v1-v0)*float64(t-t0)/float64(t1-t0)
		default:
			out.vals[i] = s.vals[j-1]
		}
	}
	return out
}

// references lists the ids an expression names (for cycle checks).
func references(n node, out map[string]bool) {
	switch x := n.(type) {
	case idNode:
		out[x.id] = true
	case negNode:
		references(x.x, out)
	case binNode:
		references(x.l, out)
		references(x.r, out)
	case arrayNode:
		for _, e := range x.elems {
			references(e, out)
		}
	case callNode:
		if x.fn == "METRICS" {
			out["\x00metrics"] = true
		}
		if x.fn == "SEARCH" {
			return
		}
		for i, a := range x.args {
			if x.fn == "FILL" && i == 1 {
				if id, ok := a.(idNode); ok && (strings.EqualFold(id.id, "REPEAT") || strings.EqualFold(id.id, "LINEAR")) {
					continue
				}
			}
			references(a, out)
		}
	}
}

// searchArgs checks SEARCH's arguments: the query, the statistic and the
// period (def, the expression's, when not given).
func searchArgs(c callNode, def int64) (*searchQuery, string, int64, error) {
	if len(c.args) < 2 || len(c.args) > 3 {
		return nil, "", 0, mathErrorf("SEARCH takes 2 or 3 arguments (query, statistic, period), not %d", len(c.args))
	}
	qs, ok := c.args[0].(strNode)
	if !ok {
		return nil, "", 0, mathErrorf("the first argument of SEARCH must be a quoted search query")
	}
	stat, ok := c.args[1].(strNode)
	if !ok || !validStat(stat.s) {
		return nil, "", 0, mathErrorf("the second argument of SEARCH must be a quoted statistic (SampleCount, Average, Sum, Minimum, Maximum or a percentile such as p99)")
	}
	period := def
	if len(c.args) == 3 {
		n, ok := c.args[2].(numNode)
		if !ok || n.v != math.Trunc(n.v) || n.v <= 0 || n.v > 455*24*3600 {
			return nil, "", 0, mathErrorf("the third argument of SEARCH must be a period in seconds")
		}
		period = int64(n.v)
	}
	if err := checkPeriod("SEARCH", period); err != nil {
		return nil, "", 0, mathErrorf("%s", strings.TrimSuffix(err.Error(), "."))
	}
	q, err := parseSearch(qs.s)
	if err != nil {
		return nil, "", 0, err
	}
	return q, stat.s, period, nil
}

// searchPeriod is the largest period the SEARCH calls of n give (0 when
// none does).
func searchPeriod(n node) int64 {
	var p int64
	walkCalls(n, func(c callNode) error {
		if c.fn == "SEARCH" && len(c.args) == 3 {
			if v, ok := c.args[2].(numNode); ok && v.v > 0 && v.v < math.MaxInt32 {
				p = max(p, int64(v.v))
			}
		}
		return nil
	})
	return p
}

// calls reports whether n calls the function fn.
func calls(n node, fn string) bool {
	found := false
	walkCalls(n, func(c callNode) error {
		found = found || c.fn == fn
		return nil
	})
	return found
}

// checkSearches checks the arguments of every SEARCH in n.
func checkSearches(n node) error {
	return walkCalls(n, func(c callNode) error {
		if c.fn != "SEARCH" {
			return nil
		}
		_, _, _, err := searchArgs(c, 60)
		return err
	})
}

// walkCalls calls f on every function call in n, outermost first, until
// f fails.
func walkCalls(n node, f func(callNode) error) error {
	switch x := n.(type) {
	case negNode:
		return walkCalls(x.x, f)
	case binNode:
		if err := walkCalls(x.l, f); err != nil {
			return err
		}
		return walkCalls(x.r, f)
	case arrayNode:
		for _, e := range x.elems {
			if err := walkCalls(e, f); err != nil {
				return err
			}
		}
	case callNode:
		if err := f(x); err != nil {
			return err
		}
		for _, a := range x.args {
			if err := walkCalls(a, f); err != nil {
				return err
			}
		}
	}
	return nil
}
