package monitor

import (
	"context"
	"math"
	"strconv"
	"strings"
	"time"
)

// Limits of PutMetricData, as on CloudWatch.
const (
	MaxMetricData    = 1000
	MaxValues        = 150
	maxPastData      = 14 * 24 * time.Hour
	maxFutureData    = 2 * time.Hour
	minMagnitude     = 8.515920e-109
	maxMagnitude     = 1.174271e+108
	reservedPrefix   = "AWS/"
	defaultPrecision = 60
)

// PutMetricData validates and stores datapoints of a custom namespace
// (namespaces starting with AWS/ belong to the services).
func (m *Monitor) PutMetricData(ctx context.Context, namespace string, data []Datum) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := checkName("Namespace", namespace, 255); err != nil {
		return err
	}
	if strings.HasPrefix(namespace, reservedPrefix) {
		return invalid("The value %s for parameter Namespace is invalid: namespaces starting with AWS/ are reserved for AWS services.", clip(namespace))
	}
	if len(data) == 0 {
		return missing("MetricData")
	}
	if len(data) > MaxMetricData {
		return invalid("The collection MetricData must not have more than %d members; it has %d.", MaxMetricData, len(data))
	}
	now := m.o.Clock()
	out := make([]Datum, len(data))
	for i, d := range data {
		p := "MetricData.member." + strconv.Itoa(i+1)
		d.Metric.Namespace = namespace
		if err := checkName(p+".MetricName", d.Metric.Name, 255); err != nil {
			return err
		}
		if err := checkDimensions(p+".Dimensions", d.Metric.Dimensions); err != nil {
			return err
		}
		if err := checkUnit(p+".Unit", d.Unit); err != nil {
			return err
		}
		if err := checkDatumValues(p, &d); err != nil {
			return err
		}
		switch d.Resolution {
		case 0:
			d.Resolution = defaultPrecision
		case 1, 60:
		default:
			return invalid("The value %d for parameter %s.StorageResolution is invalid: it must be 1 or 60.", d.Resolution, p)
		}
		if d.Timestamp.IsZero() {
			d.Timestamp = now
		}
		if d.Timestamp.Before(now.Add(-maxPastData)) {
			return invalid("The parameter %s.Timestamp must specify a time no more than two weeks in the past.", p)
		}
		if d.Timestamp.After(now.Add(maxFutureData)) {
			return invalid("The parameter %s.Timestamp must specify a time no more than two hours in the future.", p)
		}
		out[i] = d
	}
	return m.store.write(out)
}

// checkDatumValues checks that a datum has exactly one of Value,
// StatisticValues and Values, with values CloudWatch accepts.
func checkDatumValues(p string, d *Datum) error {
	n := 0
	for _, set := range []bool{d.Value != nil, d.Stats != nil, d.Values != nil} {
		if set {
			n++
		}
	}
	switch {
	case n == 0:
		return combination("The parameters %[1]s.Value, %[1]s.StatisticValues and %[1]s.Values are all absent: give one of them.", p)
	case d.Value != nil && d.Stats != nil:
		return combination("The parameters %[1]s.Value and %[1]s.StatisticValues are mutually exclusive and you have specified both.", p)
	case n > 1:
		return combination("The parameter %[1]s.Values excludes %[1]s.Value and %[1]s.StatisticValues.", p)
	}
	if d.Counts != nil && d.Values == nil {
		return combination("The parameter %[1]s.Counts needs %[1]s.Values.", p)
	}
	switch {
	case d.Value != nil:
		return checkValue(p+".Value", *d.Value)
	case d.Stats != nil:
		st := d.Stats
		for _, f := range []struct {
			name string
			v    float64
		}{{"SampleCount", st.SampleCount}, {"Sum", st.Sum}, {"Minimum", st.Minimum}, {"Maximum", st.Maximum}} {
			if err := checkValue(p+".StatisticValues."+f.name, f.v); err != nil {
				return err
			}
		}
		if st.SampleCount <= 0 {
			return invalid("The value of %s.StatisticValues.SampleCount must be greater than 0.", p)
		}
		if st.Minimum > st.Maximum {
			return invalid("The value of %[1]s.StatisticValues.Minimum must not be greater than %[1]s.StatisticValues.Maximum.", p)
		}
	default:
		if len(d.Values) == 0 {
			return missing(p + ".Values")
		}
		if len(d.Values) > MaxValues {
			return invalid("The collection %s.Values must not have more than %d members.", p, MaxValues)
		}
		if d.Counts != nil && len(d.Counts) != len(d.Values) {
			return combination("The collections %[1]s.Values and %[1]s.Counts must have the same number of members.", p)
		}
		for i, v := range d.Values {
			if err := checkValue(p+".Values.member."+strconv.Itoa(i+1), v); err != nil {
				return err
			}
		}
		for i, c := range d.Counts {
			if math.IsNaN(c) || math.IsInf(c, 0) || c < 0 {
				return invalid("The value %s for parameter %s.Counts.member.%d is invalid.", strconv.FormatFloat(c, 'g', -1, 64), p, i+1)
			}
		}
	}
	return nil
}

// checkValue rejects what CloudWatch rejects: NaN, infinities, and
// magnitudes outside [8.515920e-109, 1.174271e+108] (zero is fine).
func checkValue(param string, v float64) error {
	a := math.Abs(v)
	if math.IsNaN(v) || math.IsInf(v, 0) || (a != 0 && (a < minMagnitude || a > maxMagnitude)) {
		return invalid("The value %s for parameter %s is invalid.", strconv.FormatFloat(v, 'g', -1, 64), param)
	}
	return nil
}
