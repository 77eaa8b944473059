package sns

import (
	"log/slog"
	"testing"

	"github.com/regionfs/regionfs/internal/engine/kv"
	"github.com/regionfs/regionfs/internal/monitor/notify"
	"github.com/regionfs/regionfs/internal/testkit"
)

// FuzzRequests feeds arbitrary query requests to the SNS handler: a result
// or a 4xx, never a crash or a 5xx.
func FuzzRequests(f *testing.F) {
	for _, s := range []string{
		"Action=CreateTopic&Name=t&Attributes.entry.1.key=DisplayName&Attributes.entry.1.value=x",
		"Action=Publish&TopicArn=arn%3Aaws%3Asns%3Aus-east-1%3A123456789012%3At&Message=m&MessageAttributes.entry.1.Name=a&MessageAttributes.entry.1.Value.DataType=String&MessageAttributes.entry.1.Value.StringValue=v",
		"Action=Subscribe&TopicArn=arn%3Aaws%3Asns%3Aus-east-1%3A123456789012%3At&Protocol=http&Endpoint=http%3A%2F%2F127.0.0.1%3A1%2F",
		"Action=SetTopicAttributes&TopicArn=x&AttributeName=Policy&AttributeValue=%7B",
		"Action=ListTopics&NextToken=%%%", "", "Action=",
	} {
		f.Add([]byte(s))
	}
	ns, err := notify.Open(notify.Options{KV: kv.NewMemory(), Region: "us-east-1", AccountID: "123456789012", PublicURL: "http://sns.test"})
	if err != nil {
		f.Fatal(err)
	}
	defer ns.Close()
	h := NewHandler(ns, slog.New(slog.DiscardHandler))
	f.Fuzz(func(t *testing.T, body []byte) {
		w := testkit.PostForm(h, string(body))
		if w.Code >= 500 {
			t.Fatalf("%d %s", w.Code, w.Body)
		}
	})
}
