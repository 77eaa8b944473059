package replication

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"
)

// A rewind's pause before its resend (rewindPause) waits rewindGap, and
// ends at once, with the reason, when the stream fails or its context
// ends: it was a bare time.Sleep in the shipping loop, which neither
// ended. synctest's clock gives the exact time each took.
func TestRewindPauseEnds(t *testing.T) {
	failed := errors.New("stream failed")
	cases := []struct {
		name string
		end  func(cancel context.CancelFunc, s *stream)
		want error
		took time.Duration
	}{
		{"waits", func(context.CancelFunc, *stream) {}, nil, rewindGap},
		{"stream fails", func(_ context.CancelFunc, s *stream) { s.errc <- failed }, failed, 0},
		{"context ends", func(cancel context.CancelFunc, _ *stream) { cancel() }, context.Canceled, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ctx, cancel := context.WithCancel(t.Context())
				defer cancel()
				s := &stream{errc: make(chan error, 1)}
				start := time.Now()
				c.end(cancel, s)
				err := rewindPause(ctx, s)
				if !errors.Is(err, c.want) || (c.want == nil && err != nil) {
					t.Fatalf("rewindPause: %v, want %v", err, c.want)
				}
				if took := time.Since(start); took != c.took {
					t.Fatalf("rewindPause took %s, want %s", took, c.took)
				}
			})
		})
	}
}
