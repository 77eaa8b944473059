package awsproto

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

type dim struct {
	Name  string `json:"Name"`
	Value string `json:"Value"`
}

type datum struct {
	MetricName string     `json:"MetricName"`
	Dimensions []dim      `json:"Dimensions,omitempty"`
	Timestamp  *time.Time `json:"Timestamp,omitempty"`
	Value      *float64   `json:"Value,omitempty"`
	Values     []float64  `json:"Values,omitempty"`
	Resolution int        `json:"StorageResolution,omitempty"`
}

type input struct {
	Namespace  string            `json:"Namespace"`
	Data       []datum           `json:"MetricData"`
	Enabled    *bool             `json:"ActionsEnabled,omitempty"`
	Period     int32             `json:"Period,omitempty"`
	Threshold  float64           `json:"Threshold"`
	Attributes map[string]string `json:"Attributes,omitempty"`
	Blob       []byte            `json:"Blob,omitempty"`
	Empty      []string          `json:"Empty"`
	Skipped    string            `json:"-"`
}

func ptr[T any](v T) *T { return &v }

var ts = time.Date(2026, 1, 2, 3, 4, 5, 678e6, time.UTC)

var want = input{
	Namespace: "AWS/EFS",
	Data: []datum{
		{MetricName: "TimeSinceLastSync", Dimensions: []dim{{"FileSystemId", "fs-1"}, {"DestinationFileSystemId", "fs-2"}}, Timestamp: &ts, Value: ptr(1.5), Resolution: 1},
		{MetricName: "B", Values: []float64{1, 2.25, -3}},
	},
	Enabled:    ptr(true),
	Period:     60,
	Threshold:  900,
	Attributes: map[string]string{"DisplayName": "x y", "Policy": "{}"},
	Blob:       []byte{0, 1, 2, 0xff},
	Empty:      []string{},
}

func TestDecodeQuery(t *testing.T) {
	q := "Action=PutMetricData&Version=2010-08-01&Namespace=AWS%2FEFS" +
		"&MetricData.member.1.MetricName=TimeSinceLastSync&MetricData.member.1.Dimensions.member.1.Name=FileSystemId" +
		"&MetricData.member.1.Dimensions.member.1.Value=fs-1&MetricData.member.1.Dimensions.member.2.Name=DestinationFileSystemId" +
		"&MetricData.member.1.Dimensions.member.2.Value=fs-2&MetricData.member.1.Timestamp=2026-01-02T03%3A04%3A05.678Z" +
		"&MetricData.member.1.Value=1.5&MetricData.member.1.StorageResolution=1&MetricData.member.2.MetricName=B" +
		"&MetricData.member.2.Values.member.1=1&MetricData.member.2.Values.member.2=2.25&MetricData.member.2.Values.member.3=-3" +
		"&ActionsEnabled=true&Period=60&Threshold=900.0&Attributes.entry.1.key=DisplayName&Attributes.entry.1.value=x+y" +
		"&Attributes.entry.2.key=Policy&Attributes.entry.2.value=%7B%7D&Blob=AAEC%2Fw%3D%3D&Empty=&Skipped=x&Unknown=1"
	r := httptest.NewRequest("POST", "/", strings.NewReader(q))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	var got input
	if err := Decode(Query, r, []byte(q), &got); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Fatal(d)
	}
	if op := Operation(Query, r, []byte(q)); op != "PutMetricData" {
		t.Fatalf("operation %q", op)
	}
}

