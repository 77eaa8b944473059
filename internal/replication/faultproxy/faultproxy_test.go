package faultproxy

import (
	"bytes"
	"io"
	"net"
	"testing"
	"testing/synctest"
	"time"
)

// piped is a proxy forwarding between two in-memory connections (the
// client's and the target's ends returned), so that it runs in a
// synctest bubble, on its fake clock.
func piped(t *testing.T) (p *Proxy, client, target net.Conn) {
	t.Helper()
	client, pa := net.Pipe()
	pb, target := net.Pipe()
	p = &Proxy{conns: map[*pair]struct{}{}, wake: make(chan struct{})}
	pr := newPair(pa, pb)
	p.conns[pr] = struct{}{}
	p.wg.Add(2)
	go p.pipe(pr, pa, pb, true)
	go p.pipe(pr, pb, pa, false)
	t.Cleanup(func() {
		client.Close()
		target.Close()
		p.wg.Wait()
	})
	return p, client, target
}

// transfer sends n bytes from one end and returns how long (on the
// bubble's clock) the other end took to receive all of them.
func transfer(t *testing.T, from, to net.Conn, n int) time.Duration {
	t.Helper()
	data := bytes.Repeat([]byte{0x5a}, n)
	start := time.Now()
	go from.Write(data)
	got := make([]byte, n)
	if _, err := io.ReadFull(to, got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatal("data changed on its way")
	}
	return time.Since(start)
}

// TestDelayAndBandwidthIndependent: a delay is a latency (1 MiB with a
// 50 ms delay arrives 50 ms after it was sent, not 50 ms per 64 KiB
// piece: SetDelay slept in the reading goroutine, so a delay throttled
// the throughput to a piece per delay), a bandwidth is a rate (1 MiB at
// 1 MiB/s takes a second), and together they add. The clock is
// synctest's: the figures are exact, not measured.
func TestDelayAndBandwidthIndependent(t *testing.T) {
	const mib = 1 << 20
	for _, tc := range []struct {
		name      string
		delay     time.Duration
		replyRTT  time.Duration // SetReplyDelay
		bandwidth int64
		reply     bool // target → client
		want      time.Duration
	}{
		{name: "delay", delay: 50 * time.Millisecond, want: 50 * time.Millisecond},
		{name: "delay back", delay: 50 * time.Millisecond, reply: true, want: 50 * time.Millisecond},
		{name: "delay and reply delay back", delay: 50 * time.Millisecond, replyRTT: 20 * time.Millisecond, reply: true,
			want: 70 * time.Millisecond},
		{name: "bandwidth", bandwidth: mib, want: time.Second},
		{name: "bandwidth back", bandwidth: mib, reply: true, want: time.Second},
		{name: "both", delay: 50 * time.Millisecond, bandwidth: mib, want: time.Second + 50*time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				p, client, target := piped(t)
				p.SetDelay(tc.delay)
				p.SetReplyDelay(tc.replyRTT)
				p.SetBandwidth(tc.bandwidth)
				from, to := client, target
				if tc.reply {
					from, to = target, client
				}
				if got := transfer(t, from, to, mib); got != tc.want {
					t.Fatalf("1 MiB took %v, want %v", got, tc.want)
				}
			})
		})
	}
}

// TestCloseDropsHeldData: closing the proxy does not wait for the data a
// slow link still holds to fall due (64 pieces at 1 KiB/s would hold it
// for an hour).
func TestCloseDropsHeldData(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p, client, _ := piped(t)
		p.SetBandwidth(1 << 10)
		go client.Write(make([]byte, 4<<20))
		synctest.Wait()
		start := time.Now()
		p.mu.Lock()
		for c := range p.conns {
			c.close()
		}
		p.mu.Unlock()
		p.wg.Wait()
		if d := time.Since(start); d != 0 {
			t.Fatalf("the proxy's goroutines ended %v after the close, want at once", d)
		}
	})
}

// TestPartitionHoldsTheClose: a connection's end crosses a partition no
// more than its data: the target's close reaches the client only once the
// partition heals (it reached it at once, so a source blocked in a send
// to a dark link learned of the destination's giving up through the
// proxy, which no real partition tells it).
func TestPartitionHoldsTheClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p, client, target := piped(t)
		p.Partition()
		target.Close()
		ended := make(chan error, 1)
		go func() {
			_, err := client.Read(make([]byte, 1))
			ended <- err
		}()
		synctest.Wait()
		select {
		case err := <-ended:
			p.Heal()
			t.Fatalf("the client saw its connection end (%v) through a partition", err)
		default:
		}
		p.Heal()
		if err := <-ended; err == nil {
			t.Fatal("the client read a byte its closed target never sent")
		}
	})
}
