// Package faultproxy is a TCP proxy that misbehaves on demand: it delays
// data, resets connections and partitions the network (holds data and
// answers nothing, like a link that went dark). Tests put it between two
// regions' replication endpoints.
package faultproxy

import (
	"io"
	"net"
	"sync"
	"time"
)

// Proxy forwards connections from its listener to a target address.
type Proxy struct {
	ln     net.Listener
	target string

	mu          sync.Mutex // guards the fields below
	delay       time.Duration
	piece       int // bytes read (and delayed) at a time; 0: 64 KiB
	partitioned bool
	corrupt     int    // chunks to damage (client → target, past the first 4 KiB)
	recorded    []byte // the first 64 KiB a client sent on the last connection
	conns       map[*pair]struct{}
	closed      bool
	wake        chan struct{} // closed and replaced when the partition heals

	wg sync.WaitGroup
}

type pair struct {
	a, b net.Conn
	mu   sync.Mutex // guards open
	open int        // directions still forwarding
}

func (p *pair) close() {
	p.a.Close()
	p.b.Close()
}

// New listens on addr (e.g. "127.0.0.1:0") and forwards to target.
func New(addr, target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	p := &Proxy{ln: ln, target: target, conns: map[*pair]struct{}{}, wake: make(chan struct{})}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr is the address clients connect to.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// SetDelay delays every piece of data by d in each direction.
func (p *Proxy) SetDelay(d time.Duration) {
	p.mu.Lock()
	p.delay = d
	p.mu.Unlock()
}

// SetPieceBytes makes each piece of data (what one delay holds back) at
// most n bytes; 0 restores the default of 64 KiB. With SetDelay it bounds
// the bandwidth: n bytes per delay and direction.
func (p *Proxy) SetPieceBytes(n int) {
	p.mu.Lock()
	p.piece = n
	p.mu.Unlock()
}

// CorruptNext flips a bit in the next piece of data a client sends past
// the first 4 KiB of its connection (so past the HTTP request head).
func (p *Proxy) CorruptNext() {
	p.mu.Lock()
	p.corrupt++
	p.mu.Unlock()
}

// Recorded returns the first 64 KiB a client sent on the newest
// connection, for replaying them.
func (p *Proxy) Recorded() []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]byte(nil), p.recorded...)
}

// Partition holds all data (in both directions, on every connection) and
// forwards nothing until Heal; connections are neither refused nor closed.
func (p *Proxy) Partition() {
	p.mu.Lock()
	p.partitioned = true
	p.mu.Unlock()
}

// Heal ends a partition.
func (p *Proxy) Heal() {
	p.mu.Lock()
	p.partitioned = false
	close(p.wake)
	p.wake = make(chan struct{})
	p.mu.Unlock()
}

// Reset closes every open connection abruptly.
func (p *Proxy) Reset() {
	p.mu.Lock()
	for c := range p.conns {
		if tc, ok := c.a.(*net.TCPConn); ok {
			tc.SetLinger(0)
		}
		c.close()
	}
	p.mu.Unlock()
}

// Close stops the proxy and closes its connections.
func (p *Proxy) Close() error {
	p.mu.Lock()
	p.closed = true
	for c := range p.conns {
		c.close()
	}
	close(p.wake)
	p.wake = make(chan struct{})
	p.mu.Unlock()
	err := p.ln.Close()
	p.wg.Wait()
	return err
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		t, err := net.DialTimeout("tcp", p.target, 2*time.Second)
		if err != nil {
			c.Close()
			continue
		}
		pr := &pair{a: c, b: t, open: 2}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			pr.close()
			return
		}
		p.conns[pr] = struct{}{}
		p.mu.Unlock()
		p.mu.Lock()
		p.recorded = nil
		p.mu.Unlock()
		p.wg.Add(2)
		go p.pipe(pr, c, t, true)
		go p.pipe(pr, t, c, false)
	}
}

// gate waits while partitioned and returns the current delay; false when
// the proxy is closing.
func (p *Proxy) gate() (time.Duration, bool) {
	for {
		p.mu.Lock()
		part, d, closed, wake := p.partitioned, p.delay, p.closed, p.wake
		p.mu.Unlock()
		if closed {
			return 0, false
		}
		if !part {
			return d, true
		}
		<-wake
	}
}

func (p *Proxy) pipe(pr *pair, from, to net.Conn, fromClient bool) {
	defer p.wg.Done()
	halfClosed := false
	defer func() {
		pr.mu.Lock()
		pr.open--
		last := pr.open == 0
		pr.mu.Unlock()
		if !halfClosed || last {
			pr.close()
		}
		if last || !halfClosed {
			p.mu.Lock()
			delete(p.conns, pr)
			p.mu.Unlock()
		}
	}()
	buf := make([]byte, 64<<10)
	sent := 0
	for {
		p.mu.Lock()
		piece := p.piece
		p.mu.Unlock()
		if piece <= 0 || piece > len(buf) {
			piece = len(buf)
		}
		n, err := from.Read(buf[:piece])
		if n > 0 {
			d, ok := p.gate()
			if !ok {
				return
			}
			if fromClient {
				p.mu.Lock()
				if len(p.recorded) < 64<<10 {
					p.recorded = append(p.recorded, buf[:min(n, 64<<10-len(p.recorded))]...)
				}
				if p.corrupt > 0 && sent+n > 4096 {
					i := max(4096-sent, 0) + (n-max(4096-sent, 0))/2
					buf[i] ^= 0x20
					p.corrupt--
				}
				p.mu.Unlock()
				sent += n
			}
			if d > 0 {
				time.Sleep(d)
			}
			if _, werr := to.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			if err == io.EOF {
				if tc, ok := to.(*net.TCPConn); ok && tc.CloseWrite() == nil {
					halfClosed = true
				}
			}
			return
		}
	}
}
