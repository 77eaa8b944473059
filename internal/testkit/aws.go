package testkit

import (
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
)

// AWSConfig configures an aws-sdk-go-v2 client (efs.NewFromConfig,
// ec2.NewFromConfig, …) for a test endpoint: the region, static
// credentials and a single attempt, so that a test sees the first answer.
func AWSConfig(endpoint, region, accessKeyID, secretKey string) aws.Config {
	return aws.Config{
		Region:           region,
		BaseEndpoint:     aws.String(endpoint),
		Credentials:      credentials.NewStaticCredentialsProvider(accessKeyID, secretKey, ""),
		RetryMaxAttempts: 1,
	}
}
