package main

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"testing"

	"github.com/regionfs/regionfs/internal/nfs"
	"github.com/regionfs/regionfs/internal/nfs/client"
	"github.com/regionfs/regionfs/internal/nfs/proto"
	"github.com/regionfs/regionfs/internal/nfs/rpc"
	"github.com/regionfs/regionfs/internal/nfs/tlsca/tlscatest"
	"github.com/regionfs/regionfs/internal/serve"
)

// TestDrillDialUnderCertRequired: under nfs.tls_client_auth: require,
// mount targets refuse plain text, and the drill's probe connects with
// NFS over TLS and a certificate of the region's CA (certDial).
func TestDrillDialUnderCertRequired(t *testing.T) {
	ca, cert := tlscatest.Cert(t)
	srv := nfs.NewServer(nfs.Options{TLS: &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12,
		ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: ca.Pool()}})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	run := serve.Start(context.Background(), srv, ln)
	t.Cleanup(func() { run.Stop(context.Background()) })
	for _, tc := range []struct {
		name string
		dial func(ctx context.Context, network, addr string) (net.Conn, error)
		ok   bool
	}{{"plain", (&net.Dialer{}).DialContext, false}, {"certDial", certDial(ca), true}} {
		nc, err := tc.dial(t.Context(), "tcp", ln.Addr().String())
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		c := client.NewConn(nc)
		err = c.WithAuth(rpc.OpaqueAuth{}).Null(t.Context(), proto.ProgNFS, proto.VersNFS)
		c.Close()
		var re *rpc.ReplyError
		switch {
		case tc.ok && err != nil:
			t.Errorf("%s: NULL: %v", tc.name, err)
		case !tc.ok && !(errors.As(err, &re) && re.AuthStat == rpc.AuthTooWeak):
			t.Errorf("%s: NULL: %v, want AUTH_TOOWEAK", tc.name, err)
		}
	}
}
