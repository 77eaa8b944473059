package resources

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/regionfs/regionfs/internal/cfn"
	"github.com/regionfs/regionfs/internal/engine/kv"
	"github.com/regionfs/regionfs/internal/monitor"
)

// TestAlarmUpdateTags: an update sets the tags the template adds or
// changes and removes those it drops. PutMetricAlarm keeps an existing
// alarm's tags, so added and changed tags were silently not applied.
func TestAlarmUpdateTags(t *testing.T) {
	m, err := monitor.Open(monitor.Options{KV: kv.NewMemory(), Region: "us-east-1", AccountID: "123456789012", Tick: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	a := &cwAlarms{Options{Alarms: m}}
	props := func(tags ...string) map[string]any {
		pr := map[string]any{"Namespace": "AWS/EFS", "MetricName": "TimeSinceLastSync", "Statistic": "Maximum", "Period": "60",
			"EvaluationPeriods": "1", "Threshold": "60", "ComparisonOperator": "GreaterThanThreshold"}
		var l []any
		for i := 0; i < len(tags); i += 2 {
			l = append(l, map[string]any{"Key": tags[i], "Value": tags[i+1]})
		}
		if l != nil {
			pr["Tags"] = l
		}
		return pr
	}
	old := props("keep", "1", "change", "a", "drop", "x")
	out, err := a.Create(t.Context(), &cfn.Request{StackName: "s", LogicalID: "Lag", Token: "cfn-0123456789abcdef0123456789abcdef01234567", Props: old})
	if err != nil {
		t.Fatal(err)
	}
	pr := props("keep", "1", "change", "b", "add", "y")
	if _, err := a.Update(t.Context(), &cfn.Request{PhysicalID: out.PhysicalID, Props: pr, OldProps: old, Attributes: out.Attributes}); err != nil {
		t.Fatal(err)
	}
	got, err := m.ListTagsForResource(t.Context(), out.Attributes["Arn"])
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"keep": "1", "change": "b", "add": "y"}
	gotM := map[string]string{}
	for _, tg := range got {
		gotM[tg.Key] = tg.Value
	}
	if d := cmp.Diff(want, gotM); d != "" {
		t.Fatalf("tags after update (-want +got):\n%s", d)
	}
}
