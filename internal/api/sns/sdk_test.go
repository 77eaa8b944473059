package sns

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sns/types"

	"github.com/regionfs/regionfs/internal/testkit"
)

// TestSDKEveryOperation runs every SNS operation with aws-sdk-go-v2.
func TestSDKEveryOperation(t *testing.T) {
	s := start(t)
	sub := newSubscriber(t)
	ctx := context.Background()
	c := sns.NewFromConfig(testkit.AWSConfig(s.url, "us-east-1", akid, secret))
	ct, err := c.CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String("go"), Attributes: map[string]string{"DisplayName": "Go"},
		Tags: []types.Tag{{Key: aws.String("team"), Value: aws.String("dr")}}})
	if err != nil || aws.ToString(ct.TopicArn) != "arn:aws:sns:us-east-1:123456789012:go" {
		t.Fatalf("CreateTopic: %+v %v", ct, err)
	}
	arn := ct.TopicArn
	lt, err := c.ListTopics(ctx, &sns.ListTopicsInput{})
	if err != nil || len(lt.Topics) != 1 {
		t.Fatalf("ListTopics: %+v %v", lt, err)
	}
	if _, err := c.SetTopicAttributes(ctx, &sns.SetTopicAttributesInput{TopicArn: arn, AttributeName: aws.String("DisplayName"), AttributeValue: aws.String("DR")}); err != nil {
		t.Fatal(err)
	}
	ga, err := c.GetTopicAttributes(ctx, &sns.GetTopicAttributesInput{TopicArn: arn})
	if err != nil || ga.Attributes["DisplayName"] != "DR" || ga.Attributes["TopicArn"] != aws.ToString(arn) {
		t.Fatalf("GetTopicAttributes: %+v %v", ga, err)
	}
	so, err := c.Subscribe(ctx, &sns.SubscribeInput{TopicArn: arn, Protocol: aws.String("http"), Endpoint: aws.String(sub.srv.URL)})
	if err != nil || aws.ToString(so.SubscriptionArn) != "pending confirmation" {
		t.Fatalf("Subscribe: %+v %v", so, err)
	}
	var subARN string
	testkit.WaitFor(t, "confirmed through the SubscribeURL", 10*time.Second, func() bool {
		ls, err := c.ListSubscriptionsByTopic(ctx, &sns.ListSubscriptionsByTopicInput{TopicArn: arn})
		if err != nil || len(ls.Subscriptions) != 1 {
			return false
		}
		subARN = aws.ToString(ls.Subscriptions[0].SubscriptionArn)
		return strings.HasPrefix(subARN, "arn:aws:sns:")
	})
	if all, err := c.ListSubscriptions(ctx, &sns.ListSubscriptionsInput{}); err != nil || len(all.Subscriptions) != 1 {
		t.Fatalf("ListSubscriptions: %+v %v", all, err)
	}
	if _, err := c.SetSubscriptionAttributes(ctx, &sns.SetSubscriptionAttributesInput{SubscriptionArn: aws.String(subARN),
		AttributeName: aws.String("RawMessageDelivery"), AttributeValue: aws.String("false")}); err != nil {
		t.Fatal(err)
	}
	if sa, err := c.GetSubscriptionAttributes(ctx, &sns.GetSubscriptionAttributesInput{SubscriptionArn: aws.String(subARN)}); err != nil || sa.Attributes["PendingConfirmation"] != "false" {
		t.Fatalf("GetSubscriptionAttributes: %+v %v", sa, err)
	}
	p, err := c.Publish(ctx, &sns.PublishInput{TopicArn: arn, Subject: aws.String("s"), Message: aws.String("m"),
		MessageAttributes: map[string]types.MessageAttributeValue{"k": {DataType: aws.String("String"), StringValue: aws.String("v")}}})
	if err != nil || aws.ToString(p.MessageId) == "" {
		t.Fatalf("Publish: %+v %v", p, err)
	}
	testkit.WaitFor(t, "notification", 10*time.Second, func() bool { return sub.count("Notification") == 1 })
	// ConfirmSubscription (signed) with a token: a second subscriber.
	sub2 := newSubscriber(t)
	if _, err := c.Subscribe(ctx, &sns.SubscribeInput{TopicArn: arn, Protocol: aws.String("http"), Endpoint: aws.String(sub2.srv.URL + "/x"), ReturnSubscriptionArn: true}); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, "second confirmation", 10*time.Second, func() bool { return sub2.count("SubscriptionConfirmation") == 1 })
	sub2.mu.Lock()
	tok := sub2.msgs[0]["Token"]
	sub2.mu.Unlock()
	if cs, err := c.ConfirmSubscription(ctx, &sns.ConfirmSubscriptionInput{TopicArn: arn, Token: aws.String(tok), AuthenticateOnUnsubscribe: aws.String("true")}); err != nil ||
		!strings.HasPrefix(aws.ToString(cs.SubscriptionArn), "arn:aws:sns:") {
		t.Fatalf("ConfirmSubscription: %+v %v", cs, err)
	}
	if _, err := c.Unsubscribe(ctx, &sns.UnsubscribeInput{SubscriptionArn: aws.String(subARN)}); err != nil {
		t.Fatal(err)
	}
	_, err = c.Unsubscribe(ctx, &sns.UnsubscribeInput{SubscriptionArn: aws.String(subARN)})
	var nf *types.NotFoundException
	if !errors.As(err, &nf) {
		t.Errorf("second Unsubscribe: %v", err)
	}
	_, err = c.Publish(ctx, &sns.PublishInput{TopicArn: aws.String("arn:aws:sns:us-east-1:123456789012:absent"), Message: aws.String("m")})
	if !errors.As(err, &nf) {
		t.Errorf("Publish to an absent topic: %v", err)
	}
	_, err = c.Subscribe(ctx, &sns.SubscribeInput{TopicArn: arn, Protocol: aws.String("sqs"), Endpoint: aws.String("arn:aws:sqs:us-east-1:123456789012:q")})
	var ip *types.InvalidParameterException
	if !errors.As(err, &ip) || !strings.Contains(err.Error(), "sqs") {
		t.Errorf("sqs subscription: %v", err)
	}
	if _, err := c.DeleteTopic(ctx, &sns.DeleteTopicInput{TopicArn: arn}); err != nil {
		t.Fatal(err)
	}
	if lt, _ := c.ListTopics(ctx, &sns.ListTopicsInput{}); len(lt.Topics) != 0 {
		t.Fatal("topic not deleted")
	}
}

