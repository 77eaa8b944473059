package awserr

import (
	"context"
	"errors"
	"net/http/httptest"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwschemas "github.com/aws/aws-sdk-go-v2/service/cloudwatch/schemas"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/efs"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/transport/http/protocol/awsjson"
	"github.com/aws/smithy-go/transport/http/protocol/awsquery"

	"github.com/regionfs/regionfs/internal/control"
	"github.com/regionfs/regionfs/internal/testkit"
)

// TestSDKReadsEveryProtocol: aws-sdk-go-v2 reads the code, message and
// fault of an error written in each protocol it speaks.
func TestSDKReadsEveryProtocol(t *testing.T) {
	ctx := context.Background()
	creds := credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", "")
	hc := testkit.SDKHTTPClient() // one attempt, without the SDK's request body race
	for _, tc := range []struct {
		name  string
		err   error
		call  func(url string) error
		code  string
		msg   string
		fault smithy.ErrorFault
	}{
		{"cloudwatch cbor", Errorf(ErrThrottled, "slow down"), func(url string) error {
			c := cloudwatch.New(cloudwatch.Options{Region: "us-east-1", BaseEndpoint: aws.String(url), Credentials: creds, RetryMaxAttempts: 1, HTTPClient: hc})
			_, err := c.ListMetrics(ctx, &cloudwatch.ListMetricsInput{})
			return err
		}, "Throttling", "slow down", smithy.FaultClient},
		{"cloudwatch json 1.0", Errorf(ErrUnknownOperation, "no such op"), func(url string) error {
			c := cloudwatch.New(cloudwatch.Options{Region: "us-east-1", BaseEndpoint: aws.String(url), Credentials: creds, RetryMaxAttempts: 1, HTTPClient: hc,
				Protocol: awsjson.New10(cwschemas.GraniteServiceVersion20100801)})
			_, err := c.ListMetrics(ctx, &cloudwatch.ListMetricsInput{})
			return err
		}, "InvalidAction", "no such op", smithy.FaultClient},
		{"cloudwatch query", Errorf(ErrBodyTooLarge, "too big"), func(url string) error {
			c := cloudwatch.New(cloudwatch.Options{Region: "us-east-1", BaseEndpoint: aws.String(url), Credentials: creds, RetryMaxAttempts: 1, HTTPClient: hc,
				Protocol: awsquery.New(cwschemas.GraniteServiceVersion20100801)})
			_, err := c.ListMetrics(ctx, &cloudwatch.ListMetricsInput{})
			return err
		}, "RequestEntityTooLarge", "too big", smithy.FaultClient},
		{"cloudwatch internal", errors.New("secret cause"), func(url string) error {
			c := cloudwatch.New(cloudwatch.Options{Region: "us-east-1", BaseEndpoint: aws.String(url), Credentials: creds, RetryMaxAttempts: 1, HTTPClient: hc})
			_, err := c.ListMetrics(ctx, &cloudwatch.ListMetricsInput{})
			return err
		}, "InternalFailure", "An internal error occurred (request req-1).", smithy.FaultServer},
		{"sns query", Errorf(ErrMissingAction, "no action"), func(url string) error {
			c := sns.New(sns.Options{Region: "us-east-1", BaseEndpoint: aws.String(url), Credentials: creds, RetryMaxAttempts: 1, HTTPClient: hc})
			_, err := c.ListTopics(ctx, &sns.ListTopicsInput{})
			return err
		}, "MissingAction", "no action", smithy.FaultUnknown},
		{"ec2", Errorf(ErrEC2SubnetNotFound, "no subnet"), func(url string) error {
			c := ec2.New(ec2.Options{Region: "us-east-1", BaseEndpoint: aws.String(url), Credentials: creds, RetryMaxAttempts: 1, HTTPClient: hc})
			_, err := c.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{})
			return err
		}, "InvalidSubnetID.NotFound", "no subnet", smithy.FaultUnknown},
		{"efs", &control.Error{Kind: control.ErrFileSystemNotFound, Message: "no fs"}, func(url string) error {
			c := efs.New(efs.Options{Region: "us-east-1", BaseEndpoint: aws.String(url), Credentials: creds, RetryMaxAttempts: 1, HTTPClient: hc})
			_, err := c.DescribeFileSystems(ctx, &efs.DescribeFileSystemsInput{})
			return err
		}, "FileSystemNotFound", "no fs", smithy.FaultUnknown},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(failing(tc.err))
			defer srv.Close()
			err := tc.call(srv.URL)
			var ae smithy.APIError
			if !errors.As(err, &ae) {
				t.Fatalf("not an API error: %v", err)
			}
			if ae.ErrorCode() != tc.code || ae.ErrorMessage() != tc.msg || (tc.fault != smithy.FaultUnknown && ae.ErrorFault() != tc.fault) {
				t.Fatalf("got %s %q %v, want %s %q %v", ae.ErrorCode(), ae.ErrorMessage(), ae.ErrorFault(), tc.code, tc.msg, tc.fault)
			}
		})
	}
}
