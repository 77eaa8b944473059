package nfs

import (
	"bytes"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/regionfs/regionfs/internal/nfs/client"
	"github.com/regionfs/regionfs/internal/nfs/proto"
	"github.com/regionfs/regionfs/internal/nfs/rpc"
	"github.com/regionfs/regionfs/internal/nfs/tlsca/tlscatest"
	"github.com/regionfs/regionfs/internal/testkit"
)

// TestTLSProbeAfterPipelinedCalls: a client that sends plain calls and
// its AUTH_TLS probe in one write (RFC 9289 §4.1) gets every earlier
// call's reply in plain text, then the probe's, and TLS after that; none
// of the earlier replies is sealed in a TLS record.
func TestTLSProbeAfterPipelinedCalls(t *testing.T) {
	v, ca := tlsEnv(t, tls.NoClientCert, false)
	cl := v.dial()
	ctx := t.Context()
	fh := v.file(cl, "f")
	data := bytes.Repeat([]byte("x"), 64<<10)
	for round := range 5 {
		r := v.rawDial(t)
		var batch []byte
		want := map[uint32]bool{}
		xid := uint32(round * 1000)
		for i := range 12 {
			xid++
			want[xid] = true
			var call []byte
			switch i % 3 {
			case 0: // waits for a durable commit: still in flight at the probe
				call = rawCall(xid, proto.ProgNFS, proto.VersNFS, proto.ProcWrite, client.Unix("h", 0, 0),
					&proto.WriteArgs{FH: fh, Offset: uint64(i) << 16, Count: uint32(len(data)), Stable: proto.FileSync, Data: data})
			case 1:
				call = rawCall(xid, proto.ProgNFS, proto.VersNFS, proto.ProcRead, client.Unix("h", 0, 0),
					&proto.ReadArgs{FH: fh, Count: 64 << 10})
			default:
				call = rawCall(xid, proto.ProgNFS, proto.VersNFS, proto.ProcGetAttr, client.Unix("h", 0, 0),
					&proto.GetAttrArgs{FH: fh})
			}
			batch = append(batch, call...)
		}
		probe := uint32(round*1000 + 999)
		batch = append(batch, rawCall(probe, proto.ProgNFS, proto.VersNFS, 0, rpc.OpaqueAuth{Flavor: rpc.AuthTLS}, nil)...)
		r.send(batch)
		for len(want) > 0 {
			rec := r.reply()
			x := binary.BigEndian.Uint32(rec)
			if !want[x] {
				t.Fatalf("round %d: plain reply to xid %d (probe %d) while %d earlier replies are missing", round, x, probe, len(want))
			}
			delete(want, x)
			if _, _, err := rpc.ParseReply(rec); err != nil {
				t.Fatalf("round %d: xid %d: %v", round, x, err)
			}
		}
		rec := r.reply()
		if x := binary.BigEndian.Uint32(rec); x != probe {
			t.Fatalf("round %d: reply to xid %d, want the probe's (%d)", round, x, probe)
		}
		if vf, ok := rpc.ParseReplyVerifier(rec); !ok || string(vf.Body) != rpc.StartTLS {
			t.Fatalf("round %d: probe not answered with STARTTLS", round)
		}
		_ = r.nc.SetDeadline(time.Now().Add(10 * time.Second))
		tc := tls.Client(r.nc, &tls.Config{RootCAs: ca.Pool(), ServerName: "127.0.0.1", NextProtos: []string{ALPNSunRPC}})
		if err := tc.HandshakeContext(ctx); err != nil {
			t.Fatalf("round %d: handshake after the plain replies: %v", round, err)
		}
		_ = r.nc.SetDeadline(time.Time{})
		c := client.NewConn(tc)
		if err := c.WithAuth(rpc.OpaqueAuth{}).Null(ctx, proto.ProgNFS, proto.VersNFS); err != nil {
			t.Fatalf("round %d: NULL over TLS: %v", round, err)
		}
		c.Close()
	}
}

// TestTLSProbeThenPlainCall: RFC 9289 §4.1 has the client send its
// ClientHello right after the probe's reply. A plain call sent after the
// probe instead (or injected by someone on the path, as in the STARTTLS
// command injection attacks on SMTP) is neither executed nor answered
// with an RPC reply: the server sends a TLS alert and closes the
// connection (TestTLSProbeThenPlainCallSaysSo).
func TestTLSProbeThenPlainCall(t *testing.T) {
	v, _ := tlsEnv(t, tls.NoClientCert, false)
	cl := v.dial()
	root := v.mount(cl, "/")
	r := v.rawDial(t)
	b := rawCall(1, proto.ProgNFS, proto.VersNFS, 0, rpc.OpaqueAuth{Flavor: rpc.AuthTLS}, nil)
	b = append(b, rawCall(2, proto.ProgNFS, proto.VersNFS, proto.ProcCreate, client.Unix("h", 0, 0),
		&proto.CreateArgs{Where: proto.DirOp{Dir: root, Name: "injected"}, Mode: proto.Unchecked})...)
	r.send(b)
	rec := r.reply()
	if vf, ok := rpc.ParseReplyVerifier(rec); !ok || string(vf.Body) != rpc.StartTLS || binary.BigEndian.Uint32(rec) != 1 {
		t.Fatalf("probe reply %x", rec)
	}
	_ = r.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	rest, err := io.ReadAll(r.nc)
	if err != nil && !isReset(err) {
		t.Fatalf("after the probe's reply: %v (the connection is not closed)", err)
	}
	// At most a TLS alert record (content type 21), no RPC reply.
	if len(rest) > 0 && rest[0] != 21 {
		t.Fatalf("after the probe's reply the server sent %x, want at most a TLS alert", rest)
	}
	if _, err := cl.Lookup(t.Context(), root, "injected"); !errors.Is(err, proto.ErrNoEnt) {
		t.Fatalf("LOOKUP of the file the plain call after the probe would create: %v, want NFS3ERR_NOENT", err)
	}
}

