package nfs

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/regionfs/regionfs/internal/engine"
	"github.com/regionfs/regionfs/internal/nfs/client"
	"github.com/regionfs/regionfs/internal/nfs/proto"
	"github.com/regionfs/regionfs/internal/nfs/rpc"
	"github.com/regionfs/regionfs/internal/nfs/tlsca"
	"github.com/regionfs/regionfs/internal/nfs/tlsca/tlscatest"
)

// tlsEnv is a server offering TLS with a certificate for 127.0.0.1 issued
// by a fresh CA.
func tlsEnv(t *testing.T, clientAuth tls.ClientAuthType, requireTLS bool) (*testEnv, *tlsca.CA) {
	t.Helper()
	ca, cert := tlscatest.Cert(t)
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12, ClientAuth: clientAuth, ClientCAs: ca.Pool()}
	v := newEnv(t, envOpt{opts: Options{TLS: cfg}, exports: func(fs *engine.FS) []Export {
		return []Export{{Path: "/", FS: fs, RequireTLS: requireTLS}}
	}})
	return v, ca
}

func mountAndWrite(t *testing.T, c *client.Conn) error {
	t.Helper()
	ctx := t.Context()
	cl := c.WithAuth(client.Unix("h", 0, 0))
	root, _, err := cl.Mount(ctx, "/")
	if err != nil {
		return err
	}
	res, err := cl.Create(ctx, root, "f", proto.Unchecked, proto.Sattr{})
	if err != nil {
		return err
	}
	if _, err := cl.Write(ctx, res.FH, 0, []byte("secret data"), proto.FileSync); err != nil {
		return err
	}
	rr, err := cl.Read(ctx, res.FH, 0, 100)
	if err != nil {
		return err
	}
	if string(rr.Data) != "secret data" {
		t.Fatalf("read %q", rr.Data)
	}
	return nil
}

