package cloudwatch

import (
	"bytes"
	"log/slog"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/regionfs/regionfs/internal/engine/kv"
	"github.com/regionfs/regionfs/internal/monitor"
)

// FuzzRequests feeds arbitrary bodies to every operation in each protocol:
// the answer is a result or a 4xx, never a crash or a 5xx.
func FuzzRequests(f *testing.F) {
	for _, s := range []string{
		"Action=PutMetricData&Namespace=x&MetricData.member.1.MetricName=m&MetricData.member.1.Value=1",
		"Action=GetMetricStatistics&Namespace=x&MetricName=m&StartTime=2026-01-01T00%3A00%3A00Z&EndTime=2026-01-02T00%3A00%3A00Z&Period=60&Statistics.member.1=Sum",
		`{"Namespace":"x","MetricData":[{"MetricName":"m","Values":[1,2],"Counts":[1]}]}`,
		`{"MetricDataQueries":[{"Id":"e1","Expression":"SUM([m1,"}],"StartTime":1,"EndTime":2}`,
		`{"AlarmName":"a","Metrics":[{"Id":"m1","Expression":"m1"}],"EvaluationPeriods":1,"Threshold":1,"ComparisonOperator":"GreaterThanThreshold"}`,
		"\xa2dNamespaceax", "", "{}",
	} {
		for _, op := range []string{"PutMetricData", "GetMetricStatistics", "GetMetricData", "PutMetricAlarm", "DescribeAlarms"} {
			f.Add(op, uint8(0), []byte(s))
			f.Add(op, uint8(1), []byte(s))
			f.Add(op, uint8(2), []byte(s))
		}
	}
	m, err := monitor.Open(monitor.Options{KV: kv.NewMemory(), Region: "us-east-1", AccountID: account, Tick: time.Hour})
	if err != nil {
		f.Fatal(err)
	}
	defer m.Close()
	h := NewHandler(m, slog.New(slog.DiscardHandler))
	f.Fuzz(func(t *testing.T, op string, proto uint8, body []byte) {
		for _, c := range op {
			if c < 'A' || c > 'z' {
				return // the operation name is part of the URL and header
			}
		}
		var r = httptest.NewRequest("POST", "/", bytes.NewReader(body))
		switch proto % 3 {
		case 0:
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			if !bytes.Contains(body, []byte("Action=")) {
				body = append([]byte("Action="+op+"&"), body...)
				r = httptest.NewRequest("POST", "/", bytes.NewReader(body))
				r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			}
		case 1:
			r.Header.Set("Content-Type", "application/x-amz-json-1.0")
			r.Header.Set("X-Amz-Target", "GraniteServiceVersion20100801."+op)
		case 2:
			r = httptest.NewRequest("POST", "/service/GraniteServiceVersion20100801/operation/"+op, bytes.NewReader(body))
			r.Header.Set("Content-Type", "application/cbor")
			r.Header.Set("Smithy-Protocol", "rpc-v2-cbor")
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code >= 500 {
			t.Fatalf("%s %d: %d %s", op, proto%3, w.Code, w.Body)
		}
	})
}
