package nfs

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"testing"
	"time"

	"github.com/regionfs/regionfs/internal/engine"
	"github.com/regionfs/regionfs/internal/nfs/proto"
	"github.com/regionfs/regionfs/internal/nfs/rpc"
	"github.com/regionfs/regionfs/internal/nfs/tlsca/tlscatest"
)

// TestShutdownEndsHandshakes: Shutdown does not wait for a TLS handshake
// to time out. A client that stops in the middle of one (after the
// AUTH_TLS probe, or after the first bytes of a ClientHello on a
// connection that starts with TLS) holds nothing up: with a handshake
// timeout of an hour, Shutdown with a context that never expires returns.
func TestShutdownEndsHandshakes(t *testing.T) {
	for _, tc := range []struct {
		name  string
		start func(t *testing.T, r *rawConn)
	}{
		{"after the probe", func(t *testing.T, r *rawConn) {
			r.send(rawCall(1, proto.ProgNFS, proto.VersNFS, 0, rpc.OpaqueAuth{Flavor: rpc.AuthTLS}, nil))
			rec := r.reply()
			if vf, ok := rpc.ParseReplyVerifier(rec); !ok || string(vf.Body) != rpc.StartTLS || binary.BigEndian.Uint32(rec) != 1 {
				t.Fatalf("probe reply %x", rec)
			}
			r.send([]byte{tlsHandshakeRecord, 3, 1}) // a ClientHello's first bytes
		}},
		{"after the probe, nothing sent", func(t *testing.T, r *rawConn) {
			r.send(rawCall(1, proto.ProgNFS, proto.VersNFS, 0, rpc.OpaqueAuth{Flavor: rpc.AuthTLS}, nil))
			r.reply()
		}},
		{"TLS from the start", func(t *testing.T, r *rawConn) {
			r.send([]byte{tlsHandshakeRecord, 3, 1})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, cert := tlscatest.Cert(t)
			cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
			v := newEnv(t, envOpt{opts: Options{TLS: cfg, HandshakeTimeout: time.Hour, IdleTimeout: time.Hour},
				exports: func(fs *engine.FS) []Export { return []Export{{Path: "/", FS: fs}} }})
			r := v.rawDial(t)
			tc.start(t, r)
			// The server is reading the handshake, or about to: either
			// way Shutdown must end it.
			srv := v.srv
			done := make(chan error, 1)
			go func() { done <- srv.Shutdown(context.Background()) }()
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("shutdown: %v", err)
				}
			case <-time.After(time.Minute):
				t.Fatal("Shutdown still waiting after a minute for a connection in a TLS handshake (HandshakeTimeout is an hour)")
			}
		})
	}
}
