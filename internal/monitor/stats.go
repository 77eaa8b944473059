package monitor

import (
	"strconv"
	"strings"
)

// The standard statistics.
const (
	SampleCount = "SampleCount"
	Average     = "Average"
	Sum         = "Sum"
	Minimum     = "Minimum"
	Maximum     = "Maximum"
)

// Statistics are the standard statistics in CloudWatch's order.
var Statistics = []string{SampleCount, Average, Sum, Minimum, Maximum}

func isStandard(s string) bool {
	for _, x := range Statistics {
		if x == s {
			return true
		}
	}
	return false
}

// parsePercentile reads an extended statistic pNN or pNN.NN (0 to 100,
// at most two decimals) and returns NN.
func parsePercentile(s string) (float64, bool) {
	rest, ok := strings.CutPrefix(s, "p")
	if !ok || rest == "" || len(rest) > 6 {
		return 0, false
	}
	if i := strings.IndexByte(rest, '.'); i >= 0 && (len(rest)-i-1 > 2 || len(rest)-i-1 == 0) {
		return 0, false
	}
	for _, c := range rest {
		if (c < '0' || c > '9') && c != '.' {
			return 0, false
		}
	}
	p, err := strconv.ParseFloat(rest, 64)
	if err != nil || p < 0 || p > 100 {
		return 0, false
	}
	return p, true
}

// validStat reports whether s is a standard statistic or a percentile.
func validStat(s string) bool {
	if isStandard(s) {
		return true
	}
	_, ok := parsePercentile(s)
	return ok
}

// Stat returns statistic s (standard or pNN) of a and whether it exists.
func (a *Agg) Stat(s string) (float64, bool) {
	if a == nil || a.Count == 0 {
		return 0, false
	}
	switch s {
	case SampleCount:
		return a.Count, true
	case Sum:
		return a.Sum, true
	case Average:
		return a.Sum / a.Count, true
	case Minimum:
		return a.Min, true
	case Maximum:
		return a.Max, true
	}
	if p, ok := parsePercentile(s); ok {
		return a.Percentile(p)
	}
	return 0, false
}
