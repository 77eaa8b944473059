// Package tlscatest gives tests of NFS over TLS a fresh CA, a server
// certificate for 127.0.0.1 and a loopback listener (the rpc and client
// packages' tests each had their own copy).
package tlscatest

import (
	"crypto/tls"
	"net"
	"net/netip"
	"testing"

	"github.com/regionfs/regionfs/internal/nfs/tlsca"
)

// Cert returns a fresh CA and a server certificate it issued for
// 127.0.0.1.
func Cert(tb testing.TB) (*tlsca.CA, tls.Certificate) {
	tb.Helper()
	ca, _, err := tlsca.New("test")
	if err != nil {
		tb.Fatal(err)
	}
	cert, err := ca.Issue(tlsca.Request{CommonName: "s", IPs: []netip.Addr{netip.MustParseAddr("127.0.0.1")}})
	if err != nil {
		tb.Fatal(err)
	}
	return ca, cert
}

// Listener is Cert and a loopback listener, closed when the test ends.
func Listener(tb testing.TB) (*tlsca.CA, tls.Certificate, net.Listener) {
	tb.Helper()
	ca, cert := Cert(tb)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { ln.Close() })
	return ca, cert, ln
}
