package main

import (
	"bufio"
	"context"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The server-side figures of a lag run, read from the regions' Prometheus
// /metrics before and after it: the replica's apply lag of every record
// (regionfs_replication_apply_lag_seconds: durable at the source →
// readable on the replica, both on this machine's one clock), the records
// it could not time (no durable time from the source) and the source's
// group commits (regionfs_engine_commit_seconds: before the source's
// reply, not part of the apply lag).
const (
	applyLagMetric  = "regionfs_replication_apply_lag_seconds"
	applyLagUnknown = "regionfs_replication_apply_lag_unknown_records_total"
	commitSecMetric = "regionfs_engine_commit_seconds"
)

// hist is a Prometheus histogram's cumulative buckets: upper bound
// (seconds, +Inf last) → observations at or below it.
type hist struct {
	le  []float64
	cum []float64
}

// scrapeHist reads histogram name from the text exposition at
// http://apiAddr/metrics, summing the series whose label set contains
// match ("" for all).
func scrapeHist(ctx context.Context, apiAddr, name, match string) (hist, error) {
	return scrape(ctx, apiAddr, name, "le", match)
}

// scrapeCounter reads the sum of the series of counter name whose label
// set contains match.
func scrapeCounter(ctx context.Context, apiAddr, name, match string) (float64, error) {
	h, err := scrape(ctx, apiAddr, name, "", match)
	return h.count(), err
}

// scrape reads the series of name at http://apiAddr/metrics whose label set
// contains match: with bucket "le" a histogram's buckets, with "" a
// counter's or gauge's sum (as the one bucket +Inf).
func scrape(ctx context.Context, apiAddr, name, bucket, match string) (hist, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", "http://"+apiAddr+"/metrics", nil)
	if err != nil {
		return hist{}, err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return hist{}, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return hist{}, fmt.Errorf("GET %s/metrics: %s", apiAddr, res.Status)
	}
	sums := map[float64]float64{}
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	prefix := name + "_bucket{"
	if bucket == "" {
		prefix = name + "{"
	}
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, prefix) || !strings.Contains(line, match) {
			continue
		}
		le := math.Inf(1)
		j := strings.LastIndexByte(line, ' ')
		if bucket != "" {
			i := strings.Index(line, `,le="`)
			if i < 0 {
				i = strings.Index(line, `{le="`)
			}
			if i < 0 || j < i {
				continue
			}
			leS := line[i+5:]
			leS = leS[:strings.IndexByte(leS, '"')]
			var err error
			if le, err = strconv.ParseFloat(leS, 64); err != nil { // "+Inf" parses as +Inf
				return hist{}, fmt.Errorf("%s: bucket %q: %w", name, leS, err)
			}
		}
		v, err := strconv.ParseFloat(line[j+1:], 64)
		if err != nil {
			return hist{}, fmt.Errorf("%s: value in %q: %w", name, line, err)
		}
		sums[le] += v
	}
	if err := sc.Err(); err != nil {
		return hist{}, err
	}
	var h hist
	for le := range sums {
		h.le = append(h.le, le)
	}
	slices.Sort(h.le)
	for _, le := range h.le {
		h.cum = append(h.cum, sums[le])
	}
	return h, nil
}

// minus returns the observations of h made since before.
func (h hist) minus(before hist) hist {
	d := hist{le: h.le, cum: slices.Clone(h.cum)}
	for i, le := range h.le {
		if k := slices.Index(before.le, le); k >= 0 {
			d.cum[i] -= before.cum[k]
		}
	}
	return d
}

func (h hist) count() float64 {
	if len(h.cum) == 0 {
		return 0
	}
	return h.cum[len(h.cum)-1]
}

// pct returns the q-th percentile in ms, interpolated linearly inside its
// bucket, and the bucket's bounds (lo, hi] in ms: the figure's resolution.
// One in the last (+Inf) bucket is reported as its lower bound.
func (h hist) pct(q float64) (v, lo, hi float64) {
	n := h.count()
	if n == 0 {
		return math.NaN(), 0, 0
	}
	rank := q / 100 * n
	prevLe, prevCum := 0.0, 0.0
	for i, le := range h.le {
		if h.cum[i] >= rank && h.cum[i] > prevCum {
			if math.IsInf(le, 1) {
				return prevLe * 1e3, prevLe * 1e3, math.Inf(1)
			}
			f := (rank - prevCum) / (h.cum[i] - prevCum)
			return (prevLe + f*(le-prevLe)) * 1e3, prevLe * 1e3, le * 1e3
		}
		prevLe, prevCum = le, h.cum[i]
	}
	return prevLe * 1e3, prevLe * 1e3, math.Inf(1)
}

// pctString prints percentiles of h with their buckets.
func (h hist) pctString(qs ...float64) string {
	var parts []string
	for _, q := range qs {
		v, lo, hi := h.pct(q)
		parts = append(parts, fmt.Sprintf("p%g %.2f (%s–%s]", q, v, fmtMs(lo), fmtMs(hi)))
	}
	return strings.Join(parts, ", ") + " ms"
}

func fmtMs(v float64) string {
	if math.IsInf(v, 1) {
		return "∞"
	}
	return strconv.FormatFloat(v, 'f', -1, 64)
}

// serverLag holds the metrics of both regions at one instant.
type serverLag struct {
	apply, commit hist
	unknown       float64
	at            time.Time
}

func scrapeServerLag(ctx context.Context, srcAPI, dstAPI string) (serverLag, error) {
	a, err := scrapeHist(ctx, dstAPI, applyLagMetric, `role="destination"`)
	if err != nil {
		return serverLag{}, err
	}
	c, err := scrapeHist(ctx, srcAPI, commitSecMetric, "")
	if err != nil {
		return serverLag{}, err
	}
	u, err := scrapeCounter(ctx, dstAPI, applyLagUnknown, `role="destination"`)
	if err != nil {
		return serverLag{}, err
	}
	return serverLag{apply: a, commit: c, unknown: u, at: time.Now()}, nil
}
