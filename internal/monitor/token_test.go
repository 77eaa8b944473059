package monitor

import (
	"context"
	"encoding/base64"
	"errors"
	"testing"
)

// TestForgedNextTokensRefused: a NextToken the list did not issue is
// InvalidNextToken. The tokens were the base64 of a position, so any
// base64-looking string ("not-a-token", another list's token) was read as
// a position and answered a page (qa10).
func TestForgedNextTokensRefused(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	for _, n := range []string{"a", "b", "c"} {
		if err := f.m.PutMetricAlarm(ctx, simpleAlarm(n, 60, 1, 1, "")); err != nil {
			t.Fatal(err)
		}
	}
	as, alarmsNext, err := describeMetric(ctx, f.m, AlarmFilter{MaxRecords: 1})
	if err != nil || len(as) != 1 || alarmsNext == "" {
		t.Fatalf("%v %q %v", as, alarmsNext, err)
	}
	_, historyNext, err := f.m.DescribeAlarmHistory(ctx, HistoryQuery{MaxRecords: 1})
	if err != nil || historyNext == "" {
		t.Fatalf("history: %q %v", historyNext, err)
	}
	for _, tok := range []string{"not-a-token", base64.RawURLEncoding.EncodeToString([]byte("a")), historyNext, alarmsNext[:len(alarmsNext)-1]} {
		if _, _, err := describeMetric(ctx, f.m, AlarmFilter{NextToken: tok}); !errors.Is(err, ErrInvalidNextToken) {
			t.Errorf("DescribeAlarms(NextToken %q): %v, want InvalidNextToken", tok, err)
		}
		if _, _, err := f.m.ListMetrics(ctx, ListQuery{NextToken: tok}); !errors.Is(err, ErrInvalidNextToken) {
			t.Errorf("ListMetrics(NextToken %q): %v, want InvalidNextToken", tok, err)
		}
	}
	for _, tok := range []string{"not-a-token", alarmsNext} {
		if _, _, err := f.m.DescribeAlarmHistory(ctx, HistoryQuery{NextToken: tok}); !errors.Is(err, ErrInvalidNextToken) {
			t.Errorf("DescribeAlarmHistory(NextToken %q): %v, want InvalidNextToken", tok, err)
		}
	}
	rest, _, err := describeMetric(ctx, f.m, AlarmFilter{NextToken: alarmsNext})
	if err != nil || len(rest) != 2 || rest[0].Name != "b" {
		t.Fatalf("the issued token: %v %v", rest, err)
	}
}

// TestAlarmNamesLength: Delete/Enable/DisableAlarmActions refuse a name
// longer than the model's 255 characters as InvalidParameterValue (it was
// ResourceNotFound, or nothing at all) (qa10).
func TestAlarmNamesLength(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	long := string(make([]byte, 256))
	if err := f.m.DeleteAlarms(ctx, []string{long}); !errors.Is(err, ErrInvalidParameterValue) {
		t.Errorf("DeleteAlarms: %v", err)
	}
	if err := f.m.SetAlarmActions(ctx, []string{long}, true); !errors.Is(err, ErrInvalidParameterValue) {
		t.Errorf("SetAlarmActions: %v", err)
	}
	if err := f.m.SetAlarmActions(ctx, []string{""}, false); !errors.Is(err, ErrInvalidParameterValue) {
		t.Errorf("SetAlarmActions(\"\"): %v", err)
	}
}
