package monitor

import (
	"encoding/binary"
	"errors"
	"math"
	"sort"
)

// Agg is what the store keeps of the values of one series in one time
// bucket: exact sample count, sum, minimum and maximum, and their
// distribution for percentiles (exact for up to maxRaw distinct values, a
// log-bucketed sketch with 1% relative error beyond).
type Agg struct {
	Count float64
	Sum   float64
	Min   float64
	Max   float64
	// noDist counts samples whose values are unknown (statistic sets with
	// more than one distinct value): percentiles are not available then,
	// as on CloudWatch.
	noDist float64
	raw    map[float64]float64 // value → weight, while small
	sk     *sketch
}

// maxRaw is how many distinct values an Agg keeps exactly.
const maxRaw = 64

// addValue adds count samples of value v.
func (a *Agg) addValue(v, count float64) {
	if count <= 0 {
		return
	}
	a.addStats(count, v*count, v, v)
	a.addDist(v, count)
}

// addStats adds a statistic set (no distribution).
func (a *Agg) addStats(count, sum, min, max float64) {
	if a.Count == 0 {
		a.Min, a.Max = min, max
	} else {
		a.Min = math.Min(a.Min, min)
		a.Max = math.Max(a.Max, max)
	}
	a.Count += count
	a.Sum += sum
}

func (a *Agg) addDist(v, w float64) {
	if a.sk != nil {
		a.sk.add(v, w)
		return
	}
	if a.raw == nil {
		a.raw = map[float64]float64{}
	}
	a.raw[v] += w
	if len(a.raw) > maxRaw {
		a.sk = &sketch{}
		for x, xw := range a.raw {
			a.sk.add(x, xw)
		}
		a.raw = nil
	}
}

// merge adds b into a.
func (a *Agg) merge(b *Agg) {
	if b == nil || b.Count == 0 {
		return
	}
	a.addStats(b.Count, b.Sum, b.Min, b.Max)
	a.noDist += b.noDist
	for v, w := range b.raw {
		a.addDist(v, w)
	}
	if b.sk != nil {
		if a.sk == nil {
			a.sk = &sketch{}
			for v, w := range a.raw {
				a.sk.add(v, w)
			}
			a.raw = nil
		}
		a.sk.merge(b.sk)
	}
}

// Percentile returns the p-th percentile (0 ≤ p ≤ 100) of the samples by
// nearest rank, and false when it is not available (no samples, or
// samples without a distribution).
func (a *Agg) Percentile(p float64) (float64, bool) {
	if a.Count == 0 || a.noDist > 0 {
		return 0, false
	}
	var v float64
	if a.sk != nil {
		v = a.sk.quantile(p / 100)
	} else {
		type wv struct{ v, w float64 }
		vs := make([]wv, 0, len(a.raw))
		total := 0.0
		for x, w := range a.raw {
			vs = append(vs, wv{x, w})
			total += w
		}
		if len(vs) == 0 {
			return 0, false // samples but no distribution: a damaged record
		}
		sort.Slice(vs, func(i, j int) bool { return vs[i].v < vs[j].v })
		rank := p / 100 * total
		cum := 0.0
		v = vs[len(vs)-1].v
		for _, x := range vs {
			cum += x.w
			if cum >= rank && (rank > 0 || cum > 0) {
				v = x.v
				break
			}
		}
	}
	return math.Min(math.Max(v, a.Min), a.Max), true
}

// Encoding: version 1, count, sum, min, max, noDist (float64 each), then
// the distribution: 0 and n (value, weight) pairs, or 1 and the sketch.
const aggVersion = 1

var errBadAgg = errors.New("monitor: damaged aggregate")

func (a *Agg) encode() []byte {
	b := make([]byte, 0, 64)
	b = append(b, aggVersion)
	for _, f := range []float64{a.Count, a.Sum, a.Min, a.Max, a.noDist} {
		b = binary.BigEndian.AppendUint64(b, math.Float64bits(f))
	}
	if a.sk != nil {
		b = append(b, 1)
		return a.sk.appendTo(b)
	}
	b = append(b, 0)
	b = binary.AppendUvarint(b, uint64(len(a.raw)))
	for v, w := range a.raw {
		b = binary.BigEndian.AppendUint64(b, math.Float64bits(v))
		b = binary.BigEndian.AppendUint64(b, math.Float64bits(w))
	}
	return b
}

