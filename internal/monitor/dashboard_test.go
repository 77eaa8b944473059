package monitor

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestDashboards(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	if err := f.m.PutMetricAlarm(ctx, simpleAlarm("lag", 60, 1, 1, MissingMissing)); err != nil {
		t.Fatal(err)
	}
	good := `{"start":"-PT6H","periodOverride":"auto","widgets":[` +
		`{"type":"metric","x":0,"y":0,"width":12,"height":6,"properties":{"metrics":[["AWS/EFS","TimeSinceLastSync","FileSystemId","fs-1"]],"region":"us-east-1"}},` +
		`{"type":"alarm","properties":{"alarms":["arn:aws:cloudwatch:us-east-1:123456789012:alarm:lag"]}},` +
		`{"type":"text","properties":{"markdown":"# DR"}}]}`
	if w, err := f.m.PutDashboard(ctx, DashboardInput{Name: "dr", Body: good, Tags: []Tag{{"team", "dr"}}}); err != nil || len(w) != 0 {
		t.Fatalf("good body: %v %v", w, err)
	}
	w, err := f.m.PutDashboard(ctx, DashboardInput{Name: "warned", Body: `{"widgets":[{"type":"metric","x":20,"y":0,"width":8,"properties":{"metrics":[["A","B"]],"region":"eu-west-1"}},` +
		`{"type":"alarm","properties":{"alarms":["arn:aws:cloudwatch:us-east-1:123456789012:alarm:nope"]}}],"theme":"dark"}`})
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, m := range w {
		paths = append(paths, m.DataPath)
	}
	if got := strings.Join(paths, " "); got != "/theme /widgets/0 /widgets/0/properties/region /widgets/1/properties/alarms/0" {
		t.Fatalf("warnings %v", w)
	}
	for _, tc := range []struct {
		name, body, want string
		err              error
	}{
		{"x", "", "DashboardBody is required", ErrMissingParameter},
		{"", "{}", "DashboardName is required", ErrMissingParameter},
		{"a b", `{"widgets":[]}`, "invalid characters", ErrDashboardInvalid},
		{strings.Repeat("a", 256), `{"widgets":[]}`, "at most 255", ErrDashboardInvalid},
		{"x", "[]", `"dataPath": ""`, ErrDashboardInvalid},
		{"x", `{"widgets":[]} {}`, "not one JSON object", ErrDashboardInvalid},
		{"x", `{"widgets":[]} }`, "not one JSON object", ErrDashboardInvalid}, // found by FuzzDashboardBody
		{"x", `{}`, "Should have required property 'widgets'", ErrDashboardInvalid},
		{"x", `{"widgets":{}}`, `"dataPath": "/widgets"`, ErrDashboardInvalid},
		{"x", `{"widgets":[1]}`, `"message": "Should be object"`, ErrDashboardInvalid},
		{"x", `{"widgets":[{"type":"pie","properties":{}}]}`, `"dataPath": "/widgets/0/type"`, ErrDashboardInvalid},
		{"x", `{"widgets":[{"type":"text"}]}`, "Should have required property 'properties'", ErrDashboardInvalid},
		{"x", `{"widgets":[{"type":"text","properties":{}}]}`, "Should have required property 'markdown'", ErrDashboardInvalid},
		{"x", `{"widgets":[{"type":"metric","properties":{}}]}`, "there are 2 validation errors", ErrDashboardInvalid},
		{"x", `{"widgets":[{"type":"metric","properties":{"metrics":["a"],"region":"us-east-1"}}]}`, `"dataPath": "/widgets/0/properties/metrics/0"`, ErrDashboardInvalid},
		{"x", `{"widgets":[{"type":"metric","properties":{"metrics":[]}}]}`, "Should have required property 'region'", ErrDashboardInvalid},
		{"x", `{"widgets":[{"type":"text","x":24,"y":0,"properties":{"markdown":"m"}}]}`, "Should be between 0 and 23", ErrDashboardInvalid},
		{"x", `{"widgets":[{"type":"text","x":1,"properties":{"markdown":"m"}}]}`, "'x' and 'y'", ErrDashboardInvalid},
		{"x", `{"widgets":[{"type":"text","height":1.5,"properties":{"markdown":"m"}}]}`, "Should be integer", ErrDashboardInvalid},
		{"x", `{"widgets":[],"periodOverride":"never"}`, "auto, inherit", ErrDashboardInvalid},
		{"x", `{"widgets":[` + strings.Repeat(`{"type":"text","properties":{"markdown":"m"}},`, MaxDashboardWidgets) + `{"type":"text","properties":{"markdown":"m"}}]}`, "more than 500 items", ErrDashboardInvalid},
	} {
		_, err := f.m.PutDashboard(ctx, DashboardInput{Name: tc.name, Body: tc.body})
		var re *Error
		if !errors.Is(err, tc.err) || !errors.As(err, &re) || !strings.Contains(re.Message, tc.want) {
			t.Errorf("%.20s %.60s: %v, want %v containing %q", tc.name, tc.body, err, tc.err, tc.want)
		}
	}
	if _, err := f.m.GetDashboard(ctx, "x"); !errors.Is(err, ErrDashboardNotFound) {
		t.Fatalf("a refused dashboard was stored: %v", err)
	}

	// Replacing keeps the tags; everything survives a restart.
	if _, err := f.m.PutDashboard(ctx, DashboardInput{Name: "dr", Body: `{"widgets":[]}`}); err != nil {
		t.Fatal(err)
	}
	f.m.Close()
	f.open(t)
	d, err := f.m.GetDashboard(ctx, "dr")
	if err != nil || d.Body != `{"widgets":[]}` || d.ARN != "arn:aws:cloudwatch::123456789012:dashboard/dr" || len(d.Tags) != 1 || !d.Modified.Equal(t0) {
		t.Fatalf("after restart: %+v %v", d, err)
	}
	list, next, err := f.m.ListDashboards(ctx, "", "")
	if err != nil || next != "" || len(list) != 2 || list[0].Name != "dr" || list[0].SizeBytes != 14 || list[1].Name != "warned" {
		t.Fatalf("list: %+v %q %v", list, next, err)
	}
	if err := f.m.DeleteDashboards(ctx, []string{"dr", "nope"}); !errors.Is(err, ErrDashboardNotFound) {
		t.Fatalf("delete with an absent one: %v", err)
	}
	if err := f.m.DeleteDashboards(ctx, []string{"dr", "warned"}); err != nil {
		t.Fatal(err)
	}
	if list, _, _ := f.m.ListDashboards(ctx, "", ""); len(list) != 0 {
		t.Fatalf("after delete: %+v", list)
	}
}

