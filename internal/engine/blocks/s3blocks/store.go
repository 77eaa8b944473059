package s3blocks

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/regionfs/regionfs/internal/engine/blocks"
)

// ErrUnavailable: the object store did not answer within RetryFor.
var ErrUnavailable = errors.New("s3blocks: object store unavailable")

// Defaults.
const (
	DefaultMultipartThreshold = 16 << 20
	DefaultPartSize           = 5 << 20 // the S3 minimum for all but the last part
	DefaultConcurrency        = 4
	DefaultRetryFor           = 2 * time.Minute
)

// Options configure a Store.
type Options struct {
	Client *s3.Client
	// Config names the bucket and its key prefix, multipart and retry
	// settings (zero values take the defaults).
	Config Config
	// Prefix is appended to Config.Prefix: one store per block domain.
	Prefix string
	Keys   blocks.Keys
	// Cache is the node's local read cache; nil: none.
	Cache  *Cache
	Logger *slog.Logger
	// Stopping, when closed (a process shutting down that has waited
	// long enough), ends the retries: an operation that cannot reach the
	// object store fails at once with ErrUnavailable instead of waiting
	// RetryFor for it.
	Stopping <-chan struct{}
}

// Store is a blocks.Store in an S3 bucket.
type Store struct {
	c      *s3.Client
	bucket string
	prefix string
	keys   blocks.Keys
	cache  *Cache
	log    *slog.Logger

	threshold, partSize int64
	concurrency         int
	retryFor            time.Duration
	stopping            <-chan struct{}

	puts, putBytes, gets, getBytes, deletes, corrupt atomic.Uint64
}

var _ blocks.Store = (*Store)(nil)

// New returns a store; it does not contact the object store.
func New(o Options) (*Store, error) {
	if o.Client == nil || o.Config.Bucket == "" || o.Keys.Hasher == nil {
		return nil, errors.New("s3blocks: Client, Config.Bucket and Keys.Hasher are required")
	}
	p := o.Config.Prefix + o.Prefix
	if p != "" && !strings.HasSuffix(p, "/") {
		p += "/"
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Store{
		c: o.Client, bucket: o.Config.Bucket, prefix: p, keys: o.Keys, cache: o.Cache, log: log,
		threshold:   cmp.Or(o.Config.MultipartThreshold, DefaultMultipartThreshold),
		partSize:    cmp.Or(o.Config.PartSize, DefaultPartSize),
		concurrency: cmp.Or(o.Config.Concurrency, DefaultConcurrency),
		retryFor:    cmp.Or(o.Config.RetryFor, DefaultRetryFor),
		stopping:    o.Stopping,
	}, nil
}

func (s *Store) key(id blocks.ID) string {
	h := id.String()
	return s.prefix + h[2:4] + "/" + h
}

// cacheName names id's copy in the shared cache: bucket and key.
func (s *Store) cacheName(id blocks.ID) string { return s.bucket + "/" + s.key(id) }

// retriable reports whether err may pass when tried again.
func retriable(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) {
		if c := re.HTTPStatusCode(); c >= 500 || c == 429 || c == 408 {
			return true
		}
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "SlowDown", "RequestTimeout", "InternalError", "ServiceUnavailable", "RequestTimeTooSkewed", "Throttling":
			return true
		}
		if errors.As(err, &re) { // an answered request with a 4xx: final
			return false
		}
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return true
	}
	var oe *net.OpError
	return errors.As(err, &oe) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) ||
		strings.Contains(err.Error(), "connection reset") || strings.Contains(err.Error(), "connection refused")
}

// retry runs f until it succeeds, fails for good, ctx ends, RetryFor has
// passed since the first failure or Options.Stopping is closed.
func (s *Store) retry(ctx context.Context, op string, id blocks.ID, f func(ctx context.Context) error) error {
	var first time.Time
	delay := 100 * time.Millisecond
	for attempt := 0; ; attempt++ {
		err := f(ctx)
		if err == nil || !retriable(err) {
			if err == nil && attempt > 0 {
				s.log.Info("object store reachable again", "op", op, "block", id, "attempts", attempt+1, "after", time.Since(first).Round(time.Millisecond))
			}
			return err
		}
		if first.IsZero() {
			first = time.Now()
			s.log.Warn("object store unreachable; retrying", "op", op, "block", id, "bucket", s.bucket, "err", err)
		}
		if time.Since(first) > s.retryFor {
			return fmt.Errorf("%w: %s block %s in bucket %s: no answer for %v: %w", ErrUnavailable, op, id, s.bucket, s.retryFor, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: %s block %s: %w (last error: %w)", ErrUnavailable, op, id, ctx.Err(), err)
		case <-s.stopping:
			return fmt.Errorf("%w: %s block %s: not retried while stopping: %w", ErrUnavailable, op, id, err)
		case <-time.After(delay):
		}
		delay = min(delay*2, 5*time.Second)
	}
}

func notFound(err error) bool {
	var nsk *types.NoSuchKey
	var nf *types.NotFound
	if errors.As(err, &nsk) || errors.As(err, &nf) {
		return true
	}
	var re *smithyhttp.ResponseError
	return errors.As(err, &re) && re.HTTPStatusCode() == 404
}

// Has reports whether id is stored (it always asks the object store).
func (s *Store) Has(ctx context.Context, id blocks.ID) (bool, error) {
	var ok bool
	err := s.retry(ctx, "stat", id, func(ctx context.Context) error {
		_, err := s.c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &s.bucket, Key: aws.String(s.key(id))})
		if notFound(err) {
			ok = false
			return nil
		}
		ok = err == nil
		return err
	})
	if err != nil {
		return false, fmt.Errorf("s3blocks: stat %s: %w", id, err)
	}
	return ok, nil
}

