package testkit

import (
	"bytes"
	"context"
	"net"
	"time"
)

// DialFunc is http.Transport's DialContext.
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// HoldAfter returns dial whose connections hold a write that ends with
// tail (the last bytes of a request body, say) after it went out: the
// write returns only once release yields (receives a value, or is
// closed), so that a test can order what a connection's writer does next
// against the answer the peer already has.
func HoldAfter(dial DialFunc, tail []byte, release <-chan struct{}) DialFunc {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return holdAfter{Conn: c, tail: tail, release: release}, nil
	}
}

type holdAfter struct {
	net.Conn
	tail    []byte
	release <-chan struct{}
}

func (c holdAfter) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	if err == nil && bytes.HasSuffix(p, c.tail) {
		select {
		case <-c.release:
		case <-time.After(30 * time.Second): // a hang detector, not a timing
		}
	}
	return n, err
}