func TestListDashboardsPages(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	n := dashboardsPerPage + 5
	for i := range n {
		if _, err := f.m.PutDashboard(ctx, DashboardInput{Name: fmt.Sprintf("p-%05d", i), Body: `{"widgets":[]}`}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := f.m.PutDashboard(ctx, DashboardInput{Name: "q", Body: `{"widgets":[]}`}); err != nil {
		t.Fatal(err)
	}
	var names []string
	pages := 0
	for tok := ""; ; {
		list, next, err := f.m.ListDashboards(ctx, "p-", tok)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, d := range list {
			names = append(names, d.Name)
		}
		if next == "" {
			break
		}
		tok = next
	}
	if pages != 2 || len(names) != n || names[0] != "p-00000" || names[n-1] != fmt.Sprintf("p-%05d", n-1) {
		t.Fatalf("%d pages, %d names", pages, len(names))
	}
	for _, tok := range []string{"garbage", encodeToken(tokenAlarms, "p-00001")} {
		if _, _, err := f.m.ListDashboards(ctx, "p-", tok); !errors.Is(err, ErrInvalidNextToken) {
			t.Fatalf("token %q: %v", tok, err)
		}
	}
	if _, _, err := f.m.ListDashboards(ctx, "bad prefix", ""); !errors.Is(err, ErrInvalidParameterValue) {
		t.Fatalf("bad prefix: %v", err)
	}
}
