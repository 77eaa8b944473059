package s3blocks

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/regionfs/regionfs/internal/sdkhttp"
)

// Config locates a bucket: what an s3:// URL says.
type Config struct {
	Bucket string
	// Prefix is prepended to every object key (the URL's path, with a
	// trailing slash).
	Prefix string
	// Endpoint is the S3 API address (http://host:port); empty = AWS.
	Endpoint string
	Region   string
	// AccessKeyID and SecretAccessKey; empty = the AWS SDK's default chain.
	AccessKeyID, SecretAccessKey string
	// PathStyle addresses buckets as endpoint/bucket (default with an
	// Endpoint).
	PathStyle bool

	MultipartThreshold int64
	PartSize           int64
	Concurrency        int
	RetryFor           time.Duration
}

// ParseURL parses s3://bucket[/prefix]?endpoint=…&region=…&access_key_id=…
// &secret_access_key=…&path_style=…&multipart_threshold=…&part_size=…
// &concurrency=…&retry_for=… (sizes in bytes, retry_for a Go duration).
func ParseURL(raw string) (Config, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return Config{}, fmt.Errorf("s3blocks: blocks URL: %w", err)
	}
	if u.Scheme != "s3" || u.Host == "" {
		return Config{}, fmt.Errorf("s3blocks: blocks URL %q: want s3://bucket[/prefix]?endpoint=…", redact(raw))
	}
	q := u.Query()
	c := Config{
		Bucket:          u.Host,
		Endpoint:        q.Get("endpoint"),
		Region:          cmp.Or(q.Get("region"), "us-east-1"),
		AccessKeyID:     q.Get("access_key_id"),
		SecretAccessKey: q.Get("secret_access_key"),
	}
	if p := strings.Trim(u.Path, "/"); p != "" {
		c.Prefix = p + "/"
	}
	c.PathStyle = c.Endpoint != ""
	if v := q.Get("path_style"); v != "" {
		if c.PathStyle, err = strconv.ParseBool(v); err != nil {
			return Config{}, fmt.Errorf("s3blocks: path_style=%q: %w", v, err)
		}
	}
	for name, dst := range map[string]*int64{"multipart_threshold": &c.MultipartThreshold, "part_size": &c.PartSize} {
		if v := q.Get(name); v != "" {
			if *dst, err = strconv.ParseInt(v, 10, 64); err != nil || *dst <= 0 {
				return Config{}, fmt.Errorf("s3blocks: %s=%q: want a positive number of bytes", name, v)
			}
		}
	}
	if c.PartSize != 0 && c.PartSize < 5<<20 {
		return Config{}, fmt.Errorf("s3blocks: part_size=%d: S3 wants parts of at least 5 MiB (5242880)", c.PartSize)
	}
	if v := q.Get("concurrency"); v != "" {
		if c.Concurrency, err = strconv.Atoi(v); err != nil || c.Concurrency <= 0 {
			return Config{}, fmt.Errorf("s3blocks: concurrency=%q: want a positive number", v)
		}
	}
	if v := q.Get("retry_for"); v != "" {
		if c.RetryFor, err = time.ParseDuration(v); err != nil || c.RetryFor <= 0 {
			return Config{}, fmt.Errorf("s3blocks: retry_for=%q: want a positive duration", v)
		}
	}
	if (c.AccessKeyID == "") != (c.SecretAccessKey == "") {
		return Config{}, errors.New("s3blocks: blocks URL: give both access_key_id and secret_access_key, or neither")
	}
	if c.Endpoint != "" {
		if e, err := url.Parse(c.Endpoint); err != nil || (e.Scheme != "http" && e.Scheme != "https") || e.Host == "" {
			return Config{}, fmt.Errorf("s3blocks: endpoint=%q: want http(s)://host:port", c.Endpoint)
		}
	}
	return c, nil
}

// redact hides a secret in a URL for messages.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	q := u.Query()
	if q.Has("secret_access_key") {
		q.Set("secret_access_key", "REDACTED")
		u.RawQuery = q.Encode()
	}
	return u.String()
}

// Redact returns raw with its secret_access_key replaced, for logs.
func Redact(raw string) string { return redact(raw) }

// NewClient returns an S3 client for c. The SDK's own retries are off:
// the store retries with its own backoff (RetryFor). Request bodies are
// copied before they are sent (sdkhttp.CopyBodies).
func NewClient(ctx context.Context, c Config) (*s3.Client, error) {
	return newClient(ctx, c, (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext)
}

// newClient is NewClient dialling with dial.
func newClient(ctx context.Context, c Config, dial func(ctx context.Context, network, addr string) (net.Conn, error)) (*s3.Client, error) {
	hc := &http.Client{Transport: &http.Transport{
		Proxy:                 nil,
		DialContext:           dial,
		MaxIdleConns:          256,
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: 30 * time.Second,
		ExpectContinueTimeout: time.Second,
	}}
	var cfg aws.Config
	if c.AccessKeyID != "" {
		// Keys in the URL: nothing from the environment or shared files
		// (an AWS_PROFILE or a CA bundle meant for the aws CLI) applies.
		cfg = aws.Config{Region: c.Region, Credentials: credentials.NewStaticCredentialsProvider(c.AccessKeyID, c.SecretAccessKey, "")}
	} else {
		var err error
		if cfg, err = awsconfig.LoadDefaultConfig(ctx, awsconfig.WithRegion(c.Region)); err != nil {
			return nil, fmt.Errorf("s3blocks: client config: %w", err)
		}
	}
	// Bodies copied: without the copy, a CompleteMultipartUpload answered
	// while net/http's writer still held the SDK's body cost its kept-alive
	// connection or failed (sdkhttp's doc;
	// TestCompleteMultipartUploadKeepsConnection).
	cfg.HTTPClient = sdkhttp.CopyBodies(hc)
	cfg.Retryer = func() aws.Retryer { return aws.NopRetryer{} }
	return s3.NewFromConfig(cfg, func(o *s3.Options) {
		if c.Endpoint != "" {
			o.BaseEndpoint = aws.String(c.Endpoint)
		}
		o.UsePathStyle = c.PathStyle
		// Checksums only where the API requires them: S3-compatible
		// servers differ in their support of the newer trailers.
		o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
	}), nil
}

// EnsureBucket creates the bucket when it does not exist.
func EnsureBucket(ctx context.Context, cl *s3.Client, c Config) error {
	_, err := cl.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(c.Bucket)})
	if err == nil {
		return nil
	}
	var nf *types.NotFound
	var ae smithy.APIError
	if !errors.As(err, &nf) && !(errors.As(err, &ae) && (ae.ErrorCode() == "NoSuchBucket" || ae.ErrorCode() == "NotFound")) {
		return fmt.Errorf("s3blocks: bucket %s: %w", c.Bucket, err)
	}
	_, err = cl.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(c.Bucket)})
	var owned *types.BucketAlreadyOwnedByYou
	if err != nil && !errors.As(err, &owned) {
		return fmt.Errorf("s3blocks: create bucket %s: %w", c.Bucket, err)
	}
	return nil
}
