package rpc

import (
	"bufio"
	"crypto/tls"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/regionfs/regionfs/internal/nfs/tlsca/tlscatest"
)

// BenchmarkTLSLoopback measures what a TLS session over loopback costs per
// byte on this machine: one goroutine writes 1 MiB at a time (four for
// WriteRecord, as the NFS server's workers write replies), another reads
// it, each case on a fresh connection pair. Besides the throughput it
// reports the process's CPU time per MiB (both ends), which is what TLS
// adds to a mount's read or write on a machine with few cores. The cases:
// plain TCP, crypto/tls as is with each cipher suite (TLS 1.3 chooses
// AES-128-GCM on CPUs with AES-NI and does not let a config choose; TLS
// 1.2 does, with the same AEADs), TLS 1.3 under BatchConn and
// RecordWriter as the NFS server and client used it before mount14, with
// TLSWriter and TLSReader as the client uses them (own), and with the
// server's WriteRecord (sealed).
//
//	go test -run '^$' -bench TLSLoopback -benchtime 2048x ./internal/nfs/rpc
func BenchmarkTLSLoopback(b *testing.B) {
	ca, cert := tlscatest.Cert(b)
	tls12 := func(suite uint16) func(*tls.Config) {
		return func(c *tls.Config) {
			c.MaxVersion = tls.VersionTLS12
			c.CipherSuites = []uint16{suite}
		}
	}
	cases := []struct {
		name  string
		plain bool
		batch bool
		own   bool // TLSWriter and TLSReader after crypto/tls's handshake
		// sealed: the replies written with WriteRecord by 4 goroutines,
		// as the NFS server's workers write them.
		sealed bool
		set    func(*tls.Config)
		want   uint16
	}{
		{name: "tcp", plain: true},
		{name: "tls13-aes128gcm", want: tls.TLS_AES_128_GCM_SHA256},
		{name: "tls12-aes128gcm", set: tls12(tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256), want: tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256},
		{name: "tls12-aes256gcm", set: tls12(tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384), want: tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384},
		{name: "tls12-chacha20poly1305", set: tls12(tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256), want: tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256},
		{name: "tls13-aes128gcm-recordwriter", batch: true, want: tls.TLS_AES_128_GCM_SHA256},
		{name: "tls13-aes128gcm-own", batch: true, own: true, want: tls.TLS_AES_128_GCM_SHA256},
		{name: "tls13-aes128gcm-sealed", batch: true, own: true, sealed: true, want: tls.TLS_AES_128_GCM_SHA256},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			defer ln.Close()
			scfg := &tls.Config{Certificates: []tls.Certificate{cert}, DynamicRecordSizingDisabled: true}
			ccfg := &tls.Config{RootCAs: ca.Pool(), ServerName: "127.0.0.1", DynamicRecordSizingDisabled: true}
			if tc.set != nil {
				tc.set(scfg)
				tc.set(ccfg)
			}
			const chunk = 1 << 20
			// The writer: the server's side of a READ reply.
			done := make(chan error, 1)
			go func() {
				nc, err := ln.Accept()
				if err != nil {
					done <- err
					return
				}
				defer nc.Close()
				var w io.Writer = nc
				var sealer *TLSWriter
				if !tc.plain {
					// The sealing buffers on a free list, as the NFS
					// server's (Budgets.TLSReplies): without one every
					// sealed reply took (and cleared) a fresh 1 MiB.
					bc := &BatchConn{Conn: nc, R: bufio.NewReaderSize(nc, 64<<10), Bufs: NewBuffers(16)}
					log := &KeyLog{}
					cfg := scfg.Clone()
					br := bufio.NewReaderSize(nc, 64<<10)
					if tc.own {
						bc.R = &HandshakeReader{R: br}
						cfg.KeyLogWriter, cfg.SessionTicketsDisabled = log, true
					}
					tconn := tls.Server(bc, cfg)
					if err := tconn.Handshake(); err != nil {
						done <- err
						return
					}
					w = tconn
					if tc.batch {
						w = &RecordWriter{W: tconn, BC: bc}
					}
					if tc.own {
						_, tw, err := TakeOver(tconn, br, bc, log, false, true)
						if err != nil || tw == nil {
							done <- fmt.Errorf("TakeOver: %v, %v", tw, err)
							return
						}
						w = &RecordWriter{W: tw, BC: bc}
						if tc.sealed {
							sealer = tw
						}
					}
				}
				buf := make([]byte, chunk)
				if tc.batch {
					binary.BigEndian.PutUint32(buf, lastFragment|uint32(chunk-RecordHeaderSize))
				}
				if sealer != nil {
					var next atomic.Int64
					var wg sync.WaitGroup
					errs := make(chan error, 4)
					for range 4 {
						wg.Go(func() {
							for next.Add(1) <= int64(b.N) {
								if err := sealer.WriteRecord([][]byte{buf}, 0); err != nil {
									errs <- err
									return
								}
							}
						})
					}
					wg.Wait()
					close(errs)
					done <- <-errs
					return
				}
				for range b.N {
					if _, err := w.Write(buf); err != nil {
						done <- err
						return
					}
				}
				done <- nil
			}()
			nc, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				b.Fatal(err)
			}
			defer nc.Close()
			var r io.Reader = nc
			if !tc.plain {
				under := net.Conn(nc)
				br := bufio.NewReaderSize(nc, 256<<10)
				if tc.batch {
					under = &BatchConn{Conn: nc, R: br}
				}
				log := &KeyLog{}
				cfg := ccfg.Clone()
				var bc *BatchConn
				if tc.own {
					bc = &BatchConn{Conn: nc, R: &HandshakeReader{R: br}}
					under = bc
					cfg.KeyLogWriter = log
				}
				tconn := tls.Client(under, cfg)
				if err := tconn.Handshake(); err != nil {
					b.Fatal(err)
				}
				if got := tconn.ConnectionState().CipherSuite; got != tc.want {
					b.Fatalf("cipher suite %s, want %s", tls.CipherSuiteName(got), tls.CipherSuiteName(tc.want))
				}
				r = tconn
				if tc.own {
					tr, _, err := TakeOver(tconn, br, bc, log, true, false)
					if err != nil || tr == nil {
						b.Fatalf("TakeOver: %v, %v", tr, err)
					}
					r = tr
				}
			}
			buf := make([]byte, chunk)
			b.SetBytes(chunk)
			cpu0 := cpuTime(b)
			b.ResetTimer()
			for range b.N {
				if _, err := io.ReadFull(r, buf); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			if err := <-done; err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64((cpuTime(b)-cpu0).Microseconds())/float64(b.N), "cpu-µs/MiB")
		})
	}
}

// cpuTime is the process's user and system time so far.
func cpuTime(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