// Put stores data under id unless it is present; it returns once the
// object store acknowledged the object.
func (s *Store) Put(ctx context.Context, id blocks.ID, data []byte) error {
	ok, err := s.Has(ctx, id)
	if err != nil {
		return err
	}
	if ok {
		return nil
	}
	hdr, payload, err := blocks.Encode(s.keys, id, data)
	if err != nil {
		return err
	}
	// One contiguous object: SigV4 hashes the body, which must be
	// seekable.
	obj := make([]byte, 0, len(hdr)+len(payload))
	obj = append(append(obj, hdr...), payload...)
	if int64(len(obj)) > s.threshold {
		err = s.putMultipart(ctx, id, obj)
	} else {
		err = s.retry(ctx, "put", id, func(ctx context.Context) error {
			_, err := s.c.PutObject(ctx, &s3.PutObjectInput{
				Bucket: &s.bucket, Key: aws.String(s.key(id)),
				Body: bytes.NewReader(obj), ContentLength: aws.Int64(int64(len(obj))),
			})
			return err
		})
	}
	if err != nil {
		return fmt.Errorf("s3blocks: put %s: %w", id, err)
	}
	s.cache.put(s.cacheName(id), obj)
	s.puts.Add(1)
	s.putBytes.Add(uint64(len(data)))
	return nil
}

// putMultipart uploads obj in parts of partSize, concurrency at a time;
// on failure the upload is aborted.
func (s *Store) putMultipart(ctx context.Context, id blocks.ID, obj []byte) error {
	key := aws.String(s.key(id))
	var upload *string
	err := s.retry(ctx, "start multipart upload of", id, func(ctx context.Context) error {
		out, err := s.c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &s.bucket, Key: key})
		if err == nil {
			upload = out.UploadId
		}
		return err
	})
	if err != nil {
		return err
	}
	n := (int64(len(obj)) + s.partSize - 1) / s.partSize
	parts := make([]types.CompletedPart, n)
	errs := make([]error, n)
	sem := make(chan struct{}, s.concurrency)
	var wg sync.WaitGroup
	pctx, cancel := context.WithCancel(ctx)
	for i := range n {
		lo, hi := i*s.partSize, min((i+1)*s.partSize, int64(len(obj)))
		num := int32(i + 1)
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			errs[i] = s.retry(pctx, fmt.Sprintf("upload part %d of", num), id, func(ctx context.Context) error {
				out, err := s.c.UploadPart(ctx, &s3.UploadPartInput{
					Bucket: &s.bucket, Key: key, UploadId: upload, PartNumber: aws.Int32(num),
					Body: bytes.NewReader(obj[lo:hi]), ContentLength: aws.Int64(hi - lo),
				})
				if err == nil {
					parts[i] = types.CompletedPart{ETag: out.ETag, PartNumber: aws.Int32(num)}
				}
				return err
			})
			if errs[i] != nil {
				cancel()
			}
		}()
	}
	wg.Wait()
	cancel()
	if err := errors.Join(errs...); err != nil {
		s.abort(key, upload)
		return err
	}
	err = s.retry(ctx, "complete multipart upload of", id, func(ctx context.Context) error {
		_, err := s.c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
			Bucket: &s.bucket, Key: key, UploadId: upload,
			MultipartUpload: &types.CompletedMultipartUpload{Parts: parts},
		})
		return err
	})
	if err != nil {
		s.abort(key, upload)
	}
	return err
}

func (s *Store) abort(key, upload *string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := s.c.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: &s.bucket, Key: key, UploadId: upload}); err != nil {
		s.log.Warn("abort multipart upload", "key", *key, "err", err)
	}
}

// Sync does nothing: an acknowledged PUT is durable.
func (s *Store) Sync(context.Context) error { return nil }

