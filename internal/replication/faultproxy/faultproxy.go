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
	replyDelay  time.Duration // latency of the target → client direction
	piece       int           // bytes read (and delayed) at a time; 0: 64 KiB
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

// SetReplyDelay gives the way back (target → client) a latency of d:
// each piece of data read from the target reaches the client d after it
// was read, in order, while the next pieces are read and held meanwhile
// (a slow or congested path, not a slow peer: the delay does not add up
// over pieces as SetDelay's does). A change applies to the data read from
// then on; raised in steps smaller than the pieces' spacing, no piece
// waits for its predecessor. Partition holds data at its reading, as
// before; a piece read before it is still delivered when due.
func (p *Proxy) SetReplyDelay(d time.Duration) {
	p.mu.Lock()
	p.replyDelay = d
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
	var back *latent // the way back delivers each piece when due
	if !fromClient {
		back = newLatent(to)
		defer back.flush()
	}
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
			readAt := time.Now()
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
			var werr error
			if back != nil {
				p.mu.Lock()
				due := readAt.Add(p.replyDelay)
				p.mu.Unlock()
				werr = back.send(buf[:n], due)
			} else {
				_, werr = to.Write(buf[:n])
			}
			if werr != nil {
				if fromClient {
					// The target is gone (it reset the connection): what
					// it sent before is still on its way back to the
					// client, and the other direction delivers it before
					// it closes the pair. A path holds no data back
					// because a later packet was refused.
					to.Close()
					halfClosed = true
				}
				return
			}
		}
		if err != nil {
			if back != nil && back.flush() != nil {
				return // what was held did not reach the client
			}
			if err == io.EOF {
				if tc, ok := to.(*net.TCPConn); ok && tc.CloseWrite() == nil {
					halfClosed = true
				}
			}
			return
		}
	}
}

// latent writes pieces of data to a connection, each once its time is
// due, in order, from a goroutine of its own.
type latent struct {
	q      chan latentPiece
	done   chan struct{}
	mu     sync.Mutex // guards err and closed
	err    error      // the first failed write
	closed bool
}

type latentPiece struct {
	b   []byte
	due time.Time
}

func newLatent(to net.Conn) *latent {
	l := &latent{q: make(chan latentPiece, 64), done: make(chan struct{})}
	go func() {
		defer close(l.done)
		for pc := range l.q {
			l.mu.Lock()
			failed := l.err != nil
			l.mu.Unlock()
			if failed {
				continue // drained, not written
			}
			time.Sleep(time.Until(pc.due))
			if _, err := to.Write(pc.b); err != nil {
				l.mu.Lock()
				l.err = err
				l.mu.Unlock()
			}
		}
	}()
	return l
}

// send queues a copy of b for due; it fails once a write has failed.
func (l *latent) send(b []byte, due time.Time) error {
	l.mu.Lock()
	err := l.err
	l.mu.Unlock()
	if err != nil {
		return err
	}
	l.q <- latentPiece{b: append([]byte(nil), b...), due: due}
	return nil
}

// flush waits until everything queued is written (or a write failed) and
// returns the first write error. Nothing is sent after it.
func (l *latent) flush() error {
	l.mu.Lock()
	if !l.closed {
		l.closed = true
		close(l.q)
	}
	l.mu.Unlock()
	<-l.done
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}