func TestDecodeQueryErrors(t *testing.T) {
	for _, q := range []string{
		"MetricData.member.2.MetricName=x",                       // gap
		"MetricData.member.0.MetricName=x",                       // index 0
		"MetricData.member.01.MetricName=x",                      // leading zero
		"MetricData.member.9999999.MetricName=x",                 // huge index
		"MetricData.member.1.MetricName=x&MetricData.member.1=y", // leaf and structure
		"Namespace=a&Namespace.x=b",                              // leaf and structure
		"Attributes.entry.1.key=a",                               // no value
		"Attributes.entry.1.key=a&Attributes.entry.1.value=1&Attributes.entry.2.key=a&Attributes.entry.2.value=2", // duplicate key
		"Period=6.5",         // not an integer
		"Period=99999999999", // int32 overflow
		"Threshold=abc",      // not a number
		"ActionsEnabled=yes", // not a boolean
		"MetricData.member.1.Timestamp=yesterday&MetricData.member.1.MetricName=x",
		"MetricData=x",                   // a list given as a scalar
		"Namespace.member.1=x",           // a string given as a list
		"Blob=%%%",                       // not base64
		strings.Repeat("a.", 20) + "b=1", // too deep
		"a..b=1",
	} {
		vals, err := url.ParseQuery(q)
		if err != nil {
			continue
		}
		v, err := DecodeQuery(vals, false)
		if err == nil {
			var in input
			err = Unmarshal(v, &in)
		}
		var de *DecodeError
		if !errors.As(err, &de) {
			t.Errorf("%s: %v, want a *DecodeError", q, err)
		}
	}
	v := url.Values{"a": {"1", "2"}}
	if _, err := DecodeQuery(v, false); err == nil {
		t.Error("repeated parameter accepted")
	}
}

func TestDecodeEC2Lists(t *testing.T) {
	vals, _ := url.ParseQuery("Filter.1.Name=vpc-id&Filter.1.Value.1=a&Filter.1.Value.2=b&SubnetId.1=s")
	v, err := DecodeQuery(vals, true)
	if err != nil {
		t.Fatal(err)
	}
	var in struct {
		Filter []struct {
			Name  string   `json:"Name"`
			Value []string `json:"Value"`
		} `json:"Filter"`
		SubnetID []string `json:"SubnetId"`
	}
	if err := Unmarshal(v, &in); err != nil || len(in.Filter) != 1 || in.Filter[0].Value[1] != "b" || in.SubnetID[0] != "s" {
		t.Fatalf("%+v %v", in, err)
	}
}

// TestRoundTrip encodes a struct in JSON and CBOR and decodes it back.
func TestRoundTrip(t *testing.T) {
	for _, p := range []Protocol{JSON10, CBOR} {
		var body []byte
		if p == CBOR {
			body = EncodeCBOR(Marshal(want))
		} else {
			body = EncodeJSON(Marshal(want))
		}
		r := httptest.NewRequest("POST", "/", bytes.NewReader(body))
		var got input
		if err := Decode(p, r, body, &got); err != nil {
			t.Fatalf("%v: %v", p, err)
		}
		if d := cmp.Diff(want, got); d != "" {
			t.Fatalf("%v: %s", p, d)
		}
	}
}

func TestGzip(t *testing.T) {
	body := EncodeJSON(Marshal(want))
	var zb bytes.Buffer
	zw := gzip.NewWriter(&zb)
	zw.Write(body)
	zw.Close()
	r := httptest.NewRequest("POST", "/", bytes.NewReader(zb.Bytes()))
	r.Header.Set("Content-Encoding", "gzip")
	var got input
	if err := Decode(JSON10, r, zb.Bytes(), &got); err != nil || got.Namespace != "AWS/EFS" {
		t.Fatalf("%+v %v", got, err)
	}
	if err := Decode(JSON10, r, []byte("not gzip"), &got); err == nil {
		t.Fatal("bad gzip accepted")
	}
	// A bomb: 64 MB of zeros compress to ~64 KB.
	zb.Reset()
	zw = gzip.NewWriter(&zb)
	zw.Write(make([]byte, 64<<20))
	zw.Close()
	if err := Decode(JSON10, r, zb.Bytes(), &got); err == nil || !strings.Contains(err.Error(), "decompressed") {
		t.Fatalf("gzip bomb: %v", err)
	}
}

func TestJSONEncoding(t *testing.T) {
	got := string(EncodeJSON(Marshal(struct {
		T   time.Time          `json:"T"`
		F   float64            `json:"F"`
		N   float64            `json:"N"`
		I   *int               `json:"I,omitempty"`
		S   string             `json:"S,omitempty"`
		M   map[string]float64 `json:"M"`
		Nil []string           `json:"Nil"`
	}{T: ts, F: 0.1, N: math.Inf(-1), M: map[string]float64{"p99": 2, "p50": 1}})))
	if want := `{"T":1767323045.678,"F":0.1,"N":"-Infinity","M":{"p50":1.0,"p99":2.0}}`; got != want {
		t.Fatalf("%s\nwant %s", got, want)
	}
}

