package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	"github.com/aws/aws-sdk-go-v2/service/efs"

	"github.com/regionfs/regionfs/internal/sdkhttp"
)

// opsClient is how the operator commands (status, failover, failback) reach
// regionfs: the public EFS API with SigV4, credentials, region and endpoint
// taken from the environment like the aws CLI does (after `. env.sh`).
type opsClient struct {
	cfg      aws.Config
	efs      *efs.Client
	endpoint string
	http     *http.Client
}

// envHint says where the environment of the operator commands comes from.
const envHint = "for regionfs dev: . regionfs-data/env.sh; for serve: export AWS_ACCESS_KEY_ID, " +
	"AWS_SECRET_ACCESS_KEY (a credential of the region config), AWS_REGION and AWS_ENDPOINT_URL_EFS (the edge or the region's api.listen)"

func newOpsClient(ctx context.Context, region, endpoint string) (*opsClient, error) {
	// regionfs is never reached with EC2 instance credentials: without the
	// metadata service a missing credential is reported at once instead of
	// after the SDK's 8 s of IMDS retries.
	opts := []func(*awsconfig.LoadOptions) error{awsconfig.WithEC2IMDSClientEnableState(imds.ClientDisabled)}
	if region != "" {
		opts = append(opts, awsconfig.WithRegion(region))
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("AWS configuration: %w (%s)", err, envHint)
	}
	if cfg.Region == "" {
		return nil, fmt.Errorf("no region: set AWS_REGION or pass --region (%s)", envHint)
	}
	if endpoint == "" {
		endpoint = firstNonEmpty(os.Getenv("AWS_ENDPOINT_URL_EFS"), os.Getenv("AWS_ENDPOINT_URL"))
	}
	if endpoint == "" {
		return nil, fmt.Errorf("no endpoint: set AWS_ENDPOINT_URL_EFS or pass --endpoint (%s)", envHint)
	}
	if _, err := cfg.Credentials.Retrieve(ctx); err != nil {
		return nil, fmt.Errorf("no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (%s)", envHint)
	}
	endpoint = strings.TrimRight(endpoint, "/")
	// The SDK closes a request's body when the answer's headers arrive,
	// which can make net/http drop the connection (sdkhttp): every client
	// made from cfg (efs, ec2, cloudwatch, inRegion's) sends copies.
	cfg.HTTPClient = sdkhttp.CopyBodies(cfg.HTTPClient)
	c := &opsClient{cfg: cfg, endpoint: endpoint, http: &http.Client{Timeout: 2 * time.Minute}}
	c.efs = efs.NewFromConfig(cfg, func(o *efs.Options) { o.BaseEndpoint = aws.String(endpoint) })
	return c, nil
}

// inRegion is c for another region at the same endpoint (the edge
// forwards by the region the request is signed for).
func (c *opsClient) inRegion(region string) *opsClient {
	cfg := c.cfg.Copy()
	cfg.Region = region
	o := &opsClient{cfg: cfg, endpoint: c.endpoint, http: c.http}
	o.efs = efs.NewFromConfig(cfg, func(eo *efs.Options) { eo.BaseEndpoint = aws.String(c.endpoint) })
	return o
}

func firstNonEmpty(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}

// apiError is an AWS error answer of a raw call.
type apiError struct {
	Status  int
	Code    string
	Message string
}

func (e *apiError) Error() string { return e.Code + ": " + e.Message }

// call makes a SigV4-signed REST-JSON call to one of regionfs's own
// operations (under /2015-02-01/regionfs/).
func (c *opsClient) call(ctx context.Context, method, path string, query url.Values, in, out any) error {
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return err
		}
	}
	u := c.endpoint + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, bytes.NewReader(body))
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	creds, err := c.cfg.Credentials.Retrieve(ctx)
	if err != nil {
		return fmt.Errorf("credentials: %w", err)
	}
	sum := sha256.Sum256(body)
	if err := v4.NewSigner().SignHTTP(ctx, creds, req, hex.EncodeToString(sum[:]), "elasticfilesystem", c.cfg.Region, time.Now()); err != nil {
		return err
	}
	res, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	rb, err := io.ReadAll(io.LimitReader(res.Body, 64<<20))
	if err != nil {
		return err
	}
	if res.StatusCode/100 != 2 {
		e := &apiError{Status: res.StatusCode, Code: res.Header.Get("x-amzn-ErrorType")}
		var m struct{ Message, message string }
		json.Unmarshal(rb, &m)
		e.Message = firstNonEmpty(m.Message, m.message, strings.TrimSpace(string(rb)), res.Status)
		if i := strings.IndexByte(e.Code, ':'); i >= 0 {
			e.Code = e.Code[:i]
		}
		if e.Code == "" {
			e.Code = fmt.Sprint(res.StatusCode)
		}
		return e
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(rb, out)
}

// epochTime is an EFS timestamp (epoch seconds, a JSON number).
type epochTime struct{ time.Time }

func (t *epochTime) UnmarshalJSON(b []byte) error {
	var f float64
	if err := json.Unmarshal(b, &f); err != nil {
		return err
	}
	sec := int64(f)
	t.Time = time.Unix(sec, int64((f-float64(sec))*1e9)).UTC()
	return nil
}

// MarshalJSON writes epoch seconds, as the API does.
func (t epochTime) MarshalJSON() ([]byte, error) {
	return []byte(strconv.FormatFloat(float64(t.UnixNano())/1e9, 'f', -1, 64)), nil
}

func (t *epochTime) String() string {
	if t == nil || t.IsZero() {
		return "-"
	}
	return t.Local().Format("2006-01-02 15:04:05.000")
}
