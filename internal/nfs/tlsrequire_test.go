package nfs

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/regionfs/regionfs/internal/engine"
	"github.com/regionfs/regionfs/internal/nfs/client"
	"github.com/regionfs/regionfs/internal/nfs/proto"
	"github.com/regionfs/regionfs/internal/nfs/rpc"
	"github.com/regionfs/regionfs/internal/nfs/tlsca"
	"github.com/regionfs/regionfs/internal/nfs/tlsca/tlscatest"
	"github.com/regionfs/regionfs/internal/testkit"
)

// TestPlainTextRefusedWhenCertRequired: with client certificates required
// (nfs.tls_client_auth: require), a plain-text client, which presents
// none, is refused: its first call is answered AUTH_ERROR AUTH_TOOWEAK,
// the connection closed, and the log says why, once a second at most.
// nfs-ls (libnfs, plain text) fails. Before, plain text was served: the
// setting bound only NFS-over-TLS clients, unless the file system's policy
// required aws:SecureTransport. A client with a certificate is served.
func TestPlainTextRefusedWhenCertRequired(t *testing.T) {
	nfsLs := testkit.NeedTool(t, "nfs-ls")
	ca, cert := tlscatest.Cert(t)
	var logs testkit.Buffer
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: ca.Pool()}
	v := newEnv(t, envOpt{opts: Options{TLS: cfg}, exports: func(fs *engine.FS) []Export { return []Export{{Path: "/", FS: fs}} },
		log: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})

	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, nfsLs, v.libnfsURL("/")).CombinedOutput()
	if err == nil {
		t.Fatalf("nfs-ls in plain text was served: %s", out)
	}
	t.Logf("nfs-ls: %v: %s", err, strings.TrimSpace(string(out)))

	const n = 50
	start := time.Now()
	for range n {
		c, err := client.Dial(t.Context(), v.addr)
		if err != nil {
			t.Fatal(err)
		}
		err = c.WithAuth(rpc.OpaqueAuth{}).Null(t.Context(), proto.ProgNFS, proto.VersNFS)
		c.Close()
		var re *rpc.ReplyError
		if !errors.As(err, &re) || re.Accepted || re.AuthStat != rpc.AuthTooWeak {
			t.Fatalf("plain-text NULL: %v, want AUTH_ERROR AUTH_TOOWEAK", err)
		}
	}
	elapsed := time.Since(start)
	const msg = `msg="nfs plain-text client refused: client certificates are required (nfs.tls_client_auth: require)`
	lines := strings.Count(logs.String(), msg)
	if limit := 2 + int(elapsed/refusalLogEvery); lines < 1 || lines > limit {
		t.Fatalf("%d plain-text clients in %s logged %d lines, want 1..%d:\n%s", n+1, elapsed, lines, limit, logs.String())
	}

	cc, err := ca.Issue(tlsca.Request{CommonName: "client-1", Client: true})
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.DialTLS(t.Context(), v.addr, &tls.Config{RootCAs: ca.Pool(), Certificates: []tls.Certificate{cc}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := mountAndWrite(t, c); err != nil {
		t.Fatal(err)
	}
}