func TestQueryXML(t *testing.T) {
	type res struct {
		Label      string `json:"Label"`
		Datapoints []struct {
			Maximum float64 `json:"Maximum"`
		} `json:"Datapoints"`
		Ext   map[string]float64 `json:"ExtendedStatistics"`
		When  time.Time          `json:"When"`
		Empty []string           `json:"Empty"`
	}
	got := string(EncodeQueryResponse(Monitoring, "GetMetricStatistics", Marshal(res{Label: "a<b", Ext: map[string]float64{"p99": 1.5}, When: ts, Empty: []string{},
		Datapoints: []struct {
			Maximum float64 `json:"Maximum"`
		}{{2}}}), "rid"))
	want := `<GetMetricStatisticsResponse xmlns="http://monitoring.amazonaws.com/doc/2010-08-01/"><GetMetricStatisticsResult>` +
		`<Label>a&lt;b</Label><Datapoints><member><Maximum>2</Maximum></member></Datapoints>` +
		`<ExtendedStatistics><entry><key>p99</key><value>1.5</value></entry></ExtendedStatistics>` +
		`<When>2026-01-02T03:04:05.678Z</When><Empty></Empty></GetMetricStatisticsResult>` +
		`<ResponseMetadata><RequestId>rid</RequestId></ResponseMetadata></GetMetricStatisticsResponse>`
	if got != want {
		t.Fatalf("%s\nwant %s", got, want)
	}
	if got := string(EncodeQueryResponse(SNS, "DeleteTopic", nil, "r")); !strings.HasPrefix(got, `<DeleteTopicResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/"><ResponseMetadata>`) {
		t.Fatal(got)
	}
}

func TestCBOREncoding(t *testing.T) {
	// RFC 8949 appendix A examples.
	for _, tc := range []struct {
		v    any
		want string
	}{
		{int64(0), "00"}, {int64(23), "17"}, {int64(24), "1818"}, {int64(1000), "1903e8"}, {int64(-1), "20"}, {int64(-1000), "3903e7"},
		{1.1, "fb3ff199999999999a"}, {true, "f5"}, {"IETF", "6449455446"}, {[]any{int64(1), int64(2)}, "820102"},
		{&Struct{Members: []Member{{"a", int64(1)}}}, "a1616101"}, {[]byte{1, 2}, "420102"},
	} {
		if got := hexs(EncodeCBOR(tc.v)); got != tc.want {
			t.Errorf("%v: %s, want %s", tc.v, got, tc.want)
		}
	}
}

func TestCBORDecoding(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want any
	}{
		{"a0", map[string]any{}},
		{"a1616101", map[string]any{"a": int64(1)}},
		{"a16161f93c00", map[string]any{"a": 1.0}},                                  // half float
		{"a16161fa47c35000", map[string]any{"a": 100000.0}},                         // single
		{"a16161c11a514b67b0", map[string]any{"a": time.Unix(1363896240, 0).UTC()}}, // tag 1
		{"bf61619f0102ff6162f6ff", map[string]any{"a": []any{int64(1), int64(2)}}},  // indefinite, null dropped
		{"a161617f62616262626dff", map[string]any{"a": "abbm"}},                     // chunked text
	} {
		got, err := DecodeCBOR(unhex(tc.in))
		if err != nil {
			t.Errorf("%s: %v", tc.in, err)
			continue
		}
		if d := cmp.Diff(tc.want, any(got)); d != "" {
			t.Errorf("%s: %s", tc.in, d)
		}
	}
	for _, bad := range []string{"a1", "a10101", "a2616101616101", "9b00000000ffffffff", "a16161ff", "a1616162c328", "a1616180ff", "ff", "a0a0",
		"a1616181f6", "a16161c16161", "a1616bff"} {
		if _, err := DecodeCBOR(unhex(bad)); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
	deep := strings.Repeat("81", 100) + "00"
	if _, err := DecodeCBOR(unhex("a16161" + deep)); err == nil {
		t.Error("deep nesting accepted")
	}
}