// Get reads a block through the cache and verifies it.
func (s *Store) Get(ctx context.Context, id blocks.ID) ([]byte, error) {
	name := s.cacheName(id)
	if raw, ok := s.cache.get(name); ok {
		if data, err := blocks.Decode(s.keys, id, raw); err == nil {
			s.gets.Add(1)
			s.getBytes.Add(uint64(len(data)))
			return data, nil
		}
		s.log.Warn("damaged cached block dropped", "block", id)
		s.cache.drop(name)
	}
	var raw []byte
	err := s.retry(ctx, "get", id, func(ctx context.Context) error {
		out, err := s.c.GetObject(ctx, &s3.GetObjectInput{Bucket: &s.bucket, Key: aws.String(s.key(id))})
		if err != nil {
			return err
		}
		defer out.Body.Close()
		var buf bytes.Buffer
		if out.ContentLength != nil && *out.ContentLength > 0 {
			buf.Grow(int(*out.ContentLength))
		}
		if _, err := buf.ReadFrom(out.Body); err != nil {
			return err
		}
		raw = buf.Bytes()
		return nil
	})
	if notFound(err) {
		return nil, fmt.Errorf("%w: %s", blocks.ErrNotFound, id)
	}
	if err != nil {
		return nil, fmt.Errorf("s3blocks: get %s: %w", id, err)
	}
	data, err := blocks.Decode(s.keys, id, raw)
	if err != nil {
		s.corrupt.Add(1)
		return nil, err
	}
	s.cache.put(name, raw)
	s.gets.Add(1)
	s.getBytes.Add(uint64(len(data)))
	return data, nil
}

// Delete removes a block (absent is fine) and its cached copy.
func (s *Store) Delete(ctx context.Context, id blocks.ID) error {
	s.cache.drop(s.cacheName(id))
	err := s.retry(ctx, "delete", id, func(ctx context.Context) error {
		_, err := s.c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &s.bucket, Key: aws.String(s.key(id))})
		if notFound(err) {
			return nil
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("s3blocks: delete %s: %w", id, err)
	}
	s.deletes.Add(1)
	return nil
}

// Walk lists the stored ids (objects under the prefix whose names are ids).
func (s *Store) Walk(ctx context.Context, fn func(blocks.ID) error) error {
	var token *string
	for {
		var out *s3.ListObjectsV2Output
		err := s.retry(ctx, "list", blocks.ID{}, func(ctx context.Context) error {
			var err error
			out, err = s.c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{
				Bucket: &s.bucket, Prefix: aws.String(s.prefix), ContinuationToken: token,
			})
			return err
		})
		if err != nil {
			return fmt.Errorf("s3blocks: list %s/%s: %w", s.bucket, s.prefix, err)
		}
		for _, o := range out.Contents {
			k := aws.ToString(o.Key)
			if strings.Count(strings.TrimPrefix(k, s.prefix), "/") != 1 {
				continue // another domain's prefix below ours
			}
			id, err := blocks.ParseID(path.Base(k))
			if err != nil {
				continue
			}
			if err := fn(id); err != nil {
				return err
			}
		}
		if !aws.ToBool(out.IsTruncated) || out.NextContinuationToken == nil {
			return nil
		}
		token = out.NextContinuationToken
	}
}

// RemoveTemps aborts the unfinished multipart uploads of blocks under the
// prefix (those of a writer that died mid-upload: their parts are stored,
// and billed, until aborted) and reports how many. The engine calls it
// while no writer of the store's domain runs.
func (s *Store) RemoveTemps(ctx context.Context) (int, error) {
	n := 0
	var keyMarker, uploadMarker *string
	for {
		var out *s3.ListMultipartUploadsOutput
		err := s.retry(ctx, "list multipart uploads", blocks.ID{}, func(ctx context.Context) error {
			var err error
			out, err = s.c.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{
				Bucket: &s.bucket, Prefix: aws.String(s.prefix), KeyMarker: keyMarker, UploadIdMarker: uploadMarker,
			})
			return err
		})
		if err != nil {
			return n, fmt.Errorf("s3blocks: list multipart uploads %s/%s: %w", s.bucket, s.prefix, err)
		}
		for _, u := range out.Uploads {
			k := aws.ToString(u.Key)
			if strings.Count(strings.TrimPrefix(k, s.prefix), "/") != 1 {
				continue // another domain's prefix below ours
			}
			if _, err := blocks.ParseID(path.Base(k)); err != nil {
				continue
			}
			err := s.retry(ctx, "abort multipart upload", blocks.ID{}, func(ctx context.Context) error {
				_, err := s.c.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: &s.bucket, Key: u.Key, UploadId: u.UploadId})
				if notFound(err) {
					return nil
				}
				return err
			})
			if err != nil {
				return n, fmt.Errorf("s3blocks: abort multipart upload of %s: %w", k, err)
			}
			n++
		}
		if !aws.ToBool(out.IsTruncated) || (out.NextKeyMarker == nil && out.NextUploadIdMarker == nil) {
			return n, nil
		}
		keyMarker, uploadMarker = out.NextKeyMarker, out.NextUploadIdMarker
	}
}

// Stats returns the store's counters.
func (s *Store) Stats() blocks.Stats {
	return blocks.Stats{
		Puts: s.puts.Load(), PutBytes: s.putBytes.Load(), Gets: s.gets.Load(), GetBytes: s.getBytes.Load(),
		Deletes: s.deletes.Load(), CorruptReads: s.corrupt.Load(),
	}
}
