package replication

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"testing"
)

// TestChannelAuthenticated pins which streams may skip the keyed hash of
// pushed blocks (putBlock): TLS, or a cleartext connection whose two ends
// are loopback addresses; never a cleartext connection with one end
// elsewhere, nor one whose local address is unknown.
func TestChannelAuthenticated(t *testing.T) {
	tcp := func(s string) net.Addr {
		a, err := net.ResolveTCPAddr("tcp", s)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	for _, tc := range []struct {
		name          string
		remote        string
		local         net.Addr // nil: not in the request's context
		tls           *tls.ConnectionState
		authenticated bool
	}{
		{"loopback v4", "127.0.0.1:40000", tcp("127.0.0.1:7000"), nil, true},
		{"loopback v6", "[::1]:40000", tcp("[::1]:7000"), nil, true},
		{"loopback v4 in v6", "[::ffff:127.0.0.1]:40000", tcp("127.0.0.1:7000"), nil, true},
		{"remote peer to a public address", "192.0.2.7:40000", tcp("198.51.100.1:7000"), nil, false},
		{"remote peer to a loopback listener", "192.0.2.7:40000", tcp("127.0.0.1:7000"), nil, false},
		{"same host through a public address", "198.51.100.1:40000", tcp("198.51.100.1:7000"), nil, false},
		{"loopback peer, local address unknown", "127.0.0.1:40000", nil, nil, false},
		{"bad remote address", "localhost", tcp("127.0.0.1:7000"), nil, false},
		{"TLS from anywhere", "192.0.2.7:40000", tcp("198.51.100.1:7000"), &tls.ConnectionState{HandshakeComplete: true}, true},
		{"TLS handshake not complete", "192.0.2.7:40000", tcp("198.51.100.1:7000"), &tls.ConnectionState{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			if tc.local != nil {
				ctx = context.WithValue(ctx, http.LocalAddrContextKey, tc.local)
			}
			r, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://x/replication/v1/stream", nil)
			if err != nil {
				t.Fatal(err)
			}
			r.RemoteAddr, r.TLS = tc.remote, tc.tls
			if got := channelAuthenticated(r); got != tc.authenticated {
				t.Fatalf("channelAuthenticated = %v, want %v", got, tc.authenticated)
			}
		})
	}
}
