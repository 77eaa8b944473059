package resources

import (
	"errors"
	"testing"
	"time"

	"github.com/regionfs/regionfs/internal/cfn"
	"github.com/regionfs/regionfs/internal/engine/kv"
	"github.com/regionfs/regionfs/internal/monitor"
)

// TestCompositeAndDashboardProviders: create, update (tags set and
// removed, the rule re-evaluated, the body replaced), NotFound for an
// update of one deleted out of band, delete (one already gone is
// success).
func TestCompositeAndDashboardProviders(t *testing.T) {
	m, err := monitor.Open(monitor.Options{KV: kv.NewMemory(), Region: "us-east-1", AccountID: "123456789012", Tick: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	ctx := t.Context()
	th := 1.0
	if err := m.PutMetricAlarm(ctx, monitor.AlarmInput{Name: "lag", Metric: monitor.Metric{Namespace: "AWS/EFS", Name: "TimeSinceLastSync"},
		Statistic: "Maximum", Period: 3600, EvaluationPeriods: 1, Threshold: &th, ComparisonOperator: monitor.Greater}); err != nil {
		t.Fatal(err)
	}
	c := &cwComposites{Options{Alarms: m}}
	token := "cfn-0123456789abcdef0123456789abcdef01234567"
	old := map[string]any{"AlarmRule": "ALARM(lag)", "Tags": []any{map[string]any{"Key": "drop", "Value": "x"}, map[string]any{"Key": "change", "Value": "a"}}}
	out, err := c.Create(ctx, &cfn.Request{StackName: "s", LogicalID: "Failover", Token: token, Props: old})
	if err != nil || out.PhysicalID != "s-Failover-CDEF01234567" || out.Attributes["Arn"] != m.AlarmARN(out.PhysicalID) {
		t.Fatalf("create: %+v %v", out, err)
	}
	pr := map[string]any{"AlarmRule": "NOT ALARM(lag)", "Tags": []any{map[string]any{"Key": "change", "Value": "b"}, map[string]any{"Key": "add", "Value": "y"}}}
	if _, err := c.Update(ctx, &cfn.Request{PhysicalID: out.PhysicalID, Props: pr, OldProps: old, Attributes: out.Attributes}); err != nil {
		t.Fatal(err)
	}
	l, err := m.DescribeAlarms(ctx, monitor.AlarmFilter{Names: []string{out.PhysicalID}, Types: []string{monitor.TypeComposite}})
	if err != nil || len(l.Composite) != 1 || l.Composite[0].State != monitor.StateAlarm {
		t.Fatalf("after update: %+v %v", l, err)
	}
	tags, _ := m.ListTagsForResource(ctx, out.Attributes["Arn"])
	got := map[string]string{}
	for _, tg := range tags {
		got[tg.Key] = tg.Value
	}
	if len(got) != 5 || got["change"] != "b" || got["add"] != "y" || got["aws:cloudformation:logical-id"] != "Failover" {
		t.Fatalf("tags after update: %v", got)
	}
	if err := c.Delete(ctx, &cfn.Request{PhysicalID: out.PhysicalID}); err != nil {
		t.Fatal(err)
	}
	if err := c.Delete(ctx, &cfn.Request{PhysicalID: out.PhysicalID}); err != nil {
		t.Fatalf("delete of one gone: %v", err)
	}
	if _, err := c.Update(ctx, &cfn.Request{PhysicalID: out.PhysicalID, Props: pr, OldProps: pr, Attributes: out.Attributes}); handlerCode(err) != "NotFound" {
		t.Fatalf("update of one deleted: %v", err)
	}

	d := &cwDashboards{Options{Alarms: m}}
	body := `{"widgets":[{"type":"text","properties":{"markdown":"a"}}]}`
	dout, err := d.Create(ctx, &cfn.Request{StackName: "s", LogicalID: "Board", Token: token, Props: map[string]any{"DashboardName": "dr", "DashboardBody": body}})
	if err != nil || dout.PhysicalID != "dr" {
		t.Fatalf("dashboard create: %+v %v", dout, err)
	}
	if _, err := d.Create(ctx, &cfn.Request{StackName: "s", LogicalID: "Bad", Token: token, Props: map[string]any{"DashboardBody": `{"widgets":1}`}}); handlerCode(err) != "InvalidRequest" {
		t.Fatalf("bad body: %v", err)
	}
	if _, err := d.Update(ctx, &cfn.Request{PhysicalID: "dr", Props: map[string]any{"DashboardBody": `{"widgets":[]}`}}); err != nil {
		t.Fatal(err)
	}
	if got, _ := m.GetDashboard(ctx, "dr"); got.Body != `{"widgets":[]}` {
		t.Fatalf("body after update %q", got.Body)
	}
	for range 2 {
		if err := d.Delete(ctx, &cfn.Request{PhysicalID: "dr"}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := d.Update(ctx, &cfn.Request{PhysicalID: "dr", Props: map[string]any{"DashboardBody": body}}); handlerCode(err) != "NotFound" {
		t.Fatalf("update of one deleted: %v", err)
	}
}

// TestCompositeAndDashboardNamesTaken: an AlarmName or DashboardName that
// someone else uses fails the create (AlreadyExists) and leaves theirs
// alone; the stack's own create run again after a crash finds its own.
func TestCompositeAndDashboardNamesTaken(t *testing.T) {
	m, err := monitor.Open(monitor.Options{KV: kv.NewMemory(), Region: "us-east-1", AccountID: "123456789012", Tick: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	ctx := t.Context()
	if err := m.PutCompositeAlarm(ctx, monitor.CompositeInput{Name: "theirs", Rule: "TRUE"}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.PutDashboard(ctx, monitor.DashboardInput{Name: "theirs", Body: `{"widgets":[]}`}); err != nil {
		t.Fatal(err)
	}
	token := "cfn-0123456789abcdef0123456789abcdef01234567"
	req := func(props map[string]any) *cfn.Request {
		return &cfn.Request{StackName: "s", StackID: "arn:aws:cloudformation:us-east-1:123456789012:stack/s/1", LogicalID: "R", Token: token, Props: props}
	}
	c := &cwComposites{Options{Alarms: m}}
	d := &cwDashboards{Options{Alarms: m}}
	if _, err := c.Create(ctx, req(map[string]any{"AlarmName": "theirs", "AlarmRule": "FALSE"})); handlerCode(err) != "AlreadyExists" ||
		err.Error() != "Resource of type 'AWS::CloudWatch::CompositeAlarm' with identifier 'theirs' already exists." {
		t.Fatalf("composite of a taken name: %v", err)
	}
	if _, err := d.Create(ctx, req(map[string]any{"DashboardName": "theirs", "DashboardBody": `{"widgets":[{"type":"text","properties":{"markdown":"x"}}]}`})); handlerCode(err) != "AlreadyExists" {
		t.Fatalf("dashboard of a taken name: %v", err)
	}
	l, _ := m.DescribeAlarms(ctx, monitor.AlarmFilter{Names: []string{"theirs"}, Types: []string{monitor.TypeComposite}})
	if db, _ := m.GetDashboard(ctx, "theirs"); len(l.Composite) != 1 || l.Composite[0].Rule != "TRUE" || db.Body != `{"widgets":[]}` {
		t.Fatalf("theirs changed: %+v %q", l.Composite, db.Body)
	}
	for range 2 { // the second as after a crash
		if _, err := c.Create(ctx, req(map[string]any{"AlarmName": "mine", "AlarmRule": "FALSE"})); err != nil {
			t.Fatal(err)
		}
		if _, err := d.Create(ctx, req(map[string]any{"DashboardName": "mine", "DashboardBody": `{"widgets":[]}`})); err != nil {
			t.Fatal(err)
		}
	}
}

func handlerCode(err error) string {
	var he *cfn.HandlerError
	if errors.As(err, &he) {
		return he.Code
	}
	return ""
}
