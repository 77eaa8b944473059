package monitor

import (
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Dimension is a name/value pair that identifies a metric.
type Dimension struct {
	Name  string
	Value string
}

// Metric is a metric's identity: namespace, name and dimensions (in name
// order once canonical).
type Metric struct {
	Namespace  string
	Name       string
	Dimensions []Dimension
}

// MaxDimensions is how many dimensions a metric may have.
const MaxDimensions = 30

// canonical returns m with its dimensions sorted by name (a copy).
func (m Metric) canonical() Metric {
	d := append([]Dimension(nil), m.Dimensions...)
	sort.Slice(d, func(i, j int) bool { return d[i].Name < d[j].Name })
	m.Dimensions = d
	return m
}

// key is m's identity as a string (m canonical).
func (m Metric) key() string {
	var b strings.Builder
	b.WriteString(m.Namespace)
	b.WriteByte(0)
	b.WriteString(m.Name)
	for _, d := range m.Dimensions {
		b.WriteByte(0)
		b.WriteString(d.Name)
		b.WriteByte(0)
		b.WriteString(d.Value)
	}
	return b.String()
}

// Dimension returns the value of dimension name.
func (m Metric) Dimension(name string) (string, bool) {
	for _, d := range m.Dimensions {
		if d.Name == name {
			return d.Value, true
		}
	}
	return "", false
}

// Units are CloudWatch's standard units.
var Units = []string{
	"Seconds", "Microseconds", "Milliseconds", "Bytes", "Kilobytes", "Megabytes", "Gigabytes", "Terabytes",
	"Bits", "Kilobits", "Megabits", "Gigabits", "Terabits", "Percent", "Count", "Bytes/Second",
	"Kilobytes/Second", "Megabytes/Second", "Gigabytes/Second", "Terabytes/Second", "Bits/Second",
	"Kilobits/Second", "Megabits/Second", "Gigabits/Second", "Terabits/Second", "Count/Second", "None",
}

func validUnit(u string) bool {
	for _, x := range Units {
		if x == u {
			return true
		}
	}
	return false
}

func checkUnit(param, u string) error {
	if u != "" && !validUnit(u) {
		return invalid("The value %s for parameter %s is not valid: it must be one of %s.", clip(u), param, strings.Join(Units, ", "))
	}
	return nil
}

// checkName validates a namespace, metric or dimension name: 1 to max
// characters of printable ASCII, not starting with a colon.
func checkName(param, v string, max int) error {
	switch {
	case v == "":
		return missing(param)
	case len(v) > max:
		return invalid("The value of %s must be at most %d characters long.", param, max)
	case v[0] == ':':
		return invalid("The value %s for parameter %s is not valid: it must not start with a colon.", clip(v), param)
	}
	for _, r := range v {
		if r < 0x20 || r > 0x7e {
			return invalid("The value %s for parameter %s is not valid: it must be printable ASCII.", clip(strings.ToValidUTF8(v, "?")), param)
		}
	}
	return nil
}

// checkDimensions validates dimensions given for a metric.
func checkDimensions(param string, dims []Dimension) error {
	if len(dims) > MaxDimensions {
		return invalid("The collection %s must not have more than %d members.", param, MaxDimensions)
	}
	seen := map[string]bool{}
	for i, d := range dims {
		p := param + ".member." + strconv.Itoa(i+1)
		if err := checkName(p+".Name", d.Name, 255); err != nil {
			return err
		}
		switch {
		case d.Value == "":
			return missing(p + ".Value")
		case utf8.RuneCountInString(d.Value) > 1024 || !utf8.ValidString(d.Value):
			return invalid("The value of %s.Value must be 1 to 1024 characters of valid UTF-8.", p)
		}
		if seen[d.Name] {
			return invalid("The dimension name %s is given more than once in %s.", clip(d.Name), param)
		}
		seen[d.Name] = true
	}
	return nil
}

// checkMetric validates a metric's identity.
func checkMetric(prefix string, m Metric) error {
	if err := checkName(prefix+"Namespace", m.Namespace, 255); err != nil {
		return err
	}
	if err := checkName(prefix+"MetricName", m.Name, 255); err != nil {
		return err
	}
	return checkDimensions(prefix+"Dimensions", m.Dimensions)
}
