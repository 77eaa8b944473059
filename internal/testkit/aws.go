package testkit

import (
	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/regionfs/regionfs/internal/sdkhttp"
)

// AWSConfig configures an aws-sdk-go-v2 client (efs.NewFromConfig,
// ec2.NewFromConfig, …) for a test endpoint: the region, static
// credentials, SDKHTTPClient and a single attempt, so that a test sees the
// first answer.
func AWSConfig(endpoint, region, accessKeyID, secretKey string) aws.Config {
	return aws.Config{
		Region:           region,
		BaseEndpoint:     aws.String(endpoint),
		Credentials:      credentials.NewStaticCredentialsProvider(accessKeyID, secretKey, ""),
		RetryMaxAttempts: 1,
		HTTPClient:       SDKHTTPClient(),
	}
}

// SDKHTTPClient is the HTTP client of a test's aws-sdk-go-v2 clients: the
// SDK's default one with request bodies copied (sdkhttp.CopyBodies: the
// SDK's request body race taken out, for clients that make a single
// attempt).
func SDKHTTPClient() aws.HTTPClient {
	return sdkhttp.CopyBodies(awshttp.NewBuildableClient())
}