// TestTLSProbeThenPlainCallSaysSo: a plain call where the ClientHello
// was due after the probe is logged as what it is and answered with a
// TLS unexpected_message alert, whether its first fragment is its last or
// not. crypto/tls took a last fragment's mark (its top bit set) for an
// SSLv2 ClientHello ("unsupported SSLv2 handshake", alert
// protocol_version), and an earlier fragment's for a record that does not
// look like a handshake.
func TestTLSProbeThenPlainCallSaysSo(t *testing.T) {
	whole := rawCall(77, proto.ProgNFS, proto.VersNFS, proto.ProcNull, rpc.OpaqueAuth{}, nil)
	body := whole[4:]
	half := len(body) / 2
	split := binary.BigEndian.AppendUint32(nil, uint32(half)) // not the last fragment
	split = append(split, body[:half]...)
	split = binary.BigEndian.AppendUint32(split, 1<<31|uint32(len(body)-half))
	split = append(split, body[half:]...)
	for _, tc := range []struct {
		name string
		call []byte
	}{{"one fragment", whole}, {"two fragments", split}} {
		t.Run(tc.name, func(t *testing.T) {
			_, cert := tlscatest.Cert(t)
			var logs testkit.Buffer
			v := newEnv(t, envOpt{opts: Options{TLS: &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}},
				log: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
			r := v.rawDial(t)
			r.send(rawCall(1, proto.ProgNFS, proto.VersNFS, 0, rpc.OpaqueAuth{Flavor: rpc.AuthTLS}, nil))
			if vf, ok := rpc.ParseReplyVerifier(r.reply()); !ok || string(vf.Body) != rpc.StartTLS {
				t.Fatal("probe not answered with STARTTLS")
			}
			r.send(tc.call)
			_ = r.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
			rest, err := io.ReadAll(r.nc)
			if err != nil && !isReset(err) {
				t.Fatalf("after the plain call: %v (the connection is not closed)", err)
			}
			// A fatal (2) unexpected_message (10) alert record.
			if want := []byte{21, 3, 3, 0, 2, 2, 10}; !bytes.Equal(rest, want) {
				t.Fatalf("after the plain call the server sent %x, want %x (a TLS unexpected_message alert)", rest, want)
			}
			testkit.WaitFor(t, "the log line", 10*time.Second, func() bool {
				return strings.Contains(logs.String(), "plain-text call after the AUTH_TLS probe")
			})
			if s := logs.String(); strings.Contains(s, "SSLv2") || !strings.Contains(s, "xid=77") {
				t.Fatalf("log:\n%s\nwant the plain call's xid (77) and no SSLv2", s)
			}
		})
	}
}

// TestTLSProbeInsideTLS: an AUTH_TLS probe sent inside an established
// TLS session is a NULL call of a flavor the server knows, not a bad
// credential: it is answered accepted, without the STARTTLS token (RFC
// 9289 §4.1: the token would have the client send a ClientHello inside
// the session), and the session goes on. AUTH_TLS on any other
// procedure stays AUTH_BADCRED: it is only for the probe.
func TestTLSProbeInsideTLS(t *testing.T) {
	v, ca := tlsEnv(t, tls.NoClientCert, false)
	ctx := t.Context()
	nc := v.rawDial(t).nc
	tc, err := client.StartTLS(ctx, nc, &tls.Config{RootCAs: ca.Pool(), ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	r := &rawConn{t: t, nc: tc}
	r.send(rawCall(1, proto.ProgNFS, proto.VersNFS, proto.ProcNull, rpc.OpaqueAuth{Flavor: rpc.AuthTLS}, nil))
	rec := r.reply()
	if x, _, err := rpc.ParseReply(rec); err != nil || x != 1 {
		t.Fatalf("probe inside TLS answered xid %d, %v; want an accepted reply", x, err)
	}
	if vf, ok := rpc.ParseReplyVerifier(rec); !ok || vf.Flavor != rpc.AuthNone || len(vf.Body) != 0 {
		t.Fatalf("probe inside TLS: verifier %+v (ok %v), want AUTH_NONE without the STARTTLS token", vf, ok)
	}
	r.send(rawCall(2, proto.ProgNFS, proto.VersNFS, proto.ProcNull, rpc.OpaqueAuth{}, nil))
	if x, _, err := rpc.ParseReply(r.reply()); err != nil || x != 2 {
		t.Fatalf("NULL after the probe inside TLS: xid %d, %v", x, err)
	}
	r.send(rawCall(3, proto.ProgNFS, proto.VersNFS, proto.ProcGetAttr, rpc.OpaqueAuth{Flavor: rpc.AuthTLS},
		&proto.GetAttrArgs{FH: v.mount(v.dial(), "/")}))
	var re *rpc.ReplyError
	if _, _, err := rpc.ParseReply(r.reply()); !errors.As(err, &re) || re.AuthStat != rpc.AuthBadCred {
		t.Fatalf("GETATTR with AUTH_TLS inside TLS: %v, want AUTH_BADCRED", err)
	}
}
