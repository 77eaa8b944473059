package client

import (
	"crypto/tls"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/regionfs/regionfs/internal/nfs/rpc"
	"github.com/regionfs/regionfs/internal/nfs/tlsca/tlscatest"
	"github.com/regionfs/regionfs/internal/nfs/xdr"
)

// tlsServer accepts one connection, answers the AUTH_TLS probe, runs
// crypto/tls's server handshake, answers every call with an empty
// success and reports how its read of the client's records ended (nil:
// a close_notify). It returns the address and the client configuration.
func tlsServer(t *testing.T) (string, *tls.Config, <-chan error) {
	t.Helper()
	ca, cert, ln := tlscatest.Listener(t)
	end := make(chan error, 1)
	go func() {
		end <- func() error {
			nc, err := ln.Accept()
			if err != nil {
				return err
			}
			defer nc.Close()
			_ = nc.SetDeadline(time.Now().Add(time.Minute))
			probe, err := rpc.ReadRecord(nc, nil, 4096)
			if err != nil {
				return err
			}
			h, _, err := rpc.ParseCall(probe)
			if err != nil {
				return err
			}
			e := xdr.NewEncoder(nil)
			e.Reserve(rpc.RecordHeaderSize)
			rpc.AppendStartTLS(e, h.XID)
			b := e.Bytes()
			rpc.FinishRecord(b)
			if _, err := nc.Write(b); err != nil {
				return err
			}
			tc := tls.Server(nc, &tls.Config{Certificates: []tls.Certificate{cert}})
			for {
				rec, err := rpc.ReadRecord(tc, nil, 1<<20)
				if errors.Is(err, io.EOF) {
					return nil
				}
				if err != nil {
					return err
				}
				h, _, err := rpc.ParseCall(rec)
				if err != nil {
					return err
				}
				e := xdr.NewEncoder(nil)
				e.Reserve(rpc.RecordHeaderSize)
				rpc.AppendAccepted(e, h.XID, rpc.Success)
				b := e.Bytes()
				rpc.FinishRecord(b)
				if _, err := tc.Write(b); err != nil {
					return err
				}
			}
		}()
	}()
	return ln.Addr().String(), &tls.Config{RootCAs: ca.Pool()}, end
}

// TestTLSConnNoCryptoTLSAfterTakeover: once rpc.TLSWriter seals the
// client's records, nothing of the connection reaches crypto/tls's write
// path: closing it every way the connection offers (CloseWrite, Close)
// leaves the server reading every record in sequence up to a
// close_notify. Before, tlsConn embedded *tls.Conn, whose CloseWrite
// sealed a close_notify with crypto/tls's key at its sequence number 0,
// the nonce of the client's first call (the server failed it as a bad
// record MAC).
func TestTLSConnNoCryptoTLSAfterTakeover(t *testing.T) {
	addr, cfg, end := tlsServer(t)
	c, err := DialTLS(t.Context(), addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	tc, ok := c.nc.(*tlsConn)
	if !ok || tc.tw == nil || tc.tr == nil {
		t.Fatalf("TLS 1.3 with AES-GCM not taken over: %T", c.nc)
	}
	if tc.tc != nil {
		t.Error("the connection keeps crypto/tls's session after the takeover")
	}
	for range 3 {
		if _, err := c.CallRaw(t.Context(), rpc.CallHeader{Prog: 100003, Vers: 3}, nil); err != nil {
			t.Fatal(err)
		}
	}
	if cw, ok := c.nc.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
	if err := c.Close(); err != nil {
		t.Logf("close: %v", err)
	}
	select {
	case err := <-end:
		if err != nil {
			t.Fatalf("the server's read of the client's records: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the server saw no end of the stream")
	}
}