// TestBoto3AndCLI runs every SNS operation with boto3 and the aws CLI.
func TestBoto3AndCLI(t *testing.T) {
	py := testkit.NeedPython(t, "boto3")
	awsPath := testkit.NeedTool(t, "aws")
	s := start(t)
	sub := newSubscriber(t)
	dir := t.TempDir()
	env := append(os.Environ(), "ENDPOINT="+s.url, "SUBSCRIBER="+sub.srv.URL, "AWS_ACCESS_KEY_ID="+akid, "AWS_SECRET_ACCESS_KEY="+secret,
		"AWS_DEFAULT_REGION=us-east-1", "AWS_EC2_METADATA_DISABLED=true", "AWS_CONFIG_FILE="+dir+"/c", "AWS_SHARED_CREDENTIALS_FILE="+dir+"/s",
		"AWS_MAX_ATTEMPTS=1", "AWS_PAGER=")
	cmd := exec.Command(py, "testdata/boto3_all.py")
	cmd.Env = env
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("boto3: %v\n%s", err, out)
	}
	run := func(args ...string) (string, error) {
		cmd := exec.Command(awsPath, append(args, "--endpoint-url", s.url, "--output", "text")...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		return strings.TrimSpace(string(out)), err
	}
	must := func(args ...string) string {
		t.Helper()
		out, err := run(args...)
		if err != nil {
			t.Fatalf("aws %v: %v\n%s", args, err, out)
		}
		return out
	}
	arn := must("sns", "create-topic", "--name", "cli", "--attributes", "DisplayName=CLI", "--query", "TopicArn")
	must("sns", "set-topic-attributes", "--topic-arn", arn, "--attribute-name", "DisplayName", "--attribute-value", "CLI2")
	if out := must("sns", "get-topic-attributes", "--topic-arn", arn, "--query", "Attributes.DisplayName"); out != "CLI2" {
		t.Fatalf("get-topic-attributes: %s", out)
	}
	if out := must("sns", "list-topics", "--query", "Topics[].TopicArn"); !strings.Contains(out, arn) {
		t.Fatalf("list-topics: %s", out)
	}
	must("sns", "subscribe", "--topic-arn", arn, "--protocol", "http", "--notification-endpoint", sub.srv.URL+"/cli")
	var subARN string
	testkit.WaitFor(t, "CLI subscription confirmed", 15*time.Second, func() bool {
		subARN, _ = run("sns", "list-subscriptions-by-topic", "--topic-arn", arn, "--query", "Subscriptions[0].SubscriptionArn")
		return strings.HasPrefix(subARN, "arn:aws:sns:")
	})
	if out := must("sns", "list-subscriptions", "--query", "Subscriptions[].Protocol"); !strings.Contains(out, "http") {
		t.Fatalf("list-subscriptions: %s", out)
	}
	must("sns", "set-subscription-attributes", "--subscription-arn", subARN, "--attribute-name", "RawMessageDelivery", "--attribute-value", "true")
	if out := must("sns", "get-subscription-attributes", "--subscription-arn", subARN, "--query", "Attributes.RawMessageDelivery"); out != "true" {
		t.Fatalf("get-subscription-attributes: %s", out)
	}
	// Attributes whose effect regionfs does not have are refused, not kept.
	for _, a := range []string{"FilterPolicy", "FilterPolicyScope", "RedrivePolicy"} {
		v := `{"event":["failover"]}`
		if a == "FilterPolicyScope" {
			v = "MessageBody"
		}
		out, err := run("sns", "set-subscription-attributes", "--subscription-arn", subARN, "--attribute-name", a, "--attribute-value", v)
		if err == nil || !strings.Contains(out, "(InvalidParameter)") || !strings.Contains(out, "not supported by regionfs") {
			t.Fatalf("set-subscription-attributes %s: %v %s", a, err, out)
		}
	}
	if out := must("sns", "get-subscription-attributes", "--subscription-arn", subARN); strings.Contains(out, "FilterPolicy") || strings.Contains(out, "RedrivePolicy") {
		t.Fatalf("a refused attribute was kept: %s", out)
	}
	if out := must("sns", "publish", "--topic-arn", arn, "--message", "hello", "--query", "MessageId"); len(out) != 36 {
		t.Fatalf("publish: %s", out)
	}
	if out, err := run("sns", "confirm-subscription", "--topic-arn", arn, "--token", "nonsense"); err == nil || !strings.Contains(out, "(InvalidParameter)") {
		t.Fatalf("confirm-subscription with a bad token: %v %s", err, out)
	}
	must("sns", "unsubscribe", "--subscription-arn", subARN)
	must("sns", "delete-topic", "--topic-arn", arn)
	if out, err := run("sns", "get-topic-attributes", "--topic-arn", arn); err == nil || !strings.Contains(out, "(NotFound)") {
		t.Fatalf("get-topic-attributes of a deleted topic: %v %s", err, out)
	}
}