func TestTLSProbeThenTLS(t *testing.T) {
	v, ca := tlsEnv(t, tls.NoClientCert, false)
	c, err := client.DialTLS(t.Context(), v.addr, &tls.Config{RootCAs: ca.Pool()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := mountAndWrite(t, c); err != nil {
		t.Fatal(err)
	}
}

// TestTLSDirect: a connection that starts with a ClientHello (stunnel, as
// efs-utils uses it) gets TLS without a probe.
func TestTLSDirect(t *testing.T) {
	v, ca := tlsEnv(t, tls.NoClientCert, false)
	tc, err := tls.Dial("tcp", v.addr, &tls.Config{RootCAs: ca.Pool(), ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	if p := tc.ConnectionState().NegotiatedProtocol; p != ALPNSunRPC && p != "" {
		t.Errorf("ALPN %q", p)
	}
	c := client.NewConn(tc)
	defer c.Close()
	if err := mountAndWrite(t, c); err != nil {
		t.Fatal(err)
	}
}

func TestTLSWrongCARefused(t *testing.T) {
	v, _ := tlsEnv(t, tls.NoClientCert, false)
	other, _, err := tlsca.New("other")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.DialTLS(t.Context(), v.addr, &tls.Config{RootCAs: other.Pool()}); err == nil {
		t.Fatal("a server certificate from an unknown CA was accepted")
	}
	// The server survives the failed handshake.
	c, err := client.Dial(t.Context(), v.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.WithAuth(rpc.OpaqueAuth{}).Null(t.Context(), proto.ProgNFS, proto.VersNFS); err != nil {
		t.Fatal(err)
	}
}

func TestTLSRequiredByExport(t *testing.T) {
	v, ca := tlsEnv(t, tls.NoClientCert, true)
	// Plain text: MOUNT refused with MNT3ERR_ACCES.
	c, err := client.Dial(t.Context(), v.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cl := c.WithAuth(client.Unix("h", 0, 0))
	if _, _, err := cl.Mount(t.Context(), "/"); !errors.Is(err, proto.MountErrAcces) {
		t.Fatalf("plain-text MOUNT of a TLS-only export: %v, want MNT3ERR_ACCES", err)
	}
	// A handle obtained over TLS is refused on a plain-text connection.
	tc, err := client.DialTLS(t.Context(), v.addr, &tls.Config{RootCAs: ca.Pool()})
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	if err := mountAndWrite(t, tc); err != nil {
		t.Fatal(err)
	}
	root, _, err := tc.WithAuth(client.Unix("h", 0, 0)).Mount(t.Context(), "/")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cl.GetAttr(t.Context(), root); !errors.Is(err, proto.ErrAcces) {
		t.Fatalf("plain-text GETATTR with a TLS-only handle: %v, want NFS3ERR_ACCES", err)
	}
}

func TestTLSMutual(t *testing.T) {
	v, ca := tlsEnv(t, tls.RequireAndVerifyClientCert, false)
	if c, err := client.DialTLS(t.Context(), v.addr, &tls.Config{RootCAs: ca.Pool()}); err == nil {
		// TLS 1.3: the client learns of the refusal at its first read.
		err = c.WithAuth(rpc.OpaqueAuth{}).Null(t.Context(), proto.ProgNFS, proto.VersNFS)
		c.Close()
		if err == nil {
			t.Fatal("a client without a certificate was served under mutual TLS")
		}
	}
	cert, err := ca.Issue(tlsca.Request{CommonName: "client-1", Client: true})
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.DialTLS(t.Context(), v.addr, &tls.Config{RootCAs: ca.Pool(), Certificates: []tls.Certificate{cert}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := mountAndWrite(t, c); err != nil {
		t.Fatal(err)
	}
}

// TestTLSProbeWithoutTLS: a server without TLS answers the probe with
// AUTH_ERROR and keeps serving plain text on the connection.
func TestTLSProbeWithoutTLS(t *testing.T) {
	v := newEnv(t, envOpt{})
	nc, err := net.Dial("tcp", v.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if _, err := client.StartTLS(ctx, nc, &tls.Config{ServerName: "127.0.0.1"}); !errors.Is(err, client.ErrNoTLS) {
		t.Fatalf("probe of a plain server: %v, want ErrNoTLS", err)
	}
	c := client.NewConn(nc)
	if err := c.WithAuth(rpc.OpaqueAuth{}).Null(ctx, proto.ProgNFS, proto.VersNFS); err != nil {
		t.Fatalf("plain text after a refused probe: %v", err)
	}
}

// TestWriteDataSentInPieces: a WRITE's data leaves as it lies, after its
// encoded head and before its padding (no copy); over TLS the pieces are
// packed into TLS records. Sizes around the copy limit and the TLS record
// size, with every padding length, read back equal, plain and over TLS.
func TestWriteDataSentInPieces(t *testing.T) {
	v, ca := tlsEnv(t, tls.NoClientCert, false)
	ctx := t.Context()
	for _, useTLS := range []bool{false, true} {
		var c *client.Conn
		var err error
		if useTLS {
			c, err = client.DialTLS(ctx, v.addr, &tls.Config{RootCAs: ca.Pool()})
		} else {
			c, err = client.Dial(ctx, v.addr)
		}
		if err != nil {
			t.Fatal(err)
		}
		cl := c.WithAuth(client.Unix("h", 0, 0))
		root, _, err := cl.Mount(ctx, "/")
		if err != nil {
			t.Fatal(err)
		}
		for _, size := range []int{5, 16<<10 - 1, 16 << 10, 16<<10 + 1, 16<<10 + 2, 16<<10 + 3, 48<<10 + 7, 1<<20 - 2, 1 << 20} {
			res, err := cl.Create(ctx, root, fmt.Sprintf("f-%v-%d", useTLS, size), proto.Unchecked, proto.Sattr{})
			if err != nil {
				t.Fatal(err)
			}
			data := make([]byte, size)
			for i := range data {
				data[i] = byte(i*7 + size)
			}
			// Two calls in flight at once on the connection.
			errs := make(chan error, 2)
			for half := range 2 {
				go func() {
					lo, hi := half*size/2, (half+1)*size/2
					if half == 1 {
						hi = size
					}
					wr, err := cl.Write(ctx, res.FH, uint64(lo), data[lo:hi], proto.FileSync)
					if err == nil && int(wr.Count) != hi-lo {
						err = fmt.Errorf("wrote %d of %d", wr.Count, hi-lo)
					}
					errs <- err
				}()
			}
			for range 2 {
				if err := <-errs; err != nil {
					t.Fatalf("tls=%v size %d: %v", useTLS, size, err)
				}
			}
			var got []byte
			for len(got) < size {
				rr, err := cl.Read(ctx, res.FH, uint64(len(got)), 1<<20)
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, rr.Data...)
				if rr.EOF || len(rr.Data) == 0 {
					break
				}
			}
			if !bytes.Equal(got, data) {
				t.Fatalf("tls=%v size %d: read back %d bytes, not what was written", useTLS, size, len(got))
			}
		}
		c.Close()
	}
}