func TestDetect(t *testing.T) {
	mk := func(method, path string, h map[string]string) *http.Request {
		r := httptest.NewRequest(method, "http://x"+path, nil)
		for k, v := range h {
			r.Header.Set(k, v)
		}
		return r
	}
	form := map[string]string{"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}
	for _, tc := range []struct {
		service string
		r       *http.Request
		body    string
		want    Protocol
	}{
		{"elasticfilesystem", mk("GET", "/", nil), "", RESTJSON},
		{"ec2", mk("POST", "/", form), "", EC2},
		{"monitoring", mk("POST", "/", map[string]string{"X-Amz-Target": "GraniteServiceVersion20100801.ListMetrics", "Content-Type": "application/x-amz-json-1.0"}), "", JSON10},
		{"kms", mk("POST", "/", map[string]string{"X-Amz-Target": "TrentService.ListKeys", "Content-Type": "application/x-amz-json-1.1"}), "", JSON11},
		{"monitoring", mk("POST", "/service/GraniteServiceVersion20100801/operation/ListMetrics", map[string]string{"Smithy-Protocol": "rpc-v2-cbor"}), "", CBOR},
		{"sns", mk("POST", "/", form), "Action=ListTopics", Query},
		{"sns", mk("POST", "/", nil), "", Query},
		{"s3", mk("GET", "/bucket", nil), "", RESTXML},
		{"sts", mk("POST", "/", form), "Action=GetCallerIdentity&Version=2011-06-15", Query},
		{"lambda", mk("GET", "/2015-03-31/functions/", nil), "", RESTJSON},
		{"", mk("GET", "/2015-02-01/file-systems", nil), "", RESTJSON},
		{"", mk("POST", "/", form), "Action=DescribeSubnets&Version=2016-11-15", EC2},
		{"", mk("POST", "/", form), "Action=ListMetrics&Version=2010-08-01", Query},
		{"", mk("GET", "/?Action=ListMetrics", nil), "", Query},
		{"", mk("GET", "/", nil), "", RESTJSON},
	} {
		if got := Detect(tc.service, tc.r, []byte(tc.body)); got != tc.want {
			t.Errorf("%s %s %s: %v, want %v", tc.service, tc.r.URL.Path, tc.body, got, tc.want)
		}
	}
}

func hexs(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, digits[c>>4], digits[c&15])
	}
	return string(out)
}

func unhex(s string) []byte {
	b := make([]byte, len(s)/2)
	for i := range b {
		b[i] = fromHex(s[2*i])<<4 | fromHex(s[2*i+1])
	}
	return b
}

func fromHex(c byte) byte {
	if c >= 'a' {
		return c - 'a' + 10
	}
	return c - '0'
}

// TestCallDecode: a member of the wrong type, or a body that cannot be
// read (not gzip), is the service's own error (Invalid).
func TestCallDecode(t *testing.T) {
	errInvalid := errors.New("the service's validation error")
	call := func(body string, gzipped bool) *Call {
		r := httptest.NewRequest("POST", "/", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/x-amz-json-1.0")
		if gzipped {
			r.Header.Set("Content-Encoding", "gzip")
		}
		return &Call{R: r, P: JSON10, Body: []byte(body), Invalid: func(de *DecodeError) error {
			return fmt.Errorf("%w: %s", errInvalid, de.Error())
		}}
	}
	var in struct {
		Period int `json:"Period"`
	}
	if err := call(`{"Period":60}`, false).Decode(&in); err != nil || in.Period != 60 {
		t.Fatalf("Decode: %v, Period %d", err, in.Period)
	}
	if err := call(`{"Period":"sixty"}`, false).Decode(&in); !errors.Is(err, errInvalid) || !strings.Contains(err.Error(), "Period") {
		t.Fatalf("a member of the wrong type: %v, want the service's error naming Period", err)
	}
	if err := call(`not gzip`, true).Decode(&in); !errors.Is(err, errInvalid) {
		t.Fatalf("a body that is not gzip: %v, want the service's error", err)
	}
}