func decodeAgg(b []byte) (*Agg, error) {
	if len(b) < 1+5*8+1 || b[0] != aggVersion {
		return nil, errBadAgg
	}
	a := &Agg{}
	fs := []*float64{&a.Count, &a.Sum, &a.Min, &a.Max, &a.noDist}
	for i, f := range fs {
		*f = math.Float64frombits(binary.BigEndian.Uint64(b[1+8*i:]))
	}
	b = b[1+5*8:]
	mode := b[0]
	b = b[1:]
	switch mode {
	case 0:
		n, k := binary.Uvarint(b)
		if k <= 0 || n > uint64(len(b)-k)/16 {
			return nil, errBadAgg
		}
		b = b[k:]
		if n > 0 {
			a.raw = make(map[float64]float64, n)
		}
		for i := uint64(0); i < n; i++ {
			v := math.Float64frombits(binary.BigEndian.Uint64(b))
			w := math.Float64frombits(binary.BigEndian.Uint64(b[8:]))
			a.raw[v] += w
			b = b[16:]
		}
	case 1:
		sk, err := readSketch(b)
		if err != nil {
			return nil, err
		}
		a.sk = sk
	default:
		return nil, errBadAgg
	}
	return a, nil
}

// sketch is a log-bucketed distribution (relative accuracy alpha): value
// v > 0 falls in bucket ceil(log(v)/log(gamma)); negative values mirror;
// values nearer zero than minValue count as zero.
type sketch struct {
	pos, neg map[int32]float64
	zero     float64
}

const (
	alpha    = 0.01
	minValue = 1e-9
)

var (
	gamma    = (1 + alpha) / (1 - alpha)
	logGamma = math.Log(gamma)
)

func bucketOf(v float64) int32 { return int32(math.Ceil(math.Log(v) / logGamma)) }

// valueOf is the value a bucket stands for (its relative midpoint).
func valueOf(i int32) float64 { return 2 * math.Pow(gamma, float64(i)) / (gamma + 1) }

func (s *sketch) add(v, w float64) {
	switch {
	case math.Abs(v) < minValue:
		s.zero += w
	case v > 0:
		if s.pos == nil {
			s.pos = map[int32]float64{}
		}
		s.pos[bucketOf(v)] += w
	default:
		if s.neg == nil {
			s.neg = map[int32]float64{}
		}
		s.neg[bucketOf(-v)] += w
	}
}

func (s *sketch) merge(o *sketch) {
	s.zero += o.zero
	for i, w := range o.pos {
		if s.pos == nil {
			s.pos = map[int32]float64{}
		}
		s.pos[i] += w
	}
	for i, w := range o.neg {
		if s.neg == nil {
			s.neg = map[int32]float64{}
		}
		s.neg[i] += w
	}
}

// quantile returns the q-th quantile (0 ≤ q ≤ 1) by nearest rank.
func (s *sketch) quantile(q float64) float64 {
	type bw struct {
		v, w float64
	}
	var order []bw
	negs := sortedKeys(s.neg)
	for i := len(negs) - 1; i >= 0; i-- {
		order = append(order, bw{-valueOf(negs[i]), s.neg[negs[i]]})
	}
	if s.zero > 0 {
		order = append(order, bw{0, s.zero})
	}
	for _, i := range sortedKeys(s.pos) {
		order = append(order, bw{valueOf(i), s.pos[i]})
	}
	total := 0.0
	for _, x := range order {
		total += x.w
	}
	rank := q * total
	cum := 0.0
	for _, x := range order {
		cum += x.w
		if cum >= rank {
			return x.v
		}
	}
	if len(order) == 0 {
		return 0
	}
	return order[len(order)-1].v
}

func sortedKeys(m map[int32]float64) []int32 {
	k := make([]int32, 0, len(m))
	for i := range m {
		k = append(k, i)
	}
	sort.Slice(k, func(a, b int) bool { return k[a] < k[b] })
	return k
}

func (s *sketch) appendTo(b []byte) []byte {
	b = binary.BigEndian.AppendUint64(b, math.Float64bits(s.zero))
	for _, m := range []map[int32]float64{s.pos, s.neg} {
		b = binary.AppendUvarint(b, uint64(len(m)))
		for i, w := range m {
			b = binary.AppendVarint(b, int64(i))
			b = binary.BigEndian.AppendUint64(b, math.Float64bits(w))
		}
	}
	return b
}

func readSketch(b []byte) (*sketch, error) {
	if len(b) < 8 {
		return nil, errBadAgg
	}
	s := &sketch{zero: math.Float64frombits(binary.BigEndian.Uint64(b))}
	b = b[8:]
	for _, m := range []*map[int32]float64{&s.pos, &s.neg} {
		n, k := binary.Uvarint(b)
		if k <= 0 || n > uint64(len(b)) {
			return nil, errBadAgg
		}
		b = b[k:]
		if n > 0 {
			*m = make(map[int32]float64, n)
		}
		for i := uint64(0); i < n; i++ {
			idx, k := binary.Varint(b)
			if k <= 0 || len(b) < k+8 || idx > math.MaxInt32 || idx < math.MinInt32 {
				return nil, errBadAgg
			}
			(*m)[int32(idx)] += math.Float64frombits(binary.BigEndian.Uint64(b[k:]))
			b = b[k+8:]
		}
	}
	return s, nil
}
